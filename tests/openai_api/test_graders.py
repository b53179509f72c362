"""OpenAI's reinforcement fine-tuning over FineTuneJobs: grader objects in the shapes of OpenAI's
API reference (`StringCheckGrader`: input, name, operation eq|ne|like|ilike, reference;
`MultiGrader`: graders, calculate_output; templates `{{ item.<field> }}` and
`{{ sample.output_text }}`) mapped to kubetune's rewards, the job validated as `kubectl apply`
would, its view parsed by the `openai` package's own `FineTuningJob`, and a reinforcement file
read back by the trainer's own `prompts` reader."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletionDeveloperMessageParam
from openai.types.fine_tuning import FineTuningJob
from openai.types.graders import MultiGrader, StringCheckGrader

from kubetune.api.job import parse_job
from kubetune.openai_api.errors import ApiError
from kubetune.openai_api.files import StoredFile
from kubetune.openai_api.graders import rewards_of
from kubetune.openai_api.jobs import build_job, request_of
from kubetune.openai_api.jsonl import check_file
from kubetune.openai_api.views import job_view
from kubetune_trainer.data.prompts import from_prompts
from tests.support.openai_api import catalog, jsonl

EXACT = {
    "type": "string_check",
    "name": "Exact answer",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.reference_answer }}",
    "operation": "eq",
}
RFT = StoredFile("file-" + "c" * 24, 10, 1, "prompts.jsonl", "fine-tune", "reinforcement", 2)


def test_a_string_check_is_a_string_check_reward() -> None:
    StringCheckGrader.model_validate(EXACT)  # OpenAI's own type for the grader
    assert rewards_of(EXACT) == [
        {
            "name": "exact-answer",
            "stringCheck": {"operation": "equals", "referenceField": "reference_answer"},
        }
    ]
    inside = {**EXACT, "input": "{{sample.output_json.answer}}", "reference": "Paris"}
    (reward,) = rewards_of({**inside, "operation": "like"})
    assert reward["stringCheck"] == {
        "operation": "contains",
        "jsonPath": "$.answer",
        "expected": "Paris",
    }


def test_a_multi_grader_weighs_its_string_checks_as_calculate_output_says() -> None:
    multi: dict[str, Any] = {
        "type": "multi",
        "name": "answer",
        "graders": {"exact": EXACT, "partial": {**EXACT, "operation": "like"}},
        "calculate_output": "0.7 * exact + partial * 0.3",
    }
    for inner in multi["graders"].values():  # OpenAI's own type for each grader
        StringCheckGrader.model_validate(inner)
    rewards = rewards_of(multi)
    assert [(r["name"], r["weight"], r["stringCheck"]["operation"]) for r in rewards] == [
        ("exact", 0.7, "equals"),
        ("partial", 0.3, "contains"),
    ]


@pytest.mark.parametrize(
    ("grader", "says"),
    [
        ({**EXACT, "operation": "ne"}, "operation 'ne' is not served"),
        ({**EXACT, "operation": "ilike"}, "operation 'ilike' is not served"),
        ({**EXACT, "input": "{{sample.output_tools}}"}, "input '{{sample.output_tools}}'"),
        ({**EXACT, "reference": "{{sample.output_text}}"}, "reference '{{sample.output_text}}'"),
        ({"type": "python", "source": "def grade(s, i): return 1"}, "type 'python' is not served"),
        ({"type": "score_model", "model": "o3-mini"}, "type 'score_model' is not served"),
        (
            {"type": "multi", "graders": {"a": EXACT}, "calculate_output": "max(a, 0.5)"},
            "calculate_output: a weighted sum",
        ),
        (None, "required, a grader object"),
    ],
)
def test_a_grader_kubetune_cannot_run_is_refused_naming_it(grader: Any, says: str) -> None:
    with pytest.raises(ApiError) as refused:
        rewards_of(grader)
    assert refused.value.status == 400
    assert refused.value.param == "method.reinforcement.grader"
    assert says in refused.value.message, refused.value.message


def test_a_reinforcement_request_is_a_grpo_finetunejob_and_an_openai_job() -> None:
    body = {
        "model": "tiny-llama",
        "training_file": RFT.id,
        "method": {
            "type": "reinforcement",
            "reinforcement": {
                "grader": EXACT,
                "hyperparameters": {"n_epochs": 1, "eval_interval": "auto"},
            },
        },
    }
    request = request_of(body)
    doc = build_job(
        request,
        name="ftjob-0123456789abcdef",
        namespace="team-a",
        catalog=catalog(),
        training=RFT,
        validation=None,
        source_of=lambda file_id: f"pvc://kubetune-files/team-a/{file_id}/training.jsonl",
    )
    spec = parse_job(doc).spec
    assert spec.training.objective == "grpo" and spec.training.epochs == 1
    assert spec.dataset is not None and spec.dataset.sources[0].format == "prompts"
    assert spec.rewards and spec.rewards[0].stringCheck is not None
    assert spec.rewards[0].stringCheck.referenceField == "reference_answer"
    created = {**doc["metadata"], "creationTimestamp": "2026-12-06T10:00:00Z"}
    view = FineTuningJob.model_validate(job_view({**doc, "metadata": created}))
    assert view.method is not None and view.method.type == "reinforcement"
    assert view.method.reinforcement is not None
    assert view.method.reinforcement.grader.type == "string_check"
    with pytest.raises(ApiError, match="eval_interval: only 'auto' is served"):
        request_of(
            {
                **body,
                "method": {
                    "type": "reinforcement",
                    "reinforcement": {"grader": EXACT, "hyperparameters": {"eval_interval": 5}},
                },
            }
        )


def test_a_reinforcement_file_becomes_prompts_rows_the_trainer_reads() -> None:
    line = {
        "messages": [
            {"role": "system", "content": "Answer with one word."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "reference_answer": "Paris",
    }
    checked = check_file(jsonl(json.dumps(line), json.dumps({**line, "reference_answer": "x"})))
    assert (checked.kind, checked.examples) == ("reinforcement", 2)
    row = json.loads(checked.training.decode().splitlines()[0])
    read = from_prompts(row, {})
    assert read["reference"] == {"reference_answer": "Paris"}
    assert [m["content"] for m in read["prompt"]] == ["Answer with one word.", "Capital of France?"]


def test_openais_developer_messages_train_as_system_messages() -> None:
    """OpenAI's API reference: "with o1 models and newer, `developer` messages replace the
    previous `system` messages". A developer message, typed as the openai package types it,
    becomes the system message of the training copy, in every kind of file."""
    developer: ChatCompletionDeveloperMessageParam = {"role": "developer", "content": "Be brief."}
    user = {"role": "user", "content": "Hi"}
    reply = {"role": "assistant", "content": "Hello."}
    system = {"role": "system", "content": "Be brief."}

    chat = check_file(jsonl(json.dumps({"messages": [developer, user, reply]})))
    assert chat.kind == "supervised"
    assert json.loads(chat.training)["messages"] == [system, user, reply]

    prompt = check_file(jsonl(json.dumps({"messages": [developer, user], "answer": "x"})))
    assert prompt.kind == "reinforcement"
    row = json.loads(prompt.training)
    assert row["prompt"] == [system, user] and row["answer"] == "x"
    assert from_prompts(row, {})["prompt"][0]["role"] == "system"

    dpo = {
        "input": {"messages": [developer, user]},
        "preferred_output": [reply],
        "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
    }
    pair = check_file(jsonl(json.dumps(dpo)))
    assert pair.kind == "preference" and json.loads(pair.training)["prompt"] == [system, user]

    # a file without one is trained byte for byte as uploaded
    plain = jsonl(json.dumps({"messages": [user, reply]}, indent=None, separators=(",", ":")))
    assert check_file(plain).training == plain


def test_a_multi_grader_typed_as_the_openai_package_types_it_is_taken_too() -> None:
    """The `openai` package's `MultiGrader` holds one grader in `graders` (its guide names
    several): that one is named by its own `name`."""
    single = {"type": "multi", "name": "m", "graders": EXACT, "calculate_output": "Exact answer"}
    MultiGrader.model_validate(single)
    with pytest.raises(ApiError, match="calculate_output: a weighted sum"):
        rewards_of(single)  # "Exact answer" is no Python name: the formula cannot name it
    named = {**single, "graders": {**EXACT, "name": "exact"}, "calculate_output": "exact"}
    MultiGrader.model_validate(named)
    assert rewards_of(named) == [
        {
            "name": "exact",
            "weight": 1.0,
            "stringCheck": {"operation": "equals", "referenceField": "reference_answer"},
        }
    ]
