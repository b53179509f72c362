"""`torchrun -m kubetune_trainer.train`: the built-in trainer's entry point, at the module path
the operator renders into every PyTorchJob (render/pod.py); stages/train.py does the work."""

from __future__ import annotations

import sys

from kubetune_trainer.stages.train import main

if __name__ == "__main__":
    sys.exit(main())
