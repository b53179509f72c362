"""A `kubetune run` folder written by hand, without torch: the files the trainer and
`kubetune run` leave (trainer.yaml, finetunejob.yaml, run.json, prepared.json, progress.json,
metrics.jsonl, logs/, the manifest), for the commands and the report that read them."""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePosixPath
from typing import Any

from kubetune.api import parse_job
from kubetune.render.layout import Layout
from kubetune.render.trainer_config import trainer_config
from kubetune.yamlio import dump
from tests.support.factories import make_job

DPO_KEYS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")


def metric_lines(
    steps: int, every: int, eval_every: int, dpo: bool = False
) -> list[dict[str, Any]]:
    """Training lines every `every` steps (and step 1), evaluation lines every `eval_every`."""
    lines: list[dict[str, Any]] = []
    for step in [1, *range(every, steps + 1, every)]:
        line: dict[str, Any] = {
            "step": step,
            "epoch": step / steps,
            "time": 1.8e9 + step,
            "loss": 3 * math.exp(-step / steps) + 0.1,
            "learning_rate": 1e-4 * (1 - step / steps),
            "grad_norm": 1.0 / step,
            "tokens_per_second": 1000.0 + step,
        }
        if dpo:
            line.update(
                {
                    "rewards/chosen": step / 10,
                    "rewards/rejected": -step / 10,
                    "rewards/margins": step / 5,
                    "rewards/accuracies": min(1.0, step / steps + 0.5),
                }
            )
        lines.append(line)
        if step % eval_every == 0:
            lines.append(
                {
                    "step": step,
                    "epoch": step / steps,
                    "time": 1.8e9 + step,
                    "eval_loss": 2 * math.exp(-step / steps) + 0.2,
                    "eval_mean_token_accuracy": 0.5 + step / (4 * steps),
                }
            )
    return lines


def write_run_folder(
    workspace: Path,
    name: str = "observed",
    phase: str = "Succeeded",
    nodes: int = 2,
    steps: int = 40,
    dpo: bool = False,
) -> Path:
    """A finished (or running, or failed) run of `nodes` nodes; returns the job folder."""
    doc = make_job(nodes=nodes, **{"metadata.name": name, "spec.training.maxSteps": steps})
    if dpo:
        doc["spec"]["training"]["objective"] = "dpo"
        doc["spec"]["dataset"]["sources"][0]["format"] = "preference"
    job = parse_job(doc)
    config = trainer_config(job, Layout(PurePosixPath(workspace)))
    job_dir = Path(config.paths.job)
    (job_dir / "logs").mkdir(parents=True)
    (job_dir / "trainer.yaml").write_text(config.dump())
    (job_dir / "finetunejob.yaml").write_text(dump(job.to_wire()))
    state: dict[str, Any] = {"phase": phase}
    if phase == "Failed":
        state.update(exitCode=3, log="node-1.log")
    (job_dir / "run.json").write_text(json.dumps(state))
    (job_dir / "logs" / "prepare.log").write_text("prepared 100 samples\nfingerprint abc\n")
    for rank in range(nodes):
        (job_dir / "logs" / f"node-{rank}.log").write_text(
            f"node {rank} line 1\nnode {rank} line 2\n"
        )
    lines = metric_lines(steps, every=5, eval_every=20, dpo=dpo)
    (job_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    last = [x for x in lines if "loss" in x][-1]
    progress = {
        "step": last["step"],
        "totalSteps": steps,
        "loss": round(last["loss"], 5),
        "tokensPerSecond": last["tokens_per_second"],
        "etaSeconds": 0,
        "percent": 100,
        "latestCheckpoint": str(job_dir / "checkpoints" / f"checkpoint-{steps}"),
        "checkpointsKept": [
            {
                "step": steps,
                "path": str(job_dir / "checkpoints" / f"checkpoint-{steps}"),
                "metrics": {"train_loss": round(last["loss"], 5)},
            }
        ],
        "evaluation": {"step": steps, "loss": 0.9, "meanTokenAccuracy": 0.75},
    }
    (job_dir / "progress.json").write_text(json.dumps(progress))
    report = {
        "sources": [
            {
                "source": "hf://org/data",
                "records": 120,
                "samples": 117,
                "skipped": 3,
                "skippedReasons": {"missing field": 3},
                "firstErrors": ["row 7: missing field 'messages'"],
            }
        ],
        "train": {"samples": 105, "rows": 30, "tokens": 3000, "packingEfficiency": 0.9766},
        "eval": {"samples": 12, "rows": 4, "tokens": 300, "packingEfficiency": 0.5859},
    }
    (job_dir / "prepared.json").write_text(json.dumps({"model": "/m", "report": report}))
    if phase == "Succeeded":
        output = Path(config.paths.output)
        output.mkdir(parents=True)
        (output / "manifest.json").write_text(
            json.dumps({"outputs": {"adapter": str(output / "adapter")}})
        )
    return job_dir
