"""What a job left in its folder, read without torch: the report, `kubetune status`, `watch`
and `logs` all start here.

    <job>/trainer.yaml        the trainer config (the spec as resolved)
    <job>/finetunejob.yaml    the FineTuneJob as given (`kubetune run` writes it)
    <job>/run.json            the local run's phase and exit code (`kubetune run` writes it),
                              or a note on where the data came from (observe.cluster_report)
    <job>/prepared.json       what prepare made, with its data report
    <job>/progress.json       the trainer's latest report (the status' trainer-owned fields)
    <job>/metrics.jsonl       the metric history
    <job>/samples.html        the first samples as `kubetune preview` shows them
    <job>/logs/               prepare.log, node-<rank>.log (`kubetune run`)
    <output>/manifest.json    written last: the outputs are complete
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubetune_trainer.report.metrics_log import METRICS_FILE, read_metrics

CONFIG = "trainer.yaml"
JOB_FILE = "finetunejob.yaml"
RUN_STATE = "run.json"
SAMPLES = "samples.html"
REPORT = "report.html"


class NotARunFolder(ValueError):
    """The folder is neither a job's folder, its outputs, nor a workspace holding jobs."""


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def job_folders(path: Path) -> list[Path]:
    """The job folders at `path`: itself (it holds trainer.yaml), the job its outputs belong to
    (a manifest.json beside, the job folder above), or every job of a workspace (`jobs/*`)."""
    if (path / CONFIG).is_file():
        return [path]
    if (path / "manifest.json").is_file() and (path.parent / CONFIG).is_file():
        return [path.parent]
    found = sorted(p for p in (path / "jobs").glob("*") if (p / CONFIG).is_file())
    if not found:
        raise NotARunFolder(
            f"{path}: not a kubetune run folder (expected {CONFIG} in it, or jobs/<name>/{CONFIG}"
            " under it: the --output folder of `kubetune run`, or a job folder on the volume)"
        )
    return found


@dataclass
class RunFolder:
    path: Path
    config: dict[str, Any]
    job: dict[str, Any] | None = None
    run_state: dict[str, Any] | None = None
    prepared: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    samples_html: str | None = None

    @classmethod
    def load(cls, path: Path) -> RunFolder:
        """The one job at `path`; a workspace holding several (chained stages) names them."""
        found = job_folders(path)
        if len(found) > 1:
            names = ", ".join(str(p) for p in found)
            raise NotARunFolder(f"{path}: holds {len(found)} jobs; name one of them: {names}")
        path = found[0]
        config = yaml.safe_load((path / CONFIG).read_text(encoding="utf-8"))
        output = Path(config["paths"]["output"])
        job_file = path / JOB_FILE
        samples = path / SAMPLES
        metrics = read_metrics(path / METRICS_FILE) or read_metrics(output / METRICS_FILE)
        return cls(
            path=path,
            config=config,
            job=yaml.safe_load(job_file.read_text(encoding="utf-8"))
            if job_file.is_file()
            else None,
            run_state=_json(path / RUN_STATE),
            prepared=_json(path / "prepared.json"),
            progress=_json(path / "progress.json"),
            manifest=_json(output / "manifest.json"),
            metrics=metrics,
            samples_html=samples.read_text(encoding="utf-8") if samples.is_file() else None,
        )

    def _exported_since_start(self) -> bool:
        """The manifest is newer than run.json's last change (the run's start of training): it
        is this run's, not one a rerun in the same folder left."""
        try:
            manifest = (self.output / "manifest.json").stat().st_mtime
            return manifest >= (self.path / RUN_STATE).stat().st_mtime
        except OSError:
            return False

    @property
    def name(self) -> str:
        return str(self.config["jobName"])

    @property
    def output(self) -> Path:
        return Path(self.config["paths"]["output"])

    @property
    def evaluation(self) -> dict[str, Any]:
        """The latest evaluation: the manifest's (with the tool-call scores), else the
        progress report's."""
        found = (self.manifest or {}).get("evaluation") or (self.progress or {}).get("evaluation")
        return dict(found or {})

    @property
    def data_report(self) -> dict[str, Any]:
        return dict((self.prepared or {}).get("report") or {})

    def phase(self) -> str:
        """A local run's own record of its phase (`kubetune run`), Succeeded once this run wrote
        its manifest; else, for a job folder from the volume, Succeeded once the manifest
        exists, Training while the trainer reports, Pending before."""
        state = (self.run_state or {}).get("phase")
        if state == "Training" and self._exported_since_start():
            return "Succeeded"  # the trainer's own report, written before the processes exit
        if state:
            return str(state)
        if self.manifest is not None:
            return "Succeeded"
        if self.progress and self.progress.get("step") is not None:
            return "Training"
        return "Preparing" if (self.path / "logs" / "prepare.log").exists() else "Pending"
