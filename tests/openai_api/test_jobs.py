"""`POST /v1/fine_tuning/jobs` requests turned into FineTuneJobs, validated as `kubectl apply`
would validate them (kubetune's own models and rules); refusals in OpenAI's error shape."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api.job import parse_job
from kubetune.openai_api.catalog import Catalog
from kubetune.openai_api.errors import ApiError
from kubetune.openai_api.files import StoredFile
from kubetune.openai_api.jobs import build_job, request_of
from tests.support.openai_api import catalog

SFT = StoredFile("file-" + "a" * 24, 10, 1, "train.jsonl", "fine-tune", "supervised", 3)
PREF = StoredFile("file-" + "b" * 24, 10, 1, "pairs.jsonl", "fine-tune", "preference", 3)
FILES = {SFT.id: SFT, PREF.id: PREF}


def make(body: dict[str, Any], models: Catalog | None = None) -> dict[str, Any]:
    request = request_of({"model": "tiny-llama", "training_file": SFT.id, **body})
    validation = FILES[request["validation_file"]] if request["validation_file"] else None
    return build_job(
        request,
        name="ftjob-0123456789abcdef",
        namespace="team-a",
        catalog=models or catalog(),
        training=FILES[request["training_file"]],
        validation=validation,
        source_of=lambda file_id: f"pvc://kubetune-files/team-a/{file_id}/training.jsonl",
    )


def refusal(body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as refused:
        make(body)
    assert refused.value.status == 400
    return refused.value


def test_a_supervised_job_with_every_hyperparameter() -> None:
    doc = make(
        {
            "hyperparameters": {"n_epochs": 2, "batch_size": 16, "learning_rate_multiplier": 0.5},
            "seed": 7,
            "suffix": "grass",
            "validation_file": SFT.id,
            "metadata": {"team": "a"},
        }
    )
    job = parse_job(doc)
    spec = job.spec
    assert spec.dataset is not None
    assert [(s.source, s.format) for s in spec.dataset.sources] == [
        (f"pvc://kubetune-files/team-a/{SFT.id}/training.jsonl", "messages")
    ]
    assert spec.dataset.validation is not None and spec.dataset.validation.format == "messages"
    t = spec.training
    assert (t.objective, t.epochs, t.maxSteps, t.globalBatchSize, t.seed) == ("sft", 2, None, 16, 7)
    assert t.learningRate == pytest.approx(5e-3)  # the catalog's 1e-2, halved
    assert job.metadata.labels["api.kubetune.io/managed"] == "true"
    assert job.namespace == "team-a"


def test_auto_keeps_the_catalog_entry() -> None:
    t = parse_job(make({"hyperparameters": {"n_epochs": "auto"}})).spec.training
    assert (t.maxSteps, t.learningRate, t.epochs) == (150, 1e-2, None)


def test_a_dpo_job_trains_dpo_with_beta() -> None:
    doc = make(
        {
            "training_file": PREF.id,
            "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2, "n_epochs": 1}}},
        }
    )
    spec = parse_job(doc).spec
    assert spec.training.objective == "dpo"
    assert spec.training.dpo is not None and spec.training.dpo.beta == 0.2
    assert spec.dataset is not None and spec.dataset.sources[0].format == "preference"


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (
            {"model": "gpt-4o"},
            "model",
            "'gpt-4o' is not in this cluster's catalog (allowed: llama-3.1-8b-instruct, tiny-llama)",
        ),
        ({"model": None}, "model", "model: required"),
        ({"method": {"type": "distillation"}}, "method.type", "'distillation' is not served"),
        (
            {"method": {"type": "reinforcement"}},
            "method.reinforcement.grader",
            "method.reinforcement.grader: required",
        ),
        (
            {"training_file": PREF.id},
            "training_file",
            "holds preference examples; a supervised job needs supervised",
        ),
        (
            {"method": {"type": "dpo"}},
            "training_file",
            "holds supervised examples; a dpo job needs preference",
        ),
        (
            {"hyperparameters": {"n_epochs": "three"}},
            "hyperparameters.n_epochs",
            "expected a number",
        ),
        (
            {"hyperparameters": {"n_epochs": 1.5}},
            "hyperparameters.n_epochs",
            "expected a whole number",
        ),
        (
            {"hyperparameters": {"beta": 0.1}},
            "hyperparameters.beta",
            "not a supervised hyperparameter",
        ),
        (
            {
                "training_file": PREF.id,
                "method": {"type": "dpo"},
                "hyperparameters": {"n_epochs": 1},
            },
            "hyperparameters",
            "only for supervised jobs",
        ),
        (
            {"hyperparameters": {"batch_size": 0}},
            "hyperparameters.batch_size",
            "spec.training.globalBatchSize",
        ),
        (
            {"hyperparameters": {"learning_rate_multiplier": 1000}},
            "hyperparameters.learning_rate_multiplier",
            "spec.training.learningRate",
        ),
        ({"suffix": "x" * 65}, "suffix", "1 to 64 characters"),
        ({"seed": -1}, "seed", "must be ≥ 0"),
        ({"metadata": {str(i): "v" for i in range(17)}}, "metadata", "at most 16"),
        ({"integrations": [{"type": "slack"}]}, "integrations", "only {type: wandb}"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(
    body: dict[str, Any], param: str, message: str
) -> None:
    refused = refusal(body)
    assert refused.param == param
    assert message in refused.message, refused.message
    assert set(refused.body()["error"]) == {"message", "type", "code", "param"}


def test_wandb_integration_sets_tracking_with_the_entrys_key() -> None:
    wandb_run = {"integrations": [{"type": "wandb", "wandb": {"project": "p", "entity": "e"}}]}
    refused = refusal(wandb_run)  # the catalog's tiny-llama names no W&B key
    assert refused.param == "integrations" and "apiKeySecretRef" in refused.message
    keyed = catalog()
    keyed.models["tiny-llama"].spec["tracking"] = {
        "wandb": {"project": "default", "apiKeySecretRef": {"name": "wandb", "key": "api-key"}}
    }
    doc = make(wandb_run, keyed)
    wandb = parse_job(doc).spec.tracking.wandb
    assert wandb is not None and (wandb.project, wandb.entity) == ("p", "e")
