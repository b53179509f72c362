"""The one-screen summary of a FineTuneJob (from a cluster or a run folder): phase and
conditions, a progress bar with ETA, the latest metrics, a terminal chart of train and held-out
loss, the checkpoints with their metrics, evaluation scores against the base, the outputs."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

PHASE_STYLE = {"Succeeded": "bold green", "Failed": "bold red", "Training": "bold cyan"}
TRAIN, EVAL = "•", "◆"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def loss_chart(points: list[dict[str, Any]], width: int = 64, height: int = 10) -> Text:
    """Train loss (•) and held-out loss (◆) against step, as characters."""
    marks = [
        (p["step"], p[k], m)
        for p in points
        for k, m in (("loss", TRAIN), ("evalLoss", EVAL))
        if p.get(k) is not None
    ]
    if not marks:
        return Text("no loss logged yet", style="dim")
    steps = [s for s, _, _ in marks]
    values = [v for _, v, _ in marks]
    low, high = min(values), max(values)
    first, last = min(steps), max(steps)
    grid = [[" "] * width for _ in range(height)]
    for step, value, mark in marks:
        x = 0 if last == first else round((step - first) / (last - first) * (width - 1))
        y = 0 if high == low else round((high - value) / (high - low) * (height - 1))
        if grid[y][x] != EVAL:  # a held-out point stays visible over a training one
            grid[y][x] = mark
    text = Text()
    for row, cells in enumerate(grid):
        label = f"{high:8.4g} " if row == 0 else f"{low:8.4g} " if row == height - 1 else " " * 9
        text.append(label + "│", style="dim")
        for cell in cells:
            text.append(cell, style="magenta" if cell == EVAL else "cyan")
        text.append("\n")
    text.append(" " * 9 + "└" + "─" * width + "\n", style="dim")
    axis = f"step {first}"
    text.append(" " * 10 + axis + f"{'step ' + str(last):>{width - len(axis)}}\n", style="dim")
    text.append(f"{TRAIN} train loss  ", style="cyan")
    text.append(f"{EVAL} held-out loss", style="magenta")
    return text


def progress_line(progress: dict[str, Any]) -> RenderableType:
    step, total = progress.get("step"), progress.get("totalSteps")
    if not step or not total:
        return Text("no training step reported yet", style="dim")
    eta = progress.get("etaSeconds")
    table = Table.grid(padding=(0, 1))
    table.add_row(
        ProgressBar(total=total, completed=step, width=40),
        Text(f"{step}/{total} ({100 * step // total}%)"),
        Text(f"ETA {eta // 60}m{eta % 60:02d}s" if eta is not None else "ETA -"),
    )
    if upload := progress.get("upload"):
        table.add_row(
            ProgressBar(total=max(upload["totalBytes"], 1), completed=upload["bytes"], width=40),
            Text(f"upload {upload['percent']}%" + (" done" if upload.get("done") else "")),
            Text(upload["uri"]),
        )
    return table


def latest_metrics(status: dict[str, Any]) -> Table:
    points = (status.get("metrics") or {}).get("points") or []
    latest = points[-1] if points else {}
    progress = status.get("progress") or {}
    evaluation = status.get("evaluation") or {}
    table = Table(title="latest", title_justify="left", show_header=True, box=None)
    row = {
        "loss": progress.get("loss", latest.get("loss")),
        "learning rate": latest.get("learningRate"),
        "grad norm": latest.get("gradNorm"),
        "tokens/s": progress.get("tokensPerSecond", latest.get("tokensPerSecond")),
        "epoch": progress.get("epoch"),
        "held-out loss": evaluation.get("loss"),
        "token accuracy": evaluation.get("meanTokenAccuracy"),
    }
    rewards = progress.get("rewards") or {}
    if rewards:
        row["reward accuracy"] = rewards.get("accuracy")
        row["reward margin"] = rewards.get("margin")
    if reinforcement := progress.get("reinforcement") or {}:
        row["reward"] = reinforcement.get("reward")
        row["kl"] = reinforcement.get("kl")
    for name in row:
        table.add_column(name, justify="right")
    table.add_row(*(_number(v) for v in row.values()))
    return table


def checkpoint_table(status: dict[str, Any]) -> Table | None:
    kept = (status.get("checkpoints") or {}).get("kept") or []
    if not kept:
        return None
    table = Table(title="checkpoints", title_justify="left", box=None)
    for column in ("step", "train loss", "held-out loss", "held-out accuracy", "path"):
        table.add_column(column)
    for entry in kept:
        metrics = entry.get("metrics") or {}
        table.add_row(
            str(entry.get("step")),
            _number(metrics.get("train_loss")),
            _number(metrics.get("valid_loss")),
            _number(metrics.get("valid_mean_token_accuracy")),
            str(entry.get("path", "")),
        )
    return table


def evaluation_table(status: dict[str, Any]) -> RenderableType | None:
    evaluation = status.get("evaluation") or {}
    trained, base = evaluation.get("toolCalls"), evaluation.get("baselineToolCalls")
    if evaluation.get("error"):
        return Text(f"tool-call scoring: {evaluation['error']}", style="yellow")
    if not trained:
        return None
    table = Table(title="tool calls, held-out", title_justify="left", box=None)
    for column in ("score", "trained", "base"):
        table.add_column(column, justify="right" if column != "score" else "left")
    for name, value in trained.items():
        table.add_row(name, _number(value), _number((base or {}).get(name)))
    return table


def screen(view: dict[str, Any]) -> RenderableType:
    status = view.get("status") or {}
    phase = status.get("phase") or "Pending"
    head = Text(f"{view['metadata']['name']}  ")
    head.append(phase, style=PHASE_STYLE.get(phase, "bold yellow"))
    current = next((c for c in status.get("conditions") or [] if c.get("type") == phase), None)
    if current:
        head.append(f"  {current.get('reason', '')}: {current.get('message', '')}", style="dim")
    parts: list[RenderableType] = [head, progress_line(status.get("progress") or {})]
    parts += [latest_metrics(status), loss_chart((status.get("metrics") or {}).get("points") or [])]
    parts += [p for p in (checkpoint_table(status), evaluation_table(status)) if p is not None]
    outputs = {k: v for k, v in (status.get("outputs") or {}).items() if v}
    if outputs:
        parts.append(Text("outputs: " + ", ".join(f"{k} {v}" for k, v in outputs.items())))
    return Group(*parts)
