"""The metric history the FineTuneJob status carries: `status.metrics`, bounded however long
the run.

`metrics.jsonl` keeps every logging step; the status keeps an overview of the whole run (every
`every`-th logged step, at most OVERVIEW points: when it fills up, every other point is dropped
and `every` doubles) and the latest RECENT steps, in one list by step. A 100,000-step run
reports as few points as a 500-step one, so the object stays far below etcd's limits
(`tests/api/test_status_size.py`). Torch-free.
"""

from __future__ import annotations

from collections import deque
from typing import Any

OVERVIEW = 40
RECENT = 10
# metrics.jsonl name → status.metrics.points[] name
POINT_FIELDS = {
    "loss": "loss",
    "learning_rate": "learningRate",
    "grad_norm": "gradNorm",
    "tokens_per_second": "tokensPerSecond",
    "eval_loss": "evalLoss",
    "eval_mean_token_accuracy": "evalMeanTokenAccuracy",
    "rewards/accuracies": "rewardAccuracy",
    "rewards/margins": "rewardMargin",
}


def _short(value: float) -> float:
    """Five significant digits: what a chart or a person reads, in fewer bytes."""
    return float(f"{value:.5g}")


class MetricsTail:
    """Points by logged step; a training line and an evaluation line of the same step are one
    point."""

    def __init__(self, overview: int = OVERVIEW, recent: int = RECENT) -> None:
        self.limit = overview
        self.every = 1
        self.logged = 0
        self.overview: list[dict[str, Any]] = []
        self.recent: deque[dict[str, Any]] = deque(maxlen=recent)

    def add(self, line: dict[str, Any]) -> None:
        """Take one metrics.jsonl line (lines come in step order)."""
        fields = {
            name: _short(float(line[key])) for key, name in POINT_FIELDS.items() if key in line
        }
        if not fields:
            return
        step = int(line["step"])
        if self.recent and self.recent[-1]["step"] == step:
            self.recent[-1].update(fields)  # the same dict as in the overview, if kept there
            return
        point = {"step": step, **fields}
        if self.logged % self.every == 0:
            self.overview.append(point)
            if len(self.overview) > self.limit:
                self.overview = self.overview[::2]
                self.every *= 2
        self.logged += 1
        self.recent.append(point)

    def points(self) -> list[dict[str, Any]]:
        by_step = {p["step"]: p for p in [*self.overview, *self.recent]}
        return [dict(by_step[s]) for s in sorted(by_step)]

    def status(self, file: str | None) -> dict[str, Any]:
        """`status.metrics`: the points, the overview's spacing, the steps logged in all, and
        where the whole history is."""
        out: dict[str, Any] = {"points": self.points(), "every": self.every, "logged": self.logged}
        if file:
            out["file"] = file
        return out
