"""The end of a job: rank 0 copies the metric history into the outputs, keeps the first samples
as `kubetune preview` shows them (`samples.html`, for the report to show without loading a
tokenizer), and writes `report.html` (kubetune_trainer.report). A failure here is logged and
never touches the outputs or the job's outcome. At the start, `keep_config` puts the trainer
config in the job's folder when it lacks it (a pod reads it from its ConfigMap), so the folder
describes itself for `kubetune report DIR` whether the job ends well or not.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

from kubetune_api.config import TrainerConfig
from kubetune_trainer.report.metrics_log import METRICS_FILE
from kubetune_trainer.report.run_folder import CONFIG, SAMPLES
from kubetune_trainer.runtime.log import log

SAMPLES_SHOWN = 3
SAMPLE_PAGE = '<pre style="font-family:ui-monospace,monospace">{code}</pre>'


def write_samples(config: TrainerConfig, target: Path, tokenizer: Any) -> None:
    """The preview of the first samples, as HTML with the terminal's highlighting."""
    from rich.console import Console

    from kubetune_trainer.stages.preview import preview

    if config.dataset is None:
        return
    console = Console(record=True, file=io.StringIO(), width=110, force_terminal=True)
    preview(config, SAMPLES_SHOWN, console, tokenizer)
    tmp = target.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(console.export_html(inline_styles=True, code_format=SAMPLE_PAGE))
    os.replace(tmp, target)


def rank_zero() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def keep_config(config: TrainerConfig) -> None:
    """Rank 0: the trainer config into the job's folder when it lacks it (no secrets in it,
    only references)."""
    job = Path(config.paths.job)
    if rank_zero() and not (job / CONFIG).is_file():
        job.mkdir(parents=True, exist_ok=True)
        (job / CONFIG).write_text(config.dump())


def write_job_report(config: TrainerConfig, tokenizer: Any) -> None:
    """Rank 0. `tokenizer`: the trained one, with the job's chat template (the preview renders
    with it)."""
    from kubetune_trainer.report import write_report

    if not rank_zero():
        return
    job, out = Path(config.paths.job), Path(config.paths.output)
    try:
        if (job / METRICS_FILE).is_file():
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(job / METRICS_FILE, out / METRICS_FILE)
        write_samples(config, job / SAMPLES, tokenizer)
        (report,) = write_report(job)
        log(f"report {report}")
    except Exception as err:  # reported, never fatal to the outputs
        log(f"could not write the report (the outputs are complete): {type(err).__name__}: {err}")
