"""Every supported record layout, converted to one conversation shape.

    {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": str,
                   "tool_calls"?: [{"name": str, "arguments": dict}]}, ...],
     "tools"?: [<JSON schema of a function>, ...]}

or, for plain language modelling, {"text": str}. Pure Python: no torch, no tokenizer.
A record that cannot be converted raises FormatError naming the record and the field.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

Message = dict[str, Any]
Conversation = dict[str, Any]


class FormatError(ValueError):
    """A record that does not fit its declared format."""


def _field(record: Mapping[str, Any], name: str, fields: Mapping[str, str]) -> Any:
    column = fields.get(name, name)
    if column not in record:
        raise FormatError(f"missing column {column!r} (map it with fields: {{{name}: <column>}})")
    return record[column]


def _json(value: Any, what: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        try:  # glaive and some xlam dumps use Python literals (single quotes)
            return ast.literal_eval(value)
        except (ValueError, SyntaxError) as err:
            raise FormatError(f"{what}: not JSON: {value[:80]!r}") from err


def _tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI ({type, function: {name, arguments: str}}) or flat ({name, arguments})."""
    fn = call.get("function", call)
    args = _json(fn.get("arguments", fn.get("parameters", {})), "tool call arguments")
    return {"name": fn["name"], "arguments": args if isinstance(args, dict) else {"value": args}}


def from_messages(record: Mapping[str, Any], fields: Mapping[str, str]) -> Conversation:
    messages: list[Message] = []
    for raw in _field(record, "messages", fields):
        role = raw.get(fields.get("role", "role"))
        content = raw.get(fields.get("content", "content")) or ""
        if role not in ("system", "user", "assistant", "tool"):
            raise FormatError(f"unknown role {role!r} (expected system, user, assistant or tool)")
        message: Message = {"role": role, "content": content}
        if raw.get("tool_calls"):
            message["tool_calls"] = [_tool_call(c) for c in raw["tool_calls"]]
        messages.append(message)
    conversation: Conversation = {"messages": messages}
    if record.get(fields.get("tools", "tools")):
        tools = _json(record[fields.get("tools", "tools")], "tools")
        conversation["tools"] = [t.get("function", t) for t in tools]
    return conversation


SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "tool": "tool",
    "observation": "tool",
    "function_response": "tool",
}


def from_sharegpt(record: Mapping[str, Any], fields: Mapping[str, str]) -> Conversation:
    messages: list[Message] = []
    for turn in _field(record, "conversations", fields):
        speaker = turn.get(fields.get("from", "from"))
        value = turn.get(fields.get("value", "value"), "")
        if speaker == "function_call":
            call = _json(value, "function_call")
            messages.append({"role": "assistant", "content": "", "tool_calls": [_tool_call(call)]})
            continue
        if speaker not in SHAREGPT_ROLES:
            raise FormatError(f"unknown speaker {speaker!r} in conversations")
        messages.append({"role": SHAREGPT_ROLES[speaker], "content": value})
    return {"messages": messages}


def from_alpaca(record: Mapping[str, Any], fields: Mapping[str, str]) -> Conversation:
    instruction = _field(record, "instruction", fields)
    extra = record.get(fields.get("input", "input")) or ""
    prompt = f"{instruction}\n\n{extra}" if extra else instruction
    messages: list[Message] = []
    if record.get(fields.get("system", "system")):
        messages.append({"role": "system", "content": record[fields.get("system", "system")]})
    messages += [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": _field(record, "output", fields)},
    ]
    return {"messages": messages}


def from_xlam(record: Mapping[str, Any], fields: Mapping[str, str]) -> Conversation:
    """Salesforce xlam-function-calling: query, tools (JSON list), answers (JSON list of calls).

    The tools travel as the conversation's `tools`; the chat template renders them into the
    system turn (every built-in template does)."""
    tools = _json(_field(record, "tools", fields), "tools")
    answers = _json(_field(record, "answers", fields), "answers")
    return {
        "messages": [
            {"role": "user", "content": _field(record, "query", fields)},
            {"role": "assistant", "content": "", "tool_calls": [_tool_call(a) for a in answers]},
        ],
        "tools": tools,
    }


_GLAIVE_TURN = re.compile(r"(USER|ASSISTANT|FUNCTION RESPONSE):")


def from_glaive(record: Mapping[str, Any], fields: Mapping[str, str]) -> Conversation:
    """glaive-function-calling-v2: a SYSTEM prompt and a USER/ASSISTANT/FUNCTION RESPONSE chat."""
    system = str(_field(record, "system", fields)).strip().removeprefix("SYSTEM:").strip()
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    chat = str(_field(record, "chat", fields))
    parts = _GLAIVE_TURN.split(chat)
    roles = {"USER": "user", "ASSISTANT": "assistant", "FUNCTION RESPONSE": "tool"}
    for marker, text in zip(parts[1::2], parts[2::2], strict=True):
        text = text.replace("<|endoftext|>", "").strip()
        if marker == "ASSISTANT" and text.startswith("<functioncall>"):
            call = _json(text.removeprefix("<functioncall>").strip(), "functioncall")
            messages.append({"role": "assistant", "content": "", "tool_calls": [_tool_call(call)]})
        elif text or marker != "ASSISTANT":
            messages.append({"role": roles[marker], "content": text})
    if not any(m["role"] == "assistant" for m in messages):
        raise FormatError("glaive chat has no ASSISTANT turn")
    return {"messages": messages}


def from_text(record: Mapping[str, Any], fields: Mapping[str, str]) -> Conversation:
    text = _field(record, "text", fields)
    if not isinstance(text, str):
        raise FormatError(f"text must be a string, got {type(text).__name__}")
    return {"text": text}


CONVERTERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], Conversation]] = {
    "messages": from_messages,
    "sharegpt": from_sharegpt,
    "alpaca": from_alpaca,
    "xlam": from_xlam,
    "glaive": from_glaive,
    "text": from_text,
}


def convert(
    record: Mapping[str, Any], fmt: str, fields: Mapping[str, str] | None = None
) -> Conversation:
    """One record in `fmt`, as a conversation (or text)."""
    try:
        conversation = CONVERTERS[fmt](record, fields or {})
    except FormatError:
        raise
    except (KeyError, TypeError, AttributeError) as err:
        raise FormatError(f"record does not fit format {fmt!r}: {err!r}") from err
    messages = conversation.get("messages")
    if messages is not None and not messages:
        raise FormatError("conversation has no messages")
    return conversation
