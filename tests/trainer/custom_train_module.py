"""A user's own training module, as seed workload 3 would bring it (used by the tests).

Reads what kubetune passes in, "trains", writes a marked checkpoint and an output file."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch.distributed as dist

from kubetune_trainer.runtime.checkpoints import mark_complete


def main() -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    dist.barrier()
    if rank == 0:
        checkpoint = Path(os.environ["KUBETUNE_CHECKPOINT_DIR"]) / "checkpoint-7"
        checkpoint.mkdir(parents=True, exist_ok=True)
        (checkpoint / "weights.txt").write_text("trained")
        mark_complete(checkpoint, step=7)
        seen = {k: v for k, v in os.environ.items() if k.startswith("KUBETUNE_")}
        Path(os.environ["KUBETUNE_OUTPUT_DIR"], "seen.json").write_text(
            json.dumps({"argv": sys.argv[1:], "world": world, "env": seen})
        )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
