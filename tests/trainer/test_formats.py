"""Every dataset format converts to the expected conversation (golden cases)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetune_trainer.data.formats import FormatError, convert

WEATHER = {
    "name": "get_weather",
    "description": "Weather now",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}

OSLO_CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}

CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "messages-plain",
        "messages",
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ]
        },
    ),
    (
        "messages-openai-tools",
        "messages",
        {
            "messages": [
                {"role": "user", "content": "Weather in Oslo?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": '{"temp": -3}'},
                {"role": "assistant", "content": "It is -3 °C."},
            ],
            "tools": [{"type": "function", "function": WEATHER}],
        },
        {
            "messages": [
                {"role": "user", "content": "Weather in Oslo?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [OSLO_CALL | {"id": "c1"}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": '{"temp": -3}'},
                {"role": "assistant", "content": "It is -3 °C."},
            ],
            "tools": [{"type": "function", "function": WEATHER}],
        },
    ),
    (
        "sharegpt",
        "sharegpt",
        {
            "conversations": [
                {"from": "system", "value": "Terse."},
                {"from": "human", "value": "2+2?"},
                {"from": "gpt", "value": "4"},
            ]
        },
        {
            "messages": [
                {"role": "system", "content": "Terse."},
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"},
            ]
        },
    ),
    (
        "sharegpt-renamed",
        "sharegpt",
        {"turns": [{"speaker": "human", "text": "Hi"}, {"speaker": "gpt", "text": "Yo"}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]},
    ),
    (
        "alpaca-with-input",
        "alpaca",
        {"instruction": "Translate to French.", "input": "cheese", "output": "fromage"},
        {
            "messages": [
                {"role": "user", "content": "Translate to French.\n\ncheese"},
                {"role": "assistant", "content": "fromage"},
            ]
        },
    ),
    (
        "alpaca-no-input",
        "alpaca",
        {"instruction": "Say hi.", "input": "", "output": "hi"},
        {
            "messages": [
                {"role": "user", "content": "Say hi."},
                {"role": "assistant", "content": "hi"},
            ]
        },
    ),
    (
        "xlam",
        "xlam",
        {
            "query": "Weather in Oslo?",
            "tools": json.dumps([WEATHER]),
            "answers": json.dumps([{"name": "get_weather", "arguments": {"city": "Oslo"}}]),
        },
        {
            "messages": [
                {"role": "user", "content": "Weather in Oslo?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [OSLO_CALL],
                },
            ],
            "tools": [WEATHER],
        },
    ),
    (
        "glaive",
        "glaive",
        {
            "system": "SYSTEM: You are a helpful assistant with access to the following functions. "
            'Use them if required - {"name": "get_weather"}',
            "chat": 'USER: Weather in Oslo? ASSISTANT: <functioncall> {"name": "get_weather", '
            '"arguments": \'{"city": "Oslo"}\'} <|endoftext|> FUNCTION RESPONSE: '
            '{"temp": -3} ASSISTANT: It is -3 degrees. <|endoftext|>',
        },
        {
            "messages": [
                {
                    "role": "system",
                    "content": "You are a helpful assistant with access to the following "
                    'functions. Use them if required - {"name": "get_weather"}',
                },
                {"role": "user", "content": "Weather in Oslo?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [OSLO_CALL],
                },
                {"role": "tool", "content": '{"temp": -3}'},
                {"role": "assistant", "content": "It is -3 degrees."},
            ]
        },
    ),
    ("text", "text", {"text": "Once upon a time."}, {"text": "Once upon a time."}),
    (
        "sharegpt-llamafactory-columns-and-parallel-calls",
        "sharegpt",
        {
            "system": "Terse.",
            "tools": json.dumps([WEATHER]),
            "conversations": [
                {"from": "human", "value": "Oslo and Bergen?"},
                {
                    "from": "function_call",
                    "value": json.dumps(
                        [
                            {"name": "get_weather", "arguments": {"city": "Oslo"}},
                            {"name": "get_weather", "arguments": {"city": "Bergen"}},
                        ]
                    ),
                },
                {"from": "observation", "value": "-3"},
                {"from": "gpt", "value": "Cold."},
            ],
        },
        {
            "messages": [
                {"role": "system", "content": "Terse."},
                {"role": "user", "content": "Oslo and Bergen?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        OSLO_CALL,
                        {
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": {"city": "Bergen"}},
                        },
                    ],
                },
                {"role": "tool", "content": "-3"},
                {"role": "assistant", "content": "Cold."},
            ],
            "tools": [WEATHER],
        },
    ),
    (
        "alpaca-history-and-system",
        "alpaca",
        {
            "system": "Terse.",
            "history": [["2+2?", "4"], ["3+3?", "6"]],
            "instruction": "4+4?",
            "input": "",
            "output": "8",
        },
        {
            "messages": [
                {"role": "system", "content": "Terse."},
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"},
                {"role": "user", "content": "3+3?"},
                {"role": "assistant", "content": "6"},
                {"role": "user", "content": "4+4?"},
                {"role": "assistant", "content": "8"},
            ]
        },
    ),
    (
        "messages-content-parts-and-reasoning",
        "messages",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}],
                },
                {"role": "assistant", "content": "Yo", "reasoning_content": "greet back"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Hi\nthere"},
                {"role": "assistant", "content": "Yo", "reasoning_content": "greet back"},
            ]
        },
    ),
]


@pytest.mark.parametrize(
    ("fmt", "record", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_format_converts(fmt: str, record: dict[str, Any], expected: dict[str, Any]) -> None:
    fields = (
        {"conversations": "turns", "from": "speaker", "value": "text"} if "turns" in record else {}
    )
    assert convert(record, fmt, fields) == expected


def test_every_format_has_a_case() -> None:
    from kubetune_trainer.data.formats import CONVERTERS

    assert {c[1] for c in CASES} == set(CONVERTERS)


@pytest.mark.parametrize(
    ("fmt", "record", "message"),
    [
        ("messages", {"messages": [{"role": "bot", "content": "x"}]}, "unknown role 'bot'"),
        ("alpaca", {"prompt": "x"}, "missing column 'instruction'"),
        ("xlam", {"query": "q", "tools": "[", "answers": "[]"}, "tools: not JSON"),
        ("glaive", {"system": "", "chat": "USER: hi"}, "no ASSISTANT turn"),
        ("messages", {"messages": []}, "no messages"),
        (
            "messages",
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "content part of type 'image_url' is not supported",
        ),
        (
            "sharegpt",
            {"conversations": [{"from": "function_call", "value": '{"arguments": {}}'}]},
            "without a function name",
        ),
        ("alpaca", {"instruction": "x", "output": "y", "history": [["only one"]]}, r"history\[0\]"),
    ],
)
def test_bad_records_say_what_is_wrong(fmt: str, record: dict[str, Any], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        convert(record, fmt)
