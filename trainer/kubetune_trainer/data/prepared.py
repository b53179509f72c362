"""What `prepare` left in the job folder for training: prepared.json and the tokenized splits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from kubetune_api.config import TrainerConfig


class PreparedManifest(TypedDict):
    """prepared.json: what `prepare` made, read by training, the export, the tool-call scoring
    and custom entrypoints."""

    model: str
    """Local folder of the base model."""
    modelRevision: str | None
    """The hub revision it was fetched at (None for local models)."""
    chatTemplateSha256: NotRequired[str]
    """The chat template's digest, when the tokenizer has one."""
    fingerprint: NotRequired[str]
    """The prepared dataset's cache key (with a dataset)."""
    dataset: NotRequired[str]
    """Folder of the prepared dataset (with a dataset)."""
    report: NotRequired[dict[str, Any]]
    """The preparation report (report.json: sources, skipped records, splits)."""


class NotPrepared(Exception):
    """`prepare` has not run (or the job has no dataset): nothing to train on."""


@dataclass
class Prepared:
    """What `prepare` left in the job folder: the model to start from and the packed data."""

    manifest: PreparedManifest
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
    manifest: PreparedManifest = json.loads(prepared_file.read_text())
    data = Path(manifest["dataset"])
    evaluation = datasets.load_from_disk(str(data / "eval")) if (data / "eval").exists() else None
    return Prepared(
        manifest=manifest,
        model=Path(manifest["model"]),
        train=datasets.load_from_disk(str(data / "train")),
        evaluation=evaluation,
    )
