"""A succeeded job's results file, as OpenAI compiles one: `result_files` names it, and the
Files API serves it (purpose `fine-tune-results`, `step_metrics.csv`).

Its columns are OpenAI's, `step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy`,
one row per point of the job's metric history (`status.metrics.points`: the whole run thinned to
at most 64 steps, every `every`-th logged step and the latest ones; the full history is
`metrics.jsonl` on the job's volume). A metric a step did not log is an empty cell. The file is
built from the job each time it is read, so it needs no storage and goes with the job.
"""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Any

from kubetune.openai_api.files import StoredFile

Obj = dict[str, Any]
PURPOSE = "fine-tune-results"
FILENAME = "step_metrics.csv"
# OpenAI's column → status.metrics.points[] field (the trainer computes token accuracy on the
# held-out split only, so `train_accuracy` stays empty)
COLUMNS: dict[str, str | None] = {
    "step": "step",
    "train_loss": "loss",
    "train_accuracy": None,
    "valid_loss": "evalLoss",
    "valid_mean_token_accuracy": "evalMeanTokenAccuracy",
}


def result_file_id(job: Obj) -> str:
    """A file id of the Files API's shape, fixed for this job (its uid tells apart a job
    deleted and created again under the same name)."""
    meta = job["metadata"]
    seed = f"{meta['namespace']}/{meta['name']}/{meta.get('uid', '')}"
    return "file-" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def result_csv(job: Obj) -> bytes:
    points = ((job.get("status") or {}).get("metrics") or {}).get("points") or []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for point in sorted(points, key=lambda p: p["step"]):
        writer.writerow(
            ["" if f is None or point.get(f) is None else point[f] for f in COLUMNS.values()]
        )
    return out.getvalue().encode()


def result_file(job: Obj, finished_at: int) -> StoredFile:
    """The `file` object of a job's results."""
    return StoredFile(
        id=result_file_id(job),
        bytes=len(result_csv(job)),
        created_at=finished_at,
        filename=FILENAME,
        purpose=PURPOSE,
        kind="results",
        examples=0,
    )
