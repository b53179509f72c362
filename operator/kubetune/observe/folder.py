"""A `kubetune run` folder as a FineTuneJob: the same `metadata`/`spec`/`status` shape as the
object on a cluster, so `status`, `watch` and `-o json` read one shape.

The status is built from what the trainer and `kubetune run` left (run_folder.RunFolder): the
phase from `run.json`, the trainer-owned fields from `progress.json` as the status reporter
sends them (`StatusSink.body`), the metric history downsampled as in the status
(`MetricsTail`), and the outputs from the manifest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubetune_api.resource import GROUP, KIND, VERSION
from kubetune_trainer.report.metrics_tail import MetricsTail
from kubetune_trainer.report.run_folder import RunFolder
from kubetune_trainer.runtime.reporter import StatusSink

FINAL = {"Succeeded": 0, "Failed": 1}
"""Phases a job does not leave, and the exit code `kubetune watch` ends with."""


def condition(run: RunFolder, phase: str) -> dict[str, Any]:
    state = run.run_state or {}
    message = {
        "Pending": "nothing ran yet",
        "Preparing": "fetching the model and preparing the dataset",
        "Training": "training",
        "Succeeded": "training finished; outputs complete",
    }.get(phase, "")
    if phase == "Failed":
        message = f"exited with code {state.get('exitCode')}; see logs/{state.get('log')}"
    reason = {"Succeeded": "TrainingSucceeded", "Failed": "TrainingFailed"}.get(phase, phase)
    found = {"type": phase, "status": "True", "reason": reason, "message": message}
    if state.get("updatedAt"):
        found["lastTransitionTime"] = state["updatedAt"]
    return found


def folder_view(path: Path) -> dict[str, Any]:
    """The job at `path` (a run folder, a job folder or its outputs) as a FineTuneJob."""
    run = RunFolder.load(path)
    phase = run.phase()
    status: dict[str, Any] = {"phase": phase, "conditions": [condition(run, phase)]}
    if run.progress:
        status.update(StatusSink.body(run.progress)["status"])
    tail = MetricsTail()
    for line in run.metrics:
        tail.add(line)
    if tail.logged:
        status["metrics"] = tail.status(str(run.path / "metrics.jsonl"))
    if run.evaluation:
        status["evaluation"] = run.evaluation
    if run.manifest:
        outputs = {k: v for k, v in (run.manifest.get("outputs") or {}).items() if k != "gguf"}
        status["outputs"] = {**outputs, "manifest": str(run.output / "manifest.json")}
        for name, file in (("report", "report.html"), ("metrics", "metrics.jsonl")):
            if (run.output / file).is_file():
                status["outputs"][name] = str(run.output / file)
    job = run.job or {"metadata": {"name": run.name}, "spec": {}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {**job.get("metadata", {}), "name": run.name},
        "spec": job.get("spec", {}),
        "status": status,
        "source": {"folder": str(run.path)},
    }


def folder_changes(path: Path, poll_seconds: float = 0.5) -> Iterator[dict[str, Any]]:
    """The view now, then each time it changes (the files are read every `poll_seconds`: a
    folder, unlike the API server, has no watch), until the job is in a final phase."""
    last: dict[str, Any] | None = None
    while True:
        view = folder_view(path)
        if view != last:
            yield view
            last = view
        if view["status"]["phase"] in FINAL:
            return
        time.sleep(poll_seconds)
