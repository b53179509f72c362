"""`kubetune report JOB` for a FineTuneJob on a cluster: the report made from the object
alone, where the job folder (on the workspace volume) is out of reach.

The object's `status.metrics` (the downsampled history), progress, checkpoints and evaluation
and its spec are laid out as a job folder in a temporary directory — the files the trainer
would have left — and the same page is written from it. The charts then have the status'
points, not every logged step, and the data report is missing; the page says so. The full
report is on the volume at `status.outputs.report`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from kubetune_trainer.report import write_report
from kubetune_trainer.report.metrics_tail import POINT_FIELDS
from kubetune_trainer.report.run_folder import CONFIG, JOB_FILE, RUN_STATE

LINE_KEYS = {name: key for key, name in POINT_FIELDS.items()}


def metric_lines(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """status.metrics points back as metrics.jsonl lines (a training and an evaluation line per
    point that has both)."""
    lines = []
    for point in points:
        values = {LINE_KEYS[k]: v for k, v in point.items() if k in LINE_KEYS}
        train = {k: v for k, v in values.items() if not k.startswith("eval_")}
        evaluation = {k: v for k, v in values.items() if k.startswith("eval_")}
        lines += [{"step": point["step"], **part} for part in (train, evaluation) if part]
    return lines


def lay_out(job: dict[str, Any], folder: Path) -> None:
    """The object as a job folder: trainer.yaml, finetunejob.yaml, run.json, progress.json,
    metrics.jsonl."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    name = job["metadata"]["name"]
    config = {
        "jobName": name,
        "model": spec.get("model") or {},
        "method": spec.get("method") or {},
        "training": spec.get("training") or {},
        "paths": {"output": str(folder / "output"), "job": str(folder)},
    }
    (folder / CONFIG).write_text(yaml.safe_dump(config))
    shown = {
        "apiVersion": job.get("apiVersion"),
        "kind": job.get("kind"),
        "metadata": {k: job["metadata"][k] for k in ("name", "namespace") if k in job["metadata"]},
        "spec": spec,
    }
    (folder / JOB_FILE).write_text(yaml.safe_dump(shown, sort_keys=False))
    outputs = status.get("outputs") or {}
    note = (
        f"Made from the FineTuneJob's status on the cluster: its downsampled history "
        f"({len((status.get('metrics') or {}).get('points') or [])} points), no data report. "
        f"The full report is on the workspace volume ({outputs.get('claimName', 'its claim')}): "
        f"{outputs.get('report', 'report.html in the outputs')}."
    )
    state = {"phase": status.get("phase") or "Pending", "note": note}
    (folder / RUN_STATE).write_text(json.dumps(state))
    progress = {
        **(status.get("progress") or {}),
        "checkpointsKept": (status.get("checkpoints") or {}).get("kept") or [],
        "evaluation": status.get("evaluation") or {},
    }
    (folder / "progress.json").write_text(json.dumps(progress))
    points = (status.get("metrics") or {}).get("points") or []
    lines = "".join(json.dumps(line) + "\n" for line in metric_lines(points))
    (folder / "metrics.jsonl").write_text(lines)


def write_cluster_report(job: dict[str, Any], target: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="kubetune-report-") as tmp:
        folder = Path(tmp)
        lay_out(job, folder)
        (written,) = write_report(folder)
        shutil.copyfile(written, target)
    return target
