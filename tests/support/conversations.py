"""Conversations that exercise what chat templates render differently: a system prompt and
several turns, a tool call and its result, parallel calls, and reasoning. Every text is unique,
so a test can find each message in the rendering by its text."""

from __future__ import annotations

from typing import Any

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
]


def _call(n: int, name: str, city: str) -> dict[str, Any]:
    # nine alphanumeric characters: the id form Mistral's templates require
    return {
        "id": f"call{n}abcd",
        "type": "function",
        "function": {"name": name, "arguments": {"city": city}},
    }


def _result(n: int, name: str, text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": f"call{n}abcd", "name": name, "content": text}


CONVERSATIONS: dict[str, tuple[Any, list[dict[str, Any]]]] = {
    "multi-turn": (
        None,
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": "Name a color"},
            {"role": "assistant", "content": "Blue."},
        ],
    ),
    "tool-call": (
        TOOLS,
        [
            {"role": "system", "content": "Use tools."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [_call(1, "get_weather", "Paris")]},
            _result(1, "get_weather", "Sunny 21C"),
            {"role": "assistant", "content": "It is sunny in Paris."},
        ],
    ),
    "parallel-calls": (
        TOOLS,
        [
            {"role": "user", "content": "Weather and time in Oslo?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [_call(1, "get_weather", "Oslo"), _call(2, "get_time", "Oslo")],
            },
            _result(1, "get_weather", "Rain 8C"),
            _result(2, "get_time", "14:05 CET"),
            {"role": "assistant", "content": "Rainy, and it is 14:05."},
        ],
    ),
    "reasoning": (
        None,
        [
            {"role": "user", "content": "What is 2+3?"},
            {
                "role": "assistant",
                "reasoning_content": "Two plus three is five.",
                "content": "5",
            },
            {"role": "user", "content": "And 4+4?"},
            {
                "role": "assistant",
                "reasoning_content": "Four plus four is eight.",
                "content": "8",
            },
        ],
    ),
}
