"""A `POST /v1/fine_tuning/jobs` request, turned into a FineTuneJob (pure: no I/O, no clock).

OpenAI's fields map to the spec as docs/openai-api.md#jobs tabulates; the rest comes from the
model's catalog entry. `"auto"` keeps the entry's value. The request itself (model, files,
suffix, metadata, method) is kept in the annotation `api.kubetune.io/request`, which the views
read back.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

from kubetune.api.job import InvalidJob, parse_job
from kubetune.openai_api.catalog import Catalog
from kubetune.openai_api.errors import ApiError, invalid
from kubetune.openai_api.files import StoredFile
from kubetune.openai_api.graders import PARAM as GRADER_PARAM
from kubetune.openai_api.graders import rewards_of
from kubetune_api.resource import API_VERSION, KIND

MANAGED_LABEL = "api.kubetune.io/managed"
REQUEST_ANNOTATION = "api.kubetune.io/request"
CANCELLED_ANNOTATION = "api.kubetune.io/cancelled"
JOB_ID = re.compile(r"^ftjob-[a-z0-9]{1,40}$")
FILE_KINDS = {"supervised": "supervised", "dpo": "preference", "reinforcement": "reinforcement"}
DATASET_FORMATS = {"supervised": "messages", "dpo": "preference", "reinforcement": "prompts"}
# OpenAI's reinforcement hyperparameters kubetune has no setting for: only "auto" is taken.
AUTO_ONLY = {"compute_multiplier", "eval_interval", "eval_samples", "reasoning_effort"}
# Where a refused field came from, for OpenAI's `param`.
PARAMS = {
    "spec.training.epochs": "hyperparameters.n_epochs",
    "spec.training.globalBatchSize": "hyperparameters.batch_size",
    "spec.training.learningRate": "hyperparameters.learning_rate_multiplier",
    "spec.training.dpo.beta": "hyperparameters.beta",
    "spec.training.seed": "seed",
    "spec.tracking.wandb.apiKeySecretRef": "integrations",
    "spec.rewards": GRADER_PARAM,
}


def _hyperparameters(body: dict[str, Any], method: str) -> dict[str, Any]:
    spelled = body.get("method", {}).get(method, {}) or {}
    nested = spelled.get("hyperparameters") or {}
    legacy = body.get("hyperparameters") or {}
    if legacy and method != "supervised":
        raise invalid(
            "hyperparameters: only for supervised jobs; set method.dpo.hyperparameters",
            param="hyperparameters",
        )
    merged = {**legacy, **nested}
    allowed = {"n_epochs", "batch_size", "learning_rate_multiplier"} | (
        {"beta"} if method == "dpo" else AUTO_ONLY if method == "reinforcement" else set()
    )
    for key, value in merged.items():
        if key not in allowed:
            raise invalid(
                f"hyperparameters.{key}: not a {method} hyperparameter "
                f"(allowed: {', '.join(sorted(allowed))})",
                param=f"hyperparameters.{key}",
            )
        if key in AUTO_ONLY and value not in ("auto", None):
            raise invalid(
                f"hyperparameters.{key}: only 'auto' is served (kubetune has no such setting)",
                param=f"hyperparameters.{key}",
            )
    return {k: v for k, v in merged.items() if v != "auto" and v is not None}


def _number(value: Any, name: str, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"{name}: expected a number or 'auto', got {value!r}", param=name)
    if kind is int and value != int(value):
        raise invalid(f"{name}: expected a whole number, got {value!r}", param=name)
    return kind(value)


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 16:
        raise invalid("metadata: at most 16 string key-value pairs", param="metadata")
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 64 or len(item) > 512:
            raise invalid(
                f"metadata.{key}: keys up to 64 characters, values strings up to 512",
                param="metadata",
            )
    return dict(value)


def request_of(body: dict[str, Any]) -> dict[str, Any]:
    """The request's checked fields (400 on a malformed one), before any lookup."""
    for field in ("model", "training_file"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise invalid(f"{field}: required, a string", param=field)
    method = (body.get("method") or {}).get("type", "supervised")
    if method not in FILE_KINDS:
        raise invalid(
            f"method.type: {method!r} is not served (supervised, dpo or reinforcement)",
            param="method.type",
        )
    grader = None
    if method == "reinforcement":
        grader = ((body.get("method") or {}).get("reinforcement") or {}).get("grader")
        rewards_of(grader)  # refused here, before any lookup, when not served
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or not 1 <= len(suffix) <= 64):
        raise invalid("suffix: a string of 1 to 64 characters", param="suffix")
    seed = body.get("seed")
    if seed is not None:
        seed = _number(seed, "seed", int)
        if seed < 0:
            raise invalid(f"seed: must be ≥ 0, got {seed}", param="seed")
    return {
        "model": body["model"],
        "training_file": body["training_file"],
        "validation_file": body.get("validation_file"),
        "method": method,
        "hyperparameters": _hyperparameters(body, method),
        "suffix": suffix,
        "seed": seed,
        "metadata": _metadata(body.get("metadata")),
        "integrations": body.get("integrations") or [],
        **({"grader": grader} if grader is not None else {}),
    }


def build_job(
    request: dict[str, Any],
    *,
    name: str,
    namespace: str,
    catalog: Catalog,
    training: StoredFile,
    validation: StoredFile | None,
    source_of: Callable[[str], str],
    connection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The FineTuneJob for a checked request, validated as `kubectl apply` would (400 if not)."""
    entry = catalog.models.get(request["model"])
    if entry is None:
        allowed = ", ".join(sorted(catalog.models)) or "none: the catalog is empty"
        raise invalid(
            f"model: {request['model']!r} is not in this cluster's catalog (allowed: {allowed})",
            param="model",
            code="model_not_found",
        )
    method = request["method"]
    if method not in entry.methods:
        raise invalid(
            f"method.type: {request['model']!r} allows {', '.join(entry.methods)}, not {method}",
            param="method.type",
        )
    for field, stored in (("training_file", training), ("validation_file", validation)):
        if stored is not None and stored.kind != FILE_KINDS[method]:
            raise invalid(
                f"{field}: {stored.id} holds {stored.kind} examples; a {method} job needs "
                f"{FILE_KINDS[method]} examples",
                param=field,
            )
    spec = copy.deepcopy(entry.spec)
    dataset = spec.setdefault("dataset", {})
    fmt = DATASET_FORMATS[method]
    extra = {"s3": connection} if connection else {}  # the files' bucket, as the store says
    dataset["sources"] = [{"source": source_of(training.id), "format": fmt, **extra}]
    if validation is not None:
        dataset["validation"] = {"source": source_of(validation.id), "format": fmt, **extra}
    train = spec.setdefault("training", {})
    # the entry's settings for one objective apply to that method's requests only
    for setting, owner in (("dpo", "dpo"), ("grpo", "reinforcement")):
        if method != owner:
            train.pop(setting, None)
    hp = request["hyperparameters"]
    if method == "reinforcement":
        train["objective"] = "grpo"
        spec["rewards"] = rewards_of(request["grader"])
    if method == "dpo":
        train["objective"] = "dpo"
        if "beta" in hp:
            train.setdefault("dpo", {})["beta"] = _number(hp["beta"], "hyperparameters.beta", float)
    if "n_epochs" in hp:
        train["epochs"] = _number(hp["n_epochs"], "hyperparameters.n_epochs", int)
        train.pop("maxSteps", None)
    if "batch_size" in hp:
        train["globalBatchSize"] = _number(hp["batch_size"], "hyperparameters.batch_size", int)
        train.pop("gradientAccumulationSteps", None)
    if "learning_rate_multiplier" in hp:
        factor = _number(
            hp["learning_rate_multiplier"], "hyperparameters.learning_rate_multiplier", float
        )
        train["learningRate"] = float(train.get("learningRate", 2e-4)) * factor
    if request["seed"] is not None:
        train["seed"] = request["seed"]
    for integration in request["integrations"]:
        if not isinstance(integration, dict) or integration.get("type") != "wandb":
            raise invalid("integrations: only {type: wandb} is served", param="integrations")
        wandb = integration.get("wandb") or {}
        tracking = spec.setdefault("tracking", {}).setdefault("wandb", {})
        tracking.update({k: wandb[k] for k in ("project", "entity") if wandb.get(k)})
    doc = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_LABEL: "true"},
            "annotations": {REQUEST_ANNOTATION: json.dumps(request, sort_keys=True)},
        },
        "spec": spec,
    }
    try:
        parse_job(doc)
    except InvalidJob as err:
        first = err.problems[0]
        raise invalid(
            "; ".join(str(p) for p in err.problems), param=PARAMS.get(first.path, "model")
        ) from None
    return doc


def suspend_patch(suspend: bool, cancel: bool = False) -> dict[str, Any]:
    """The merge patch that pauses, resumes or cancels (a cancelled job stays suspended, so its
    checkpoints and outputs stay on the volume)."""
    patch: dict[str, Any] = {"spec": {"runPolicy": {"suspend": suspend}}}
    if cancel:
        patch["metadata"] = {"annotations": {CANCELLED_ANNOTATION: "true"}}
    return patch


def check_job_id(job_id: str) -> None:
    if not JOB_ID.match(job_id):
        raise ApiError(404, f"No such fine-tuning job: {job_id}", code="fine_tuning_job_not_found")
