"""What `prepare` left in the job folder for training: prepared.json and the tokenized splits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune_trainer.config import TrainerConfig


class NotPrepared(Exception):
    """`prepare` has not run (or the job has no dataset): nothing to train on."""


@dataclass
class Prepared:
    """What `prepare` left in the job folder: the model to start from and the packed data."""

    manifest: dict[str, Any]
    model: Path
    train: Any
    evaluation: Any | None


def load_prepared(config: TrainerConfig) -> Prepared:
    import datasets

    prepared_file = Path(config.paths.job) / "prepared.json"
    if not prepared_file.exists():
        raise NotPrepared(
            f"{prepared_file} is missing: run `python -m kubetune_trainer prepare` first"
        )
    if config.dataset is None:
        raise NotPrepared("no dataset: the built-in trainer needs dataset.sources")
    manifest = json.loads(prepared_file.read_text())
    data = Path(manifest["dataset"])
    evaluation = datasets.load_from_disk(str(data / "eval")) if (data / "eval").exists() else None
    return Prepared(
        manifest=manifest,
        model=Path(manifest["model"]),
        train=datasets.load_from_disk(str(data / "train")),
        evaluation=evaluation,
    )
