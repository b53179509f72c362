"""FineTuneJobs as OpenAI's objects: status mapping, the job, its events and checkpoints, and
cursor pages, each validated with the `openai` package's own models."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types import Model
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from kubetune.api import parse_job
from kubetune.openai_api.views import (
    checkpoints_view,
    events_view,
    has_metadata,
    job_view,
    metadata_filter,
    models_view,
    newest_first,
    openai_status,
    page,
)
from kubetune.runtime.status import Observed, PodState, compute_status
from tests.support.factories import make_job

REQUEST: dict[str, Any] = {
    "model": "tiny-llama",
    "training_file": "file-" + "a" * 24,
    "validation_file": None,
    "method": "supervised",
    "hyperparameters": {"n_epochs": 2},
    "suffix": "grass",
    "seed": None,
    "metadata": {"team": "a"},
    "integrations": [],
}


def api_job(
    name: str = "ftjob-0123456789abcdef",
    status: dict[str, Any] | None = None,
    suspend: bool = False,
    cancelled: bool = False,
    created: str = "2026-12-06T08:00:00Z",
    request: dict[str, Any] | None = None,
) -> dict[str, Any]:
    annotations = {"api.kubetune.io/request": json.dumps(request or REQUEST)}
    if cancelled:
        annotations["api.kubetune.io/cancelled"] = "true"
    job: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "creationTimestamp": created,
            "labels": {"api.kubetune.io/managed": "true"},
            "annotations": annotations,
        },
        "spec": {"training": {"seed": 42}, "runPolicy": {"suspend": suspend}},
    }
    if status is not None:
        job["status"] = status
    return job


def condition(kind: str, at: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "lastTransitionTime": at,
        "reason": reason,
        "message": message,
    }


@pytest.mark.parametrize(
    ("status", "suspend", "cancelled", "expected"),
    [
        (None, False, False, "validating_files"),
        ({"phase": "Pending"}, False, False, "queued"),
        ({"phase": "Preparing"}, False, False, "running"),
        ({"phase": "Training"}, False, False, "running"),
        ({"phase": "Training"}, True, False, "pausing"),
        ({"phase": "Suspended"}, True, False, "paused"),
        ({"phase": "Suspended"}, False, False, "queued"),  # resumed, not yet running
        ({"phase": "Succeeded"}, False, False, "succeeded"),
        ({"phase": "Failed"}, False, False, "failed"),
        ({"phase": "Suspended"}, True, True, "cancelled"),
    ],
)
def test_status_mapping(
    status: dict[str, Any] | None, suspend: bool, cancelled: bool, expected: str
) -> None:
    assert openai_status(api_job(status=status, suspend=suspend, cancelled=cancelled)) == expected


def test_a_succeeded_job_as_openai_returns_it() -> None:
    job = api_job(
        status={
            "phase": "Succeeded",
            "completionTime": "2026-12-06T08:10:00Z",
            "conditions": [condition("Succeeded", "2026-12-06T08:10:00Z", "Completed", "done")],
        }
    )
    view = job_view(job)
    parsed = FineTuningJob.model_validate(view)
    assert parsed.status == "succeeded"
    assert parsed.fine_tuned_model == "ft:tiny-llama:team-a:grass:ftjob-0123456789abcdef"
    assert (parsed.created_at, parsed.finished_at) == (1_796_544_000, 1_796_544_600)
    assert parsed.hyperparameters.n_epochs == 2
    assert parsed.hyperparameters.batch_size == "auto"
    assert parsed.method is not None and parsed.method.type == "supervised"
    assert parsed.metadata == {"team": "a"} and parsed.organization_id == "team-a"


def test_a_failed_job_carries_openais_error_object() -> None:
    job = api_job(
        status={
            "phase": "Failed",
            "conditions": [condition("Failed", "2026-12-06T08:05:00Z", "TrainerFailed", "OOM")],
        }
    )
    parsed = FineTuningJob.model_validate(job_view(job))
    assert parsed.error is not None
    assert (parsed.error.code, parsed.error.message) == ("TrainerFailed", "OOM")
    assert parsed.fine_tuned_model is None


def test_a_running_job_estimates_its_finish_and_dpo_reports_beta() -> None:
    request = {**REQUEST, "method": "dpo", "hyperparameters": {"beta": 0.2}}
    job = api_job(
        request=request,
        status={
            "phase": "Training",
            "progress": {
                "step": 5,
                "totalSteps": 10,
                "etaSeconds": 60,
                "updatedAt": "2026-12-06T08:01:00Z",
            },
        },
    )
    parsed = FineTuningJob.model_validate(job_view(job))
    assert parsed.estimated_finish == 1_796_544_120
    assert parsed.method is not None and parsed.method.dpo is not None
    assert parsed.method.dpo.hyperparameters is not None
    assert parsed.method.dpo.hyperparameters.beta == 0.2


def test_events_come_from_conditions_progress_and_evaluation_newest_first() -> None:
    job = api_job(
        status={
            "phase": "Training",
            "conditions": [
                condition("Pending", "2026-12-06T08:00:10Z") | {"status": "False"},
                condition("Preparing", "2026-12-06T08:00:20Z", "Preparing", "tokenizing"),
                condition("Training", "2026-12-06T08:00:30Z", "Training", "training"),
                # the summary conditions: there from the start, only their True is news, and
                # Ready's True is Training's
                condition("Ready", "2026-12-06T08:00:30Z", "Training", "training"),
                condition("Succeeded", "2026-12-06T08:00:10Z") | {"status": "Unknown"},
                condition("Failed", "2026-12-06T08:00:10Z") | {"status": "False"},
                condition("Suspended", "2026-12-06T08:00:10Z") | {"status": "False"},
            ],
            "progress": {
                "step": 5,
                "totalSteps": 10,
                "loss": 1.5,
                "updatedAt": "2026-12-06T08:00:40Z",
            },
            "evaluation": {"step": 5, "loss": 1.7, "meanTokenAccuracy": 0.4},
        }
    )
    events = [FineTuningJobEvent.model_validate(e) for e in events_view(job)]
    assert [e.message for e in events] == [
        "Step 5: validation loss=1.7",  # as new as the latest report; found after it
        "Step 5/10: training loss=1.5",
        "Training: training",
        "Preparing: tokenizing",
        "Pending ended",
        "Created fine-tuning job",
    ]
    assert events[1].type == "metrics"
    assert events[1].data == {"step": 5, "total_steps": 10, "train_loss": 1.5}
    assert events[0].data == {"step": 5, "valid_loss": 1.7, "valid_mean_token_accuracy": 0.4}
    assert len({e.id for e in events}) == len(events)


def test_checkpoints_name_their_metrics_as_openai_does() -> None:
    job = api_job(
        status={
            "phase": "Training",
            "checkpoints": {
                "kept": [
                    {"step": 50, "metrics": {"train_loss": 2.0}},
                    {
                        "step": 100,
                        "metrics": {
                            "train_loss": 1.0,
                            "valid_loss": 1.2,
                            "valid_mean_token_accuracy": 0.5,
                        },
                    },
                ]
            },
        }
    )
    checkpoints = [FineTuningJobCheckpoint.model_validate(c) for c in checkpoints_view(job)]
    assert [c.step_number for c in checkpoints] == [100, 50]
    assert checkpoints[0].metrics.valid_mean_token_accuracy == 0.5
    assert checkpoints[0].fine_tuned_model_checkpoint.endswith(
        ":ftjob-0123456789abcdef:ckpt-step-100"
    )


def test_cursor_pages_walk_every_job_once_newest_first() -> None:
    jobs = [
        api_job(name=f"ftjob-{i:02d}", created=f"2026-12-06T08:00:{i // 2:02d}Z") for i in range(7)
    ]
    ordered = [j["metadata"]["name"] for j in newest_first(jobs)]
    assert ordered[0] == "ftjob-06"
    seen, after = [], None
    while True:
        chunk = page([{"id": n} for n in ordered], after, 3, key=lambda j: j["id"])
        seen += [item["id"] for item in chunk["data"]]
        if not chunk["has_more"]:
            break
        after = chunk["last_id"]
    assert seen == ordered
    assert page([{"id": "a"}], "gone", 3, key=lambda j: j["id"])["data"] == []


def test_models_lists_the_catalog_then_fine_tuned_models() -> None:
    done = api_job(status={"phase": "Succeeded", "completionTime": "2026-12-06T08:10:00Z"})
    running = api_job(name="ftjob-running", status={"phase": "Training"})
    models = [Model.model_validate(m) for m in models_view(["tiny-llama"], [done, running])]
    assert [(m.id, m.owned_by) for m in models] == [
        ("tiny-llama", "kubetune"),
        ("ft:tiny-llama:team-a:grass:ftjob-0123456789abcdef", "team-a"),
    ]


def test_jobs_filter_by_metadata_as_openai_lists_them() -> None:
    wanted = metadata_filter([("limit", "2"), ("metadata[team]", "a")])
    assert wanted == {"team": "a"}
    assert has_metadata(api_job(), wanted)
    assert not has_metadata(api_job(), {"team": "b"})
    assert has_metadata(api_job(), {})


def test_a_summary_condition_that_held_and_ended_is_an_event() -> None:
    """The operator's own conditions for a job suspended (08:01) and resumed (08:02): the
    resume is `Suspended ended`; the summary conditions that never moved are no events."""
    spec = parse_job(make_job())
    running = Observed(
        pytorchjob={"metadata": {"name": "j"}, "status": {"conditions": []}},
        pods=[PodState("p", phase="Running")],
    )
    paused = Observed(
        pytorchjob={
            "metadata": {"name": "j"},
            "status": {"conditions": [{"type": "Suspended", "status": "True"}]},
        }
    )
    status = compute_status(spec, running, None, "2026-12-06T08:00:00Z")
    status = compute_status(spec, paused, status, "2026-12-06T08:01:00Z")
    status = compute_status(spec, running, status, "2026-12-06T08:02:00Z")
    messages = [e["message"] for e in events_view(api_job(status=status))]
    assert "Suspended ended" in messages and "Training: training" in messages
    assert not {"Failed ended", "Ready ended", "Succeeded ended"} & set(messages)
    assert not any(m.startswith(("Ready", "Succeeded", "Failed")) for m in messages), messages
