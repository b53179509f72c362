"""Which characters of a rendered conversation carry loss, for any chat template.

The conversation is rendered once. To find a message's characters, it is rendered again with
only that message's text changed — letters and digits shifted, whitespace and markup tags such
as `<think>` kept, so the template takes the same branches — and the characters that differ are
that message's. Nothing is assumed of the template: not prefix stability (Qwen3 drops earlier
turns' reasoning), not where it puts the system prompt or the tool definitions.

A trained turn covers:
- assistant: everything after its header (the text `add_generation_prompt` appends, found by
  rendering a probe) up to and including the end-of-turn marker after its text — the reply,
  reasoning and tool calls, all of which the model generates;
- any other role: its own characters, and the end-of-turn marker when only whitespace comes
  between them.
Headers never carry loss, for any role; nor do tool definitions, default system prompts or
anything else the template adds on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Render = Callable[[list[dict[str, Any]], Any, bool], str]

_TAG = re.compile(r"<[^<>\s]*>")
_SHIFT = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "bcdefghijklmnopqrstuvwxyzaBCDEFGHIJKLMNOPQRSTUVWXYZA1234567890",
)
_MARK = "§"


@dataclass(frozen=True)
class Markers:
    """What the template puts around an assistant reply: its header and its end-of-turn."""

    header: str | None
    end: str | None


def probe(render: Render) -> Markers:
    """Render a two-turn probe to learn the assistant header and the end-of-turn marker."""
    user, reply = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}
    base, prompted = render([user], None, False), render([user], None, True)
    header = prompted[len(base) :] if prompted.startswith(base) else ""
    full = render([user, reply], None, False)
    at = full.rfind("Yo")
    end = full[at + 2 :] if at >= 0 else ""
    return Markers(header or None, end or None)


def shift_text(text: str) -> str:
    """`text` with every letter and digit changed, tags and whitespace kept, and its first and
    last visible characters always different (a `§` is added where shifting changes nothing)."""
    parts, pos = [], 0
    for tag in _TAG.finditer(text):
        parts += [text[pos : tag.start()].translate(_SHIFT), tag.group()]
        pos = tag.end()
    shifted = "".join([*parts, text[pos:].translate(_SHIFT)])
    core = text.strip()
    lead = len(text) - len(text.lstrip())
    trail = len(text.rstrip())
    if not core:
        return text + _MARK
    if shifted[lead] == text[lead] and text[lead] != "<":
        shifted = shifted[:lead] + _MARK + shifted[lead:]
        trail += 1
    if shifted[trail - 1] == text.rstrip()[-1] and not text.rstrip().endswith(">"):
        shifted = shifted[:trail] + _MARK + shifted[trail:]
    return shifted


def _shift_value(value: Any) -> Any:
    if isinstance(value, str):
        return shift_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, list):
        return [_shift_value(v) for v in value]
    if isinstance(value, dict):
        return {shift_text(k): _shift_value(v) for k, v in value.items()}
    return value


def shifted_message(message: dict[str, Any]) -> dict[str, Any]:
    """The message with its text, reasoning and tool calls changed, its role and shape kept."""
    out = dict(message)
    for key in ("content", "reasoning_content"):
        if isinstance(out.get(key), str):
            out[key] = shift_text(out[key])
    if out.get("tool_calls"):
        calls = []
        for call in out["tool_calls"]:
            fn = call.get("function", call)
            fn = {**fn, "name": shift_text(fn["name"]), "arguments": _shift_value(fn["arguments"])}
            calls.append({**call, "function": fn} if "function" in call else fn)
        out["tool_calls"] = calls
    return out


def differing(a: str, b: str) -> tuple[int, int]:
    """The span of `a` outside its longest common prefix and suffix with `b`."""
    limit = min(len(a), len(b))
    start = 0
    while start < limit and a[start] == b[start]:
        start += 1
    tail = 0
    while tail < limit - start and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    return start, len(a) - tail


def _after_header(full: str, start: int, markers: Markers) -> int:
    if markers.header is None:
        return start
    at = full.rfind(markers.header, 0, start)
    if at < 0:
        return start
    between = full[at + len(markers.header) : start]
    if markers.end is not None and markers.end in between:
        return start  # that header belongs to an earlier turn
    return at + len(markers.header)


def _through_end(full: str, end: int, markers: Markers, assistant: bool) -> int:
    if markers.end is None:
        return end
    at = full.find(markers.end, end)
    if at < 0:
        return end
    between = full[end:at]
    if assistant:
        if markers.header is not None and markers.header in between:
            return end  # the reply ran into another turn: the template has no end marker here
    elif between.strip():
        return end
    return at + len(markers.end)


def trained_spans(
    render: Render,
    messages: list[dict[str, Any]],
    tools: Any,
    roles: set[str],
    markers: Markers,
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the sorted character spans that carry loss."""
    full = render(messages, tools, False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] not in roles:
            continue
        variant = render(
            [*messages[:i], shifted_message(message), *messages[i + 1 :]], tools, False
        )
        if variant == full:
            continue  # the template does not show this message at all
        start, end = differing(full, variant)
        assistant = message["role"] == "assistant"
        if assistant:
            start = _after_header(full, start, markers)
        spans.append((start, _through_end(full, end, markers, assistant)))
    return full, sorted(spans)
