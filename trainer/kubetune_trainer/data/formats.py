"""Every supported record layout, converted to one conversation shape — transformers' own:

    {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": str,
                   "tool_calls"?: [{"type": "function",
                                    "function": {"name": str, "arguments": dict}}],
                   "reasoning_content"?: str, "name"?: str, "tool_call_id"?: str}, ...],
     "tools"?: [<tool schema exactly as the record gives it>, ...]}

or, for plain language modelling, {"text": str}. Pure Python: no torch, no tokenizer.

Nothing a layout defines is dropped: system prompts, tool schemas (with their
`{"type": "function", "function": …}` wrapper when they have one), history, parallel calls,
reasoning. A record that cannot be converted raises FormatError saying what is wrong; `prepare`
skips it and counts the reason.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

Message = dict[str, Any]
Conversation = dict[str, Any]
ROLES = ("system", "user", "assistant", "tool")


class FormatError(ValueError):
    """A record that does not fit its declared format."""


def _field(record: Mapping[str, Any], name: str, fields: Mapping[str, str]) -> Any:
    column = fields.get(name, name)
    if column not in record:
        raise FormatError(f"missing column {column!r} (map it with fields: {{{name}: <column>}})")
    return record[column]


def _optional(record: Mapping[str, Any], name: str, fields: Mapping[str, str]) -> Any:
    return record.get(fields.get(name, name))


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


def text_of(content: Any, what: str = "content") -> str:
    """Message content as text: a string as is, OpenAI content parts joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind != "text" or not isinstance(part.get("text"), str):
                raise FormatError(
                    f"{what}: content part of type {kind!r} is not supported (text only)"
                )
            texts.append(part["text"])
        return "\n".join(texts)
    raise FormatError(f"{what}: expected text or content parts, got {type(content).__name__}")


def tool_call(call: Any) -> dict[str, Any]:
    """OpenAI ({type, function: {name, arguments: str}}) or flat ({name, arguments}) → OpenAI,
    with the arguments parsed to an object (what chat templates expect)."""
    if not isinstance(call, Mapping):
        raise FormatError(f"tool call: expected an object, got {type(call).__name__}")
    fn = call.get("function", call)
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
        raise FormatError(f"tool call without a function name: {json.dumps(call)[:80]}")
    arguments = _json(fn.get("arguments", fn.get("parameters", {})), "tool call arguments")
    out: dict[str, Any] = {
        "type": "function",
        "function": {"name": fn["name"], "arguments": arguments},
    }
    if call.get("id"):
        out["id"] = call["id"]
    return out


def tool_calls(value: Any, what: str) -> list[dict[str, Any]]:
    """One call or a list of parallel calls (JSON text or already parsed)."""
    parsed = _json(value, what)
    return [tool_call(c) for c in (parsed if isinstance(parsed, list) else [parsed])]


def tools_of(value: Any) -> list[Any] | None:
    """Tool schemas as the record gives them (JSON text or a list); None when there are none."""
    tools = _json(value, "tools") if value else None
    if not tools:
        return None
    if not isinstance(tools, list):
        raise FormatError(f"tools: expected a list of schemas, got {type(tools).__name__}")
    return tools


def from_messages(record: Mapping[str, Any], fields: Mapping[str, str]) -> Conversation:
    messages: list[Message] = []
    for raw in _field(record, "messages", fields):
        role = raw.get(fields.get("role", "role"))
        if role not in ROLES:
            raise FormatError(f"unknown role {role!r} (expected system, user, assistant or tool)")
        message: Message = {
            "role": role,
            "content": text_of(raw.get(fields.get("content", "content"))),
        }
        if raw.get("tool_calls"):
            message["tool_calls"] = [tool_call(c) for c in raw["tool_calls"]]
        reasoning = raw.get("reasoning_content") or raw.get("reasoning")
        if reasoning:
            message["reasoning_content"] = text_of(reasoning, "reasoning")
        for key in ("name", "tool_call_id"):
            if raw.get(key):
                message[key] = raw[key]
        messages.append(message)
    conversation: Conversation = {"messages": messages}
    if tools := tools_of(_optional(record, "tools", fields)):
        conversation["tools"] = tools
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
    """ShareGPT as LLaMA-Factory reads it: `conversations` of {from, value}, optional `system`
    and `tools` columns; `function_call` turns hold one call or a list of parallel calls."""
    messages: list[Message] = []
    if system := _optional(record, "system", fields):
        messages.append({"role": "system", "content": text_of(system, "system")})
    for turn in _field(record, "conversations", fields):
        speaker = turn.get(fields.get("from", "from"))
        value = turn.get(fields.get("value", "value"), "")
        if speaker == "function_call":
            calls = tool_calls(value, "function_call")
            messages.append({"role": "assistant", "content": "", "tool_calls": calls})
            continue
        if speaker not in SHAREGPT_ROLES:
            raise FormatError(f"unknown speaker {speaker!r} in conversations")
        messages.append({"role": SHAREGPT_ROLES[speaker], "content": text_of(value)})
    conversation: Conversation = {"messages": messages}
    if tools := tools_of(_optional(record, "tools", fields)):
        conversation["tools"] = tools
    return conversation


def from_alpaca(record: Mapping[str, Any], fields: Mapping[str, str]) -> Conversation:
    """Alpaca: instruction (+ input), output; optional `system` and `history`
    ([[instruction, response], …] turns before this one, as LLaMA-Factory defines it)."""
    instruction = _field(record, "instruction", fields)
    extra = _optional(record, "input", fields) or ""
    prompt = f"{instruction}\n\n{extra}" if extra else instruction
    messages: list[Message] = []
    if system := _optional(record, "system", fields):
        messages.append({"role": "system", "content": system})
    for k, pair in enumerate(_optional(record, "history", fields) or []):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise FormatError(f"history[{k}]: expected [instruction, response]")
        messages += [
            {"role": "user", "content": text_of(pair[0])},
            {"role": "assistant", "content": text_of(pair[1])},
        ]
    messages += [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": text_of(_field(record, "output", fields), "output")},
    ]
    return {"messages": messages}


def from_xlam(record: Mapping[str, Any], fields: Mapping[str, str]) -> Conversation:
    """Salesforce xlam-function-calling: query, tools (JSON list), answers (JSON list of calls).

    The tools travel as the conversation's `tools`: every built-in template renders them into the
    prompt, with or without a system message."""
    tools = tools_of(_field(record, "tools", fields))
    conversation: Conversation = {
        "messages": [
            {"role": "user", "content": _field(record, "query", fields)},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": tool_calls(_field(record, "answers", fields), "answers"),
            },
        ]
    }
    if tools:
        conversation["tools"] = tools
    return conversation


_GLAIVE_TURN = re.compile(r"(USER|ASSISTANT|FUNCTION RESPONSE):")


def from_glaive(record: Mapping[str, Any], fields: Mapping[str, str]) -> Conversation:
    """glaive-function-calling-v2: a SYSTEM prompt (its function schemas are part of its text)
    and a USER/ASSISTANT/FUNCTION RESPONSE transcript."""
    system = str(_field(record, "system", fields)).strip().removeprefix("SYSTEM:").strip()
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    chat = str(_field(record, "chat", fields))
    parts = _GLAIVE_TURN.split(chat)
    roles = {"USER": "user", "ASSISTANT": "assistant", "FUNCTION RESPONSE": "tool"}
    for marker, text in zip(parts[1::2], parts[2::2], strict=True):
        text = text.replace("<|endoftext|>", "").strip()
        if marker == "ASSISTANT" and text.startswith("<functioncall>"):
            call = text.removeprefix("<functioncall>").removesuffix("</functioncall>").strip()
            messages.append(
                {"role": "assistant", "content": "", "tool_calls": tool_calls(call, "functioncall")}
            )
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
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise FormatError(f"record does not fit format {fmt!r}: {err!r}") from err
    messages = conversation.get("messages")
    if messages is not None and not messages:
        raise FormatError("conversation has no messages")
    return conversation
