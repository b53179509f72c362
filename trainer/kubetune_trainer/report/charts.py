"""The report's charts as Vega-Lite specifications: one per group of metrics, against step.

Each chart draws a line with a point per logged value (a tooltip on each), one colour per
series; a chart whose metrics were never logged is left out. A series longer than MAX_POINTS
is thinned evenly (its last point kept), so a long run's report stays small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubetune_trainer.report.metrics_log import series

MAX_POINTS = 2000
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # an identifier: never fetched


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    axis: str
    lines: tuple[tuple[str, str], ...]
    """(metrics.jsonl key, series label) of each line."""


CHARTS = (
    Chart("loss", "Loss", "loss", (("loss", "train"), ("eval_loss", "held-out"))),
    Chart(
        "accuracy",
        "Held-out mean token accuracy",
        "accuracy",
        (
            ("eval_mean_token_accuracy", "mean token accuracy"),
            ("rewards/accuracies", "reward accuracy (train)"),
            ("eval_rewards/accuracies", "reward accuracy (held-out)"),
        ),
    ),
    Chart(
        "rewards",
        "DPO rewards",
        "reward",
        (
            ("rewards/chosen", "chosen"),
            ("rewards/rejected", "rejected"),
            ("rewards/margins", "margin"),
            ("eval_rewards/margins", "margin (held-out)"),
        ),
    ),
    Chart("lr", "Learning rate", "learning rate", (("learning_rate", "learning rate"),)),
    Chart(
        "throughput",
        "Throughput",
        "tokens/s",
        (("tokens_per_second", "real tokens/s, all ranks"),),
    ),
    Chart("grad-norm", "Gradient norm", "grad norm", (("grad_norm", "before clipping"),)),
)


def thinned(points: list[tuple[int, float]], limit: int = MAX_POINTS) -> list[tuple[int, float]]:
    """At most `limit` points, evenly spaced, the first and last kept."""
    if len(points) <= limit:
        return points
    last = len(points) - 1
    picks = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return [points[i] for i in picks]


def chart_values(chart: Chart, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"step": step, "value": value, "series": label}
        for key, label in chart.lines
        for step, value in thinned(series(lines, key))
    ]


def spec(chart: Chart, values: list[dict[str, Any]]) -> dict[str, Any]:
    labels = [label for _, label in chart.lines if any(v["series"] == label for v in values)]
    return {
        "$schema": SCHEMA,
        "title": chart.title,
        "width": "container",
        "height": 200,
        "data": {"values": values},
        "mark": {"type": "line", "point": True, "tooltip": True, "interpolate": "linear"},
        "encoding": {
            "x": {"field": "step", "type": "quantitative", "title": "step"},
            "y": {
                "field": "value",
                "type": "quantitative",
                "title": chart.axis,
                "scale": {"zero": False},
            },
            "color": {
                "field": "series",
                "type": "nominal",
                "title": None,
                "sort": labels,
                "legend": {"orient": "top"},
            },
        },
    }


def charts(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Chart id → Vega-Lite spec, for each chart with data."""
    out = {}
    for chart in CHARTS:
        if values := chart_values(chart, lines):
            out[chart.id] = spec(chart, values)
    return out
