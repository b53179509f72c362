"""FineTuneJobs as OpenAI's objects: the job, its events, its checkpoints, and list pages.

`status` follows the table in docs/openai-api.md#jobs (`openai_status`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from kubetune.openai_api.files import StoredFile
from kubetune.openai_api.jobs import CANCELLED_ANNOTATION, REQUEST_ANNOTATION
from kubetune.openai_api.results import result_file, result_file_id
from kubetune_api.conditions import READY, SUMMARY, Reason

Obj = dict[str, Any]


def unix(stamp: str | None) -> int | None:
    if not stamp:
        return None
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def request_of_job(job: Obj) -> Obj:
    raw = job["metadata"].get("annotations", {}).get(REQUEST_ANNOTATION, "{}")
    request: Obj = json.loads(raw)
    return request


def openai_status(job: Obj) -> str:
    annotations = job["metadata"].get("annotations") or {}
    status = job.get("status") or {}
    phase = status.get("phase")
    if annotations.get(CANCELLED_ANNOTATION) == "true":
        return "cancelled"
    if phase == "Succeeded":
        return "succeeded"
    if phase == "Failed":
        return "failed"
    if (job["spec"].get("runPolicy") or {}).get("suspend"):
        return "paused" if phase == "Suspended" else "pausing"
    if phase is None:
        return "validating_files"
    if phase in ("Preparing", "Training"):
        return "running"
    return "queued"


def fine_tuned_model(job: Obj, request: Obj) -> str:
    """OpenAI's `ft:<base>:<organization>:<suffix>:<id>`; the namespace is the organization."""
    meta, suffix = job["metadata"], request.get("suffix") or ""
    return f"ft:{request.get('model')}:{meta['namespace']}:{suffix}:{meta['name']}"


def _current_condition(status: Obj) -> Obj:
    phase = status.get("phase")
    return next((c for c in status.get("conditions") or [] if c.get("type") == phase), {})


def job_view(job: Obj) -> Obj:
    """The `fine_tuning.job` object."""
    meta, status = job["metadata"], job.get("status") or {}
    request = request_of_job(job)
    state = openai_status(job)
    training = job["spec"].get("training") or {}
    hyper = dict(request.get("hyperparameters") or {})
    hp: Obj = {
        "n_epochs": hyper.get("n_epochs", "auto"),
        "batch_size": hyper.get("batch_size", "auto"),
        "learning_rate_multiplier": hyper.get("learning_rate_multiplier", "auto"),
    }
    method_type = request.get("method", "supervised")
    method: Obj = {"type": method_type}
    if method_type == "dpo":
        method["dpo"] = {"hyperparameters": {**hp, "beta": hyper.get("beta", "auto")}}
    elif method_type == "reinforcement":
        method["reinforcement"] = {"grader": request.get("grader"), "hyperparameters": hp}
    else:
        method["supervised"] = {"hyperparameters": hp}
    error = None
    if state == "failed":
        cond = _current_condition(status)
        error = {
            "code": cond.get("reason") or "failed",
            "message": cond.get("message") or "the FineTuneJob failed",
            "param": None,
        }
    progress = status.get("progress") or {}
    estimated = None
    if state == "running" and progress.get("etaSeconds") is not None:
        base = unix(progress.get("updatedAt"))
        estimated = base + int(progress["etaSeconds"]) if base is not None else None
    return {
        "object": "fine_tuning.job",
        "id": meta["name"],
        "created_at": unix(meta.get("creationTimestamp")),
        "finished_at": unix(status.get("completionTime"))
        if state in ("succeeded", "failed")
        else None,
        "model": request.get("model"),
        "fine_tuned_model": fine_tuned_model(job, request) if state == "succeeded" else None,
        "organization_id": meta["namespace"],
        "status": state,
        "error": error,
        "training_file": request.get("training_file"),
        "validation_file": request.get("validation_file"),
        "hyperparameters": hp,
        "method": method,
        "seed": training.get("seed", 42),
        "suffix": request.get("suffix"),
        "metadata": request.get("metadata") or None,
        "integrations": [
            {"type": "wandb", "wandb": i.get("wandb")} for i in request.get("integrations") or []
        ]
        or None,
        "result_files": [result_file_id(job)] if state == "succeeded" else [],
        "trained_tokens": progress.get("tokensTrained") if state == "succeeded" else None,
        "estimated_finish": estimated,
    }


def _event(
    job_id: str, created: int | None, message: str, level: str = "info", **extra: Any
) -> Obj:
    digest = hashlib.sha256(f"{job_id}|{created}|{message}".encode()).hexdigest()[:24]
    event: Obj = {
        "object": "fine_tuning.job.event",
        "id": f"ftevent-{digest}",
        "created_at": created or 0,
        "level": level,
        "message": message,
        "type": extra.pop("type", "message"),
        "data": extra.pop("data", None),
    }
    return event


def events_view(job: Obj) -> list[Obj]:
    """The job's events, newest first (as OpenAI lists them): its creation, each condition (the
    phases, with the operator's message; one that is no longer true as `<type> ended`), the
    latest progress as a `metrics` event, and the latest evaluation."""
    meta, status = job["metadata"], job.get("status") or {}
    name = meta["name"]
    created = unix(meta.get("creationTimestamp"))
    events = [_event(name, created, "Created fine-tuning job")]
    for cond in status.get("conditions") or []:
        at = unix(cond.get("lastTransitionTime"))
        if cond.get("status") != "True":
            # A phase's condition is kept once it has been true: False means it has ended. The
            # summary conditions are there from the start: of them only a resumed suspension
            # (Suspended False, reason Resumed) has ended.
            if cond["type"] not in SUMMARY or cond.get("reason") == Reason.RESUMED:
                events.append(_event(name, at, f"{cond['type']} ended"))
            continue
        if cond["type"] == READY:  # the Training condition's twin
            continue
        level = "error" if cond["type"] == "Failed" else "info"
        text = f"{cond['type']}: {cond.get('message') or cond.get('reason') or ''}".rstrip(": ")
        events.append(_event(name, at, text, level))
    progress = status.get("progress") or {}
    if progress.get("step") is not None:
        data = {
            "step": progress["step"],
            "total_steps": progress.get("totalSteps"),
            "train_loss": progress.get("loss"),
        }
        total = progress.get("totalSteps") or "?"
        text = f"Step {progress['step']}/{total}: training loss={progress.get('loss')}"
        events.append(
            _event(name, unix(progress.get("updatedAt")), text, type="metrics", data=data)
        )
    evaluation = status.get("evaluation") or {}
    if evaluation.get("step") is not None:
        data = {
            "step": evaluation["step"],
            "valid_loss": evaluation.get("loss"),
            "valid_mean_token_accuracy": evaluation.get("meanTokenAccuracy"),
        }
        text = f"Step {evaluation['step']}: validation loss={evaluation.get('loss')}"
        # It carries no time of its own: the trainer's latest report, else the job's creation.
        at = unix(progress.get("updatedAt")) or created
        events.append(_event(name, at, text, type="metrics", data=data))
    # Stable: newest first, the order of discovery breaking ties.
    ordered = sorted(enumerate(events), key=lambda pair: (-(pair[1]["created_at"]), -pair[0]))
    return [event for _, event in ordered]


def checkpoints_view(job: Obj) -> list[Obj]:
    """`status.checkpoints.kept`, newest first, metrics named as OpenAI names them."""
    meta, status = job["metadata"], job.get("status") or {}
    request = request_of_job(job)
    kept = (status.get("checkpoints") or {}).get("kept") or []
    created = unix(meta.get("creationTimestamp")) or 0
    out = []
    for entry in reversed(kept):
        step = int(entry["step"])
        metrics = {"step": float(step), **(entry.get("metrics") or {})}
        out.append(
            {
                "object": "fine_tuning.job.checkpoint",
                "id": f"ftckpt-{meta['name']}-{step}",
                "created_at": created,
                "fine_tuned_model_checkpoint": f"{fine_tuned_model(job, request)}:ckpt-step-{step}",
                "fine_tuning_job_id": meta["name"],
                "metrics": metrics,
                "step_number": step,
            }
        )
    return out


def page(items: Sequence[Obj], after: str | None, limit: int, key: Callable[[Obj], str]) -> Obj:
    """OpenAI's cursor page: the `limit` items after the one whose id is `after`."""
    start = 0
    if after is not None:
        ids = [key(item) for item in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    chunk = list(items[start : start + limit])
    return {
        "object": "list",
        "data": chunk,
        "has_more": start + limit < len(items),
        "first_id": key(chunk[0]) if chunk else None,
        "last_id": key(chunk[-1]) if chunk else None,
    }


def newest_first(jobs: Sequence[Obj]) -> list[Obj]:
    """Jobs newest first; the name breaks ties (creation times have one-second resolution), so
    a cursor walks every job exactly once."""
    return sorted(
        jobs,
        key=lambda j: (j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]),
        reverse=True,
    )


def models_view(base_models: Sequence[str], jobs: Sequence[Obj]) -> list[Obj]:
    """`GET /v1/models`: the catalog's base models, then every succeeded job's fine-tuned model
    (newest first), as OpenAI's `model` objects."""
    out = [
        {"id": name, "object": "model", "created": 0, "owned_by": "kubetune"}
        for name in base_models
    ]
    for job in newest_first(jobs):
        if openai_status(job) == "succeeded":
            meta = job["metadata"]
            out.append(
                {
                    "id": fine_tuned_model(job, request_of_job(job)),
                    "object": "model",
                    "created": unix((job.get("status") or {}).get("completionTime")) or 0,
                    "owned_by": meta["namespace"],
                }
            )
    return out


def metadata_filter(query: Sequence[tuple[str, str]]) -> dict[str, str]:
    """OpenAI's `metadata[key]=value` list filter, from the query string."""
    return {
        k[len("metadata[") : -1]: v
        for k, v in query
        if k.startswith("metadata[") and k.endswith("]")
    }


def has_metadata(job: Obj, wanted: dict[str, str]) -> bool:
    metadata = request_of_job(job).get("metadata") or {}
    return all(metadata.get(k) == v for k, v in wanted.items())


def result_files(jobs: Sequence[Obj]) -> list[StoredFile]:
    """The results file of every succeeded job (`results.py`)."""
    return [
        result_file(job, unix((job.get("status") or {}).get("completionTime")) or 0)
        for job in jobs
        if openai_status(job) == "succeeded"
    ]
