"""The metric history: `metrics.jsonl`, one JSON object a line, one line per logging step.

Rank 0 appends a line each time the Trainer logs: training lines carry `loss`, `learning_rate`,
`grad_norm` and (DPO) `rewards/*` under the Trainer's and TRL's own names — the names
TensorBoard and W&B show and `trainer_state.json`'s `log_history` keeps — plus `step`, `epoch`,
`time` (Unix seconds) and `tokens_per_second` (real tokens, all ranks); evaluation lines carry
the `eval_*` metrics. The file lives in the job folder while training and is copied into the
outputs at the end. Torch-free: `kubetune report`, `status` and `watch` read it too.

A restarted job resumes from its last checkpoint and logs some steps again: readers keep the
last line of each step and kind (`read_metrics`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
# What a line keeps of a Trainer log entry besides the numbers: nothing else is a metric.
SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss")


def kind_of(line: dict[str, Any]) -> str:
    """`eval` for an evaluation line, `train` for a training one."""
    return "eval" if any(k.startswith("eval_") for k in line) else "train"


def metrics_line(
    logs: dict[str, Any], step: int, epoch: float | None, now: float, tokens_per_second: Any
) -> dict[str, Any] | None:
    """The line for one Trainer log entry; None for entries that are not per-step metrics
    (the end-of-training summary)."""
    numbers = {
        k: float(v)
        for k, v in logs.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
    numbers.pop("epoch", None)
    numbers.pop("step", None)
    if any(k in numbers for k in SUMMARY_KEYS) or not numbers:
        return None
    line: dict[str, Any] = {"step": step, "epoch": round(epoch or 0.0, 4), "time": round(now, 3)}
    line.update(numbers)
    if kind_of(line) == "train" and tokens_per_second:
        line["tokens_per_second"] = round(float(tokens_per_second), 1)
    return line


class MetricsLog:
    """Appends lines to `<job>/metrics.jsonl`; each line is written whole and flushed. A line
    torn by a killed writer is ended before this process's first line, so it stays one bad
    line that readers skip instead of swallowing the next one."""

    def __init__(self, job_dir: str | os.PathLike[str]) -> None:
        self.path = Path(job_dir) / METRICS_FILE
        self.checked = False

    def append(self, line: dict[str, Any]) -> None:
        with self.path.open("a+b") as out:
            if not self.checked:
                self.checked = True
                if out.tell() > 0:
                    out.seek(-1, os.SEEK_END)
                    if out.read(1) != b"\n":
                        out.write(b"\n")
            out.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The lines of a metrics file, by step, the last one of each step and kind kept (a
    resumed run logs again from its checkpoint). A torn last line (a writer killed mid-line)
    and a missing file read as nothing."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    latest: dict[tuple[int, str], dict[str, Any]] = {}
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict) and isinstance(line.get("step"), int):
            latest[(line["step"], kind_of(line))] = line
    return [latest[key] for key in sorted(latest, key=lambda k: (k[0], k[1] != "train"))]


def series(lines: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """(step, value) of every line that has `key`."""
    return [(line["step"], line[key]) for line in lines if key in line]
