"""`python -m kubetune.runtime` runs the operator."""

import sys

from kubetune.runtime.main import main

sys.exit(main())
