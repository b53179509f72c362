"""Trainer test fixtures: a tiny Llama built from a config and a tokenizer trained with the
`tokenizers` library, saved with save_pretrained and loaded back through the path users use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kubetune_trainer.storage.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def tiny_trained_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One finished tiny run (tests/support/tiny_run.py), shared by the tests that read what a
    run leaves: metrics.jsonl, report.html, the run folder's status and logs."""
    from tests.support.tiny_run import train_tiny

    run = train_tiny(tiny_model_dir, tmp_path_factory.mktemp("tiny-run"))
    assert run.result.ok, run.result.log and run.result.log.read_text()[-3000:]
    return run
