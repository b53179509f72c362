"""One short LoRA run of the tiny model through `kubetune run`'s own code path (prepare, then
torchrun), with held-out data so every chart of the report has points. Tests share it through
the session fixture `tiny_trained_run` (tests/trainer/conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from kubetune.api import parse_job
from kubetune.local_run import RunResult, run_job
from tests.support.factories import REPO, make_job

TINY_DATA = REPO / "examples" / "data" / "tiny-chat.jsonl"
STEPS, LOGGING, SAVE = 12, 2, 6


@dataclass(frozen=True)
class TrainedRun:
    workspace: Path
    job_dir: Path
    result: RunResult


def train_tiny(model_dir: Path, workspace: Path, name: str = "report") -> TrainedRun:
    job = parse_job(
        make_job(
            **{
                "metadata": {"name": name},
                "spec.model": {"source": str(model_dir)},
                "spec.dataset": {
                    "sources": [{"source": str(TINY_DATA)}],
                    "chatTemplate": {"builtin": "chatml"},
                    "evalFraction": 0.1,
                },
                "spec.method": {"type": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
                "spec.training": {
                    "maxSteps": STEPS,
                    "learningRate": 1e-2,
                    "microBatchSize": 8,
                    "maxLength": 128,
                    "gradientCheckpointing": False,
                    "precision": "fp32",
                    "saveSteps": SAVE,
                    "loggingSteps": LOGGING,
                    "warmupRatio": 0.1,
                },
            }
        )
    )
    with open(os.devnull, "w") as quiet:
        result = run_job(job, workspace, REPO, Console(file=quiet))
    return TrainedRun(workspace, workspace / "jobs" / name, result)
