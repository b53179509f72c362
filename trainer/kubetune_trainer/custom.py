"""`torchrun -m kubetune_trainer.custom`: the custom entrypoint's entry point, at the module path
the operator renders into every PyTorchJob (render/pod.py); stages/custom.py does the work."""

from __future__ import annotations

import sys

from kubetune_trainer.stages.custom import main

if __name__ == "__main__":
    sys.exit(main())
