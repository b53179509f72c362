"""The job report: `report.html` in the outputs, written by the trainer's rank 0 at the end of
every job and by `kubetune report` on demand, from the job folder alone (torch-free).

    run_folder  what a job left in its folder (also read by `kubetune status|watch|logs`)
    charts      the Vega-Lite charts of the metric history
    bundle      Vega, Vega-Lite and Vega-Embed as one script, embedded in the page
    page        the page
"""

from __future__ import annotations

import os
from pathlib import Path

from kubetune_trainer.report.page import render_page
from kubetune_trainer.report.run_folder import REPORT, RunFolder, job_folders


def write_report(path: Path) -> list[Path]:
    """report.html into the outputs of each job at `path` (a job folder, its outputs, or a
    workspace); returns the files written."""

    written = []
    for job in job_folders(path):
        run = RunFolder.load(job)  # one job folder each
        run.output.mkdir(parents=True, exist_ok=True)
        target = run.output / REPORT
        tmp = target.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(render_page(run), encoding="utf-8")
        os.replace(tmp, target)
        written.append(target)
    return written
