"""Run under torchrun by test_preflight.py: the job's process group over gloo (as the Trainer
creates it on CPU), then the preflight step, reporting to progress.json and a recorded status
body (what StatusSink would PATCH)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch.distributed as dist

from kubetune_api.config import TrainerConfig
from kubetune_trainer.runtime.preflight import preflight
from kubetune_trainer.runtime.progress import FileSink
from kubetune_trainer.runtime.reporter import Sinks, StatusSink


class RecordedStatus:
    """The status subresource's side of StatusSink: each PATCH body, kept in a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def report(self, progress: dict[str, Any], force: bool = False) -> None:
        self.path.write_text(json.dumps(StatusSink.body(progress)))


def main(config_path: str) -> None:
    config = TrainerConfig.load(config_path)
    job = Path(config.paths.job)
    dist.init_process_group(backend="gloo")
    report = preflight(config, Sinks(FileSink(job), RecordedStatus(job / "status-patch.json")))
    (job / f"report-{dist.get_rank()}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
