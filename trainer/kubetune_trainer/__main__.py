"""`python -m kubetune_trainer prepare|train|custom|preview --config trainer.yaml`."""

from __future__ import annotations

import sys


def main() -> int:
    commands = ("prepare", "train", "custom", "preview")
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(
            f"usage: python -m kubetune_trainer {{{'|'.join(commands)}}} --config FILE",
            file=sys.stderr,
        )
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "prepare":
        from kubetune_trainer.stages.prepare import main as run
    elif command == "preview":
        from kubetune_trainer.stages.preview import main as run
    elif command == "train":
        from kubetune_trainer.stages.train import main as run
    else:
        from kubetune_trainer.stages.custom import main as run
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
