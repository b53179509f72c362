"""The tool-call scorer on generations rendered by each built-in template itself.

A "generation" here is what the real template (through transformers' `apply_chat_template`)
renders after the generation prompt for an assistant turn — right call, wrong name, wrong
arguments, parallel calls, no call — and a broken copy of the right one (malformed JSON). The
scorer must read each back in that template's own syntax and give the expected verdicts.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubetune_trainer.data.templates import BUILTIN_NAMES, builtin_template
from kubetune_trainer.data.tool_calls import (
    Parsed,
    parse,
    parse_hermes,
    parse_llama3_json,
    score_turn,
    summarise,
    syntax_of,
)
from kubetune_trainer.evaluation.generation import end_of_turn, reply_text
from tests.support.families import tokenizer_for

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }
    for name in ("get_weather", "get_time")
]
USER = {"role": "user", "content": "What is the weather in Paris?"}
RIGHT = {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def generation(builtin: str, assistant: dict[str, Any]) -> str:
    """What the template renders for `assistant` after the generation prompt, up to the end of
    the turn: the text a model trained on this template generates."""
    tokenizer = tokenizer_for(builtin)
    prompt = tokenizer.apply_chat_template(
        [USER], tools=TOOLS, tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(
        [USER, {"role": "assistant", **assistant}], tools=TOOLS, tokenize=False
    )
    assert full.startswith(prompt), (prompt, full)
    return reply_text(full[len(prompt) :], tokenizer, end_of_turn(tokenizer))


def generated_calls(builtin: str, *calls: dict[str, Any]) -> str:
    if builtin == "llama-3.1" and len(calls) > 1:  # its template renders one call per turn
        return "; ".join(generated_calls(builtin, c) for c in calls)
    return generation(builtin, {"content": "", "tool_calls": [call(**c) for c in calls]})


def scored(builtin: str, reply: str, expected: list[dict[str, Any]]) -> tuple[Parsed, Any]:
    syntax = syntax_of(builtin_template(builtin))
    assert syntax is not None
    parsed = parse(reply, syntax)
    return parsed, score_turn(expected, parsed)


@pytest.mark.parametrize("builtin", BUILTIN_NAMES)
def test_every_builtin_template_has_a_syntax(builtin: str) -> None:
    expected = "llama3-json" if builtin == "llama-3.1" else "hermes"
    assert syntax_of(builtin_template(builtin)) == expected


@pytest.mark.parametrize("builtin", BUILTIN_NAMES)
def test_right_call(builtin: str) -> None:
    reply = generated_calls(builtin, RIGHT)
    parsed, verdict = scored(builtin, reply, [RIGHT])
    assert parsed.calls == [RIGHT] and not parsed.errors, reply
    assert verdict == {
        "expectedCall": True,
        "called": True,
        "wellFormed": True,
        "nameMatch": True,
        "argumentsMatch": True,
    }


@pytest.mark.parametrize("builtin", BUILTIN_NAMES)
def test_wrong_name(builtin: str) -> None:
    reply = generated_calls(builtin, {**RIGHT, "name": "get_time"})
    _, verdict = scored(builtin, reply, [RIGHT])
    assert verdict["wellFormed"] and not verdict["nameMatch"] and not verdict["argumentsMatch"]


@pytest.mark.parametrize("builtin", BUILTIN_NAMES)
def test_wrong_arguments(builtin: str) -> None:
    for arguments in (
        {"city": "Lyon", "days": 2},
        {"city": "Paris"},
        {"city": "Paris", "days": "2"},
    ):
        reply = generated_calls(builtin, {**RIGHT, "arguments": arguments})
        _, verdict = scored(builtin, reply, [RIGHT])
        assert verdict["nameMatch"] and not verdict["argumentsMatch"], reply


@pytest.mark.parametrize("builtin", BUILTIN_NAMES)
def test_argument_order_and_number_spelling_do_not_matter(builtin: str) -> None:
    reply = generated_calls(builtin, {**RIGHT, "arguments": {"days": 2.0, "city": "Paris"}})
    _, verdict = scored(builtin, reply, [RIGHT])
    assert verdict["argumentsMatch"], reply


@pytest.mark.parametrize("builtin", BUILTIN_NAMES)
def test_malformed_json(builtin: str) -> None:
    right = generated_calls(builtin, RIGHT)
    broken = right.replace('"city": "Paris"', '"city": Paris', 1)
    assert broken != right
    parsed, verdict = scored(builtin, broken, [RIGHT])
    assert parsed.errors and parsed.errors[0].startswith("malformed JSON"), broken
    assert verdict["called"] and verdict["wellFormed"] is False and not verdict["nameMatch"]


@pytest.mark.parametrize("builtin", BUILTIN_NAMES)
def test_parallel_calls_in_any_order(builtin: str) -> None:
    other = {"name": "get_time", "arguments": {"city": "Tokyo"}}
    reply = generated_calls(builtin, other, RIGHT)
    parsed, verdict = scored(builtin, reply, [RIGHT, other])
    assert parsed.calls == [other, RIGHT], reply
    assert verdict["nameMatch"] and verdict["argumentsMatch"]
    _, missing_one = scored(builtin, generated_calls(builtin, RIGHT), [RIGHT, other])
    assert not missing_one["nameMatch"]


@pytest.mark.parametrize("builtin", BUILTIN_NAMES)
def test_no_call(builtin: str) -> None:
    reply = generation(builtin, {"content": "It is sunny in Paris."})
    assert "sunny" in reply
    parsed, should_have = scored(builtin, reply, [RIGHT])
    assert not parsed.attempted
    assert should_have == {
        "expectedCall": True,
        "called": False,
        "wellFormed": None,
        "nameMatch": False,
        "argumentsMatch": False,
    }
    _, refrained = scored(builtin, reply, [])
    assert refrained == {"expectedCall": False, "called": False, "wellFormed": None}


def test_unclosed_block_and_missing_name_are_errors() -> None:
    assert parse_hermes('<tool_call>\n{"name": "f", "arguments": {}}').errors == [
        "unclosed <tool_call>"
    ]
    assert parse_hermes('<tool_call>\n{"arguments": {}}\n</tool_call>').errors == [
        "no function name"
    ]
    assert parse_llama3_json('{"name": "f", "parameters": [1]}').errors == [
        "f: arguments are not an object"
    ]
    assert parse_llama3_json('<|python_tag|>{"name": "f", "parameters": {"a": 1}}').calls == [
        {"name": "f", "arguments": {"a": 1}}
    ]


def test_summary_rates() -> None:
    right, _ = scored("qwen", generated_calls("qwen", RIGHT), [RIGHT])
    turns = [
        score_turn([RIGHT], right),
        score_turn([RIGHT], Parsed(errors=["malformed JSON (x)"])),
        score_turn([], Parsed()),
        score_turn([], right),
        {"error": "generation: OutOfMemoryError"},
    ]
    assert summarise(turns) == {
        "turns": 5,
        "toolTurns": 2,
        "noToolTurns": 2,
        "wellFormed": round(2 / 3, 4),
        "malformed": 1,
        "toolNameAccuracy": 0.5,
        "argumentsExactMatch": 0.5,
        "calledWhenExpected": 1.0,
        "refrainedWhenNotExpected": 0.5,
        "generationErrors": 1,
    }
