"""The GRPO data path and graders on real rows: xlam's and glaive's public rows
(fixtures/SOURCES.md) become prompts whose reference is their last assistant turn, rendered
through the same chat template as SFT; each grader scores completions written in the template's
own tool-call syntax, and a grader's bad output is an error naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubetune_api.reward_spec import RewardSpec
from kubetune_trainer.data.formats import FormatError, convert
from kubetune_trainer.data.prompts import PromptEncoder, convert_prompt
from kubetune_trainer.data.tokenize import Encoder, Refused
from kubetune_trainer.training.rewards import RewardError, graders
from tests.support.tool_data import COMPACT_TEMPLATE

FIXTURES = Path(__file__).parent / "fixtures"


def rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines()]


def hermes(*calls: dict[str, Any]) -> str:
    """Completions as Qwen 2.5 / kubetune's tool rendering writes calls."""
    return "".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)


def grade(
    spec: dict[str, Any], completions: list[str], reference: dict[str, Any]
) -> list[float | None]:
    (grader,) = graders([RewardSpec.model_validate(spec)], "hermes", 16)
    ids = [list(range(len(c.split()))) for c in completions]
    return grader(
        prompts=["p"] * len(completions),
        completions=completions,
        completion_ids=ids,
        reference=[json.dumps(reference)] * len(completions),
    )


# xlam's public row: two parallel calls of live_giveaways_by_type
XLAM = rows("xlam")[0]
BETA = {"name": "live_giveaways_by_type", "arguments": {"type": "beta"}}
GAME = {"name": "live_giveaways_by_type", "arguments": {"type": "game"}}


def test_xlam_row_becomes_a_prompt_with_its_calls_as_reference() -> None:
    record = convert_prompt(XLAM, "xlam")
    assert record["prompt"] == [{"role": "user", "content": XLAM["query"]}]
    assert record["tools"] == json.loads(XLAM["tools"])
    assert record["reference"]["reference_tool_calls"] == json.loads(XLAM["answers"])
    assert record["reference"]["reference_text"] == ""
    assert record["messages"] == convert(XLAM, "xlam")["messages"]  # held out: scored after


def test_glaive_row_is_cut_before_its_last_assistant_turn() -> None:
    row = rows("glaive")[0]
    record = convert_prompt(row, "glaive")
    messages = convert(row, "glaive")["messages"]
    assert record["prompt"] == messages[:-1]
    assert record["prompt"][-1] == {
        "role": "user",
        "content": "Oh yes, I was looking for Animal Farm. Thank you!",
    }
    assert any(m.get("tool_calls") for m in record["prompt"])  # the earlier call stays history
    assert record["reference"] == {
        "reference_tool_calls": [],  # the reply is text: the right move is not to call
        "reference_text": messages[-1]["content"],
    }


def test_prompts_rows_keep_their_other_columns_as_reference_fields() -> None:
    row = {"prompt": "What is 2 + 3?", "answer": "5", "difficulty": 1}
    record = convert_prompt(row, "prompts")
    assert record["prompt"] == [{"role": "user", "content": "What is 2 + 3?"}]
    assert record["reference"] == {"answer": "5", "difficulty": 1}
    chat = {"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    with pytest.raises(FormatError, match="ends with an assistant turn"):
        convert_prompt(chat, "prompts")
    with pytest.raises(FormatError, match="missing column 'prompt'"):
        convert_prompt({"question": "Hi"}, "prompts")


def test_prompts_render_as_sft_renders_the_same_turns(tokenizer: Any) -> None:
    tokenizer.chat_template = COMPACT_TEMPLATE
    record = convert_prompt(XLAM, "xlam")
    encoder = PromptEncoder(tokenizer, max_length=512, max_completion_length=16)
    (encoded,) = encoder.encode_batch([record])
    assert not isinstance(encoded, Refused)
    sft = Encoder(tokenizer, ["assistant"], 512)
    assert encoded.prompt == sft.render(record["prompt"], record["tools"], generation=True)
    assert encoded.prompt.endswith("<|im_start|>assistant\n")
    assert json.loads(encoded.reference)["reference_tool_calls"] == [BETA, GAME]
    short = PromptEncoder(tokenizer, max_length=32, max_completion_length=16)
    (refused,) = short.encode_batch([record])
    assert isinstance(refused, Refused) and "prompt too long" in refused.reason


REFERENCE = {"reference_tool_calls": [BETA, GAME], "reference_text": ""}


def test_tool_call_grader_on_the_xlam_reference() -> None:
    completions = [
        hermes(GAME, BETA),  # parallel calls in another order: a full match
        hermes(BETA, {**GAME, "arguments": {"type": "loot"}}),  # right tools, wrong argument
        hermes({"name": "live_giveaways", "arguments": {}}, BETA),  # a wrong tool name
        "<tool_call>\n{not json}\n</tool_call>",  # malformed
        "I cannot look that up.",  # no call
    ]
    assert grade({"toolCall": {}}, completions, REFERENCE) == [1.0, 2 / 3, 1 / 3, 0.0, 0.0]
    refrain = {"reference_tool_calls": [], "reference_text": "You're welcome!"}
    assert grade({"toolCall": {}}, ["You're welcome!", hermes(BETA)], refrain) == [1.0, 0.0]


def test_string_check_grader() -> None:
    reference = {"answer": "5", "reference_text": "It is 5."}
    equals = {"stringCheck": {"referenceField": "answer"}}
    assert grade(equals, [" 5\n", "6", "55"], reference) == [1.0, 0.0, 0.0]
    contains = {"stringCheck": {"operation": "contains", "expected": "Paris"}}
    assert grade(contains, ["It is Paris.", "Rome"], reference) == [1.0, 0.0]
    regex = {"stringCheck": {"operation": "regex", "expected": r"^\d+$"}}
    assert grade(regex, ["42", "4 2"], reference) == [1.0, 0.0]
    on_path = {"stringCheck": {"expected": "5", "jsonPath": "$.result[0].value"}}
    completions = ['{"result": [{"value": "5"}]}', '```json\n{"result": [{"value": 5}]}\n```', "5"]
    assert grade(on_path, completions, reference) == [1.0, 1.0, 0.0]
    with pytest.raises(
        RewardError, match=r"rewards stringCheck: the row has no reference field 'gold'"
    ):
        grade({"stringCheck": {"referenceField": "gold"}}, ["5"], reference)


def test_json_schema_grader() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    completions = ['{"city": "Oslo"}', '{"city": 3}', '{"town": "Oslo"}', "Oslo"]
    assert grade({"jsonSchema": {"jsonSchema": schema}}, completions, {}) == [1, 0, 0, 0]
    with pytest.raises(
        RewardError, match="rewards jsonSchema: jsonSchema is not a valid JSON Schema"
    ):
        grade({"jsonSchema": {"jsonSchema": {"type": "thing"}}}, ["{}"], {})


def test_length_penalty() -> None:
    # 4 tokens are free; at the limit (16) the penalty is −1
    completions = ["a b c", "a b c d", "a b c d e f g h i j", " ".join("x" * 20)]
    assert grade({"length": {"targetTokens": 4}}, completions, {}) == [0.0, 0.0, -0.5, -1.0]


def test_python_grader_and_its_errors() -> None:
    spec = {"python": {"module": "tests.trainer.reward_module"}}
    assert grade(spec, [hermes(BETA), "no"], REFERENCE) == [1.0, 0.0]
    with pytest.raises(RewardError, match=r"rewards python: cannot load json\.nothing"):
        grade({"python": {"module": "json", "function": "nothing"}}, ["x"], {})
    # json.dumps takes no `completions`: the TypeError is reported, naming the grader
    with pytest.raises(RewardError, match="rewards python: the grader raised TypeError"):
        grade({"python": {"module": "json", "function": "dumps"}}, ["x"], {})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0], "returned 1 values for 2 completions"),
        ([1.0, float("nan")], "returned nan for completion 1"),
        (None, "expected one number per completion"),
    ],
)
def test_bad_reward_values_name_the_grader(values: Any, message: str) -> None:
    from kubetune_trainer.training.rewards import checked

    with pytest.raises(RewardError, match=f"rewards mine: {message}"):
        checked("mine", values, 2)


def test_grader_names_label_the_metrics() -> None:
    raw: list[dict[str, Any]] = [
        {"toolCall": {}},
        {"name": "fmt", "jsonSchema": {}},
        {"length": {"targetTokens": 1}},
        {"length": {"targetTokens": 2}},
    ]
    specs = [RewardSpec.model_validate(s) for s in raw]
    assert [g.__name__ for g in graders(specs, "hermes", 8)] == [
        "toolCall",
        "fmt",
        "length-1",
        "length-2",
    ]


def test_preview_shows_the_rendered_prompt_and_its_reference(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from rich.console import Console

    from kubetune_trainer.stages.preview import preview
    from tests.support.jobs import config_for

    config = config_for(
        tiny_model_dir,
        tmp_path / "ws",
        **{
            "spec.dataset.sources": [{"source": str(FIXTURES / "xlam.jsonl"), "format": "xlam"}],
            "spec.training.objective": "grpo",
            "spec.training.grpo": {"numGenerations": 2, "maxCompletionLength": 16},
            "spec.training.maxLength": 512,
            "spec.rewards": [{"toolCall": {}}],
        },
    )
    console = Console(record=True, width=200)
    assert preview(config, 1, console) == 1
    text = console.export_text()
    assert XLAM["query"] in text and text.count("<|im_start|>assistant") == 1
    assert '"reference_tool_calls": [{"name": "live_giveaways_by_type"' in text


def test_a_failed_grader_is_the_jobs_failure_message() -> None:
    from kubetune_trainer.stages.failures import reward_failure

    try:
        try:
            grade({"python": {"module": "json", "function": "dumps"}}, ["x"], {})
        except RewardError as err:
            raise RuntimeError("the trainer's step failed") from err
    except RuntimeError as wrapped:
        assert (reward_failure(wrapped) or "").startswith("rewards python: the grader raised")
    assert reward_failure(ValueError("something else")) is None


def test_tool_call_reads_the_completion_with_its_special_tokens(tokenizer: Any) -> None:
    """TRL hands the graders its completions decoded without special tokens: where the
    tokenizer marks `<tool_call>` special (the tiny model's does), every call is gone from that
    text. `toolCall` reads the tokens as the evaluation reads a reply instead: special tokens
    kept, cut at the end of the turn."""
    from kubetune_trainer.training.grpo import reply_reader

    tokenizer.chat_template = COMPACT_TEMPLATE
    call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    text = f"<tool_call>{json.dumps(call)}</tool_call><|im_end|>\n<|im_start|>user"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    trl_text = tokenizer.decode(ids, skip_special_tokens=True)  # what TRL passes
    assert "<tool_call>" not in trl_text
    specs = [
        RewardSpec.model_validate({"toolCall": {}}),
        RewardSpec.model_validate({"length": {"targetTokens": 4}}),
    ]
    tool_call, length = graders(specs, "hermes", 64, reply_reader(tokenizer))
    reference = [json.dumps({"reference_tool_calls": [call]})]
    scored = {"prompts": ["p"], "completions": [trl_text], "completion_ids": [ids]}
    assert tool_call(**scored, reference=reference) == [1.0]
    (without,) = graders(specs[:1], "hermes", 64)
    assert without(**scored, reference=reference) == [0.0]  # TRL's text alone: no call read
    assert length.decode is None  # the other graders keep TRL's text
