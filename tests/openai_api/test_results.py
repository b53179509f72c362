"""A succeeded job's results file: OpenAI's `step_metrics.csv` columns (as OpenAI's results
files have them: step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy), one row
per point of `status.metrics`, read back with the csv module."""

from __future__ import annotations

import csv
import io
from typing import Any

from kubetune.openai_api.files import FILE_ID
from kubetune.openai_api.results import result_csv, result_file, result_file_id
from kubetune.openai_api.views import job_view, result_files


def job(phase: str, uid: str = "u1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "ftjob-a", "namespace": "team", "uid": uid},
        "spec": {"training": {}},
        "status": {"phase": phase, "completionTime": "2026-12-06T10:00:00Z", **status},
    }


POINTS = [  # as the trainer reports them: a training line and an evaluation line per step
    {"step": 20, "loss": 1.1, "gradNorm": 0.61, "evalLoss": 1.3},
    {"step": 10, "loss": 1.5, "learningRate": 1e-4},
    {"step": 30, "loss": 0.9, "evalLoss": 1.2, "evalMeanTokenAccuracy": 0.55},
]


def test_the_csv_has_openais_columns_and_a_row_per_step() -> None:
    done = job("Succeeded", metrics={"points": POINTS, "every": 1})
    rows = list(csv.DictReader(io.StringIO(result_csv(done).decode())))
    assert list(rows[0]) == [
        "step",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
    ]
    assert [r["step"] for r in rows] == ["10", "20", "30"]
    assert rows[1] == {
        "step": "20",
        "train_loss": "1.1",
        "train_accuracy": "",  # the trainer measures token accuracy held-out only
        "valid_loss": "1.3",
        "valid_mean_token_accuracy": "",
    }
    assert rows[2]["valid_mean_token_accuracy"] == "0.55" and rows[0]["valid_loss"] == ""


def test_only_a_succeeded_job_names_its_results_file() -> None:
    done = job("Succeeded", metrics={"points": POINTS}, progress={"tokensTrained": 5768})
    view = job_view(done)
    assert view["result_files"] == [result_file_id(done)] and view["trained_tokens"] == 5768
    assert FILE_ID.match(result_file_id(done))  # the Files API's own id shape
    assert result_file_id(done) != result_file_id(job("Succeeded", uid="u2"))
    (listed,) = result_files([done, job("Training"), job("Failed")])
    assert listed == result_file(done, 1_796_551_200)
    assert listed.openai()["purpose"] == "fine-tune-results"
    assert listed.bytes == len(result_csv(done))
    running = job_view(job("Training", progress={"tokensTrained": 10}))
    assert running["result_files"] == [] and running["trained_tokens"] is None
