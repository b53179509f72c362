"""Checkpoints are complete only once marked: a half-written one is never resumed from.

A checkpoint is a folder `checkpoint-<step>` holding the marker `kubetune-complete.json`,
written after every rank finished saving. Custom training code marks its own with
`mark_complete(folder)`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

MARKER = "kubetune-complete.json"
_STEP = re.compile(r"^checkpoint-(\d+)$")


def step_of(path: Path) -> int | None:
    match = _STEP.match(path.name)
    return int(match.group(1)) if match else None


def mark_complete(folder: str | os.PathLike[str], **info: object) -> None:
    target = Path(folder) / MARKER
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps({"completedAt": time.time(), **info}))
    os.replace(tmp, target)


def complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def checkpoints(root: Path) -> list[Path]:
    """Checkpoint folders by step, oldest first."""
    if not root.is_dir():
        return []
    found = [(step_of(p), p) for p in root.iterdir() if p.is_dir()]
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def latest_complete(root: Path) -> Path | None:
    done = [p for p in checkpoints(root) if complete(p)]
    return done[-1] if done else None


def remove_incomplete(root: Path) -> list[Path]:
    """Delete checkpoints that were never marked complete (a crash mid-save)."""
    removed = [p for p in checkpoints(root) if not complete(p)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def kept_with_metrics(root: Path) -> list[dict[str, object]]:
    """The complete checkpoints, oldest first, each with the metrics at its step, in the shape of
    OpenAI's fine-tuning checkpoints (`step`, `metrics`: `train_loss`, `valid_loss`,
    `valid_mean_token_accuracy`): the latest of each logged at or before the step, read from the
    checkpoint's own `trainer_state.json`, so they survive restarts."""
    kept: list[dict[str, object]] = []
    for folder in checkpoints(root):
        step = step_of(folder)
        if not complete(folder) or step is None:
            continue
        try:
            history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
        except (OSError, ValueError, KeyError):
            history = []
        metrics: dict[str, float] = {}
        for entry in history:
            if entry.get("step", 0) > step:
                continue
            for source, name in (
                ("loss", "train_loss"),
                ("eval_loss", "valid_loss"),
                ("eval_mean_token_accuracy", "valid_mean_token_accuracy"),
            ):
                if isinstance(entry.get(source), int | float):
                    metrics[name] = round(float(entry[source]), 5)
        kept.append({"step": step, "path": str(folder), "metrics": metrics})
    return kept


# --- what a restart costs -----------------------------------------------------------------
# Rank 0 records the furthest step it reached in `<job>/step-reached` at every step (a SIGKILL
# loses none of it); a run that resumes compares it with the checkpoint it resumes from and
# appends the difference to `<job>/resumes.json`: the steps a restart (an eviction, a kill, a
# suspend) made the job do again.
REACHED = "step-reached"
RESUMES = "resumes.json"


def _replace(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: a reader (or a kill) never sees half of it."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def record_reached(job: Path, step: int) -> None:
    _replace(job / REACHED, str(step))


# Rank 0 keeps the real tokens the job's training steps processed, all ranks and every run
# together (steps a restart redid count again: they were processed again), in
# `<job>/tokens-trained`: a resumed run goes on from it. `status.progress.tokensTrained`, and the
# OpenAI API's `trained_tokens`.
TOKENS = "tokens-trained"


def tokens_trained(job: Path) -> int:
    try:
        return int((job / TOKENS).read_text())
    except (OSError, ValueError):
        return 0


def record_tokens(job: Path, total: int) -> None:
    _replace(job / TOKENS, str(total))


def resumes(job: Path) -> list[dict[str, Any]]:
    """Every resume of this job so far, oldest first."""
    try:
        found = json.loads((job / RESUMES).read_text())
    except (OSError, ValueError):
        return []
    return list(found) if isinstance(found, list) else []


def record_resume(job: Path, checkpoint: Path | None) -> dict[str, Any] | None:
    """Append this resume (from `checkpoint`, or from the start when none was complete yet,
    after reaching the recorded step) to resumes.json and return it; None for a first start."""
    if checkpoint is None and not (job / REACHED).exists():
        return None
    start = (step_of(checkpoint) or 0) if checkpoint is not None else 0
    try:
        reached = int((job / REACHED).read_text())
    except (OSError, ValueError):
        reached = start
    entry: dict[str, Any] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fromStep": start,
        "reachedStep": reached,
        "stepsRedone": max(0, reached - start),
    }
    _replace(job / RESUMES, json.dumps([*resumes(job), entry], indent=1))
    return entry


def resume_summary(job: Path) -> dict[str, int]:
    """{resumes, stepsRedone} over every resume so far, empty when there was none."""
    found = resumes(job)
    if not found:
        return {}
    redone = sum(int(e.get("stepsRedone", 0)) for e in found)
    return {"resumes": len(found), "stepsRedone": redone}
