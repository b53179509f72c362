"""Which characters of a rendered conversation carry loss, for any chat template.

The conversation is rendered once. To find a message's characters, it is rendered again with
only that message's text changed — letters and digits shifted, whitespace and markup tags such
as `<think>` kept, so the template takes the same branches — and the characters that differ are
that message's. Nothing is assumed of the template: not prefix stability (Qwen3 drops earlier
turns' reasoning), not where it puts the system prompt or the tool definitions.

A trained turn covers:
- assistant: everything the model writes — the reply, reasoning and whole tool calls — from
  where the conversation before it, rendered with the generation prompt, parts from the
  conversation through it (so a call's opener and name are trained under templates whose
  generation prompt is empty, thinking-only, or needs tools; where that cannot be placed, from
  after the header a probe finds), up to and including the end-of-turn marker after its text
  (a tag printed only before a following turn, as Apertus and Hunyuan do, counts), but never
  another message's characters (some templates put tool results inside the model's turn: the
  turn then stops where its own text does). With no end-of-turn marker after it (GLM-4), it
  ends where rendering the conversation up to it ends;
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
_TAG_OR_TOKEN = re.compile(r"<[^<>\s]+>|\[[A-Z_]+\]")


@dataclass(frozen=True)
class Markers:
    """What the template puts around an assistant reply: its header and its end-of-turn."""

    header: str | None
    end: str | None
    closing: str = ""
    """What the template adds after the end marker of a conversation's last reply (an EOS)."""


REPLY, NEXT = "kubetune probe reply", "kubetune probe question"


def probe(render: Render) -> Markers:
    """Render probes to learn the assistant header and the end-of-turn marker: what follows a
    reply both at the end of a conversation and before the next turn (some templates close the
    conversation with an extra EOS)."""
    user, reply = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": REPLY}
    base, prompted = render([user], None, False), render([user], None, True)
    header = prompted[len(base) :] if prompted.startswith(base) else ""
    last = _after_reply(render([user, reply], None, False))
    middle = _after_reply(render([user, reply, {**user, "content": NEXT}], None, False))
    common = 0
    while common < min(len(last), len(middle)) and last[common] == middle[common]:
        common += 1
    end = last[:common] if NEXT in middle else last
    if end.rfind("<") > end.rfind(">"):  # a common start of two different tags is not a marker
        end = end[: end.rfind("<")]
    if not end.strip() and NEXT in middle:
        # nothing closes a conversation's last reply, but a tag closes one before another turn
        # (Apertus, Hunyuan): that tag, unless it is what opens a user turn (GLM's `<|user|>`)
        tag = _TAG_OR_TOKEN.match(middle)
        if tag and tag.group() not in base:
            return Markers(header or None, tag.group(), "")
    return Markers(header or None, end or None, last[len(end) :] if end else "")


def _after_reply(text: str) -> str:
    """What follows the probe reply, up to the next probe question if there is one."""
    at = text.rfind(REPLY)
    tail = text[at + len(REPLY) :] if at >= 0 else ""
    return tail[: tail.find(NEXT) + len(NEXT)] if NEXT in tail else tail


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
    """The message with its text, reasoning and call arguments changed, its role and shape kept.
    Empty fields stay empty and function names stay as they are unless nothing else can change:
    templates may print them elsewhere (Gemma 4 repeats a call's name in the tool result that
    follows, and puts a reply's text after it), which would blur where the message ends."""
    out = dict(message)
    changed = False
    for key in ("content", "reasoning_content"):
        if isinstance(out.get(key), str) and out[key].strip():
            out[key] = shift_text(out[key])
            changed = True
    calls = out.get("tool_calls") or []
    if calls:
        changed = changed or any(_function(c)["arguments"] for c in calls)
        shifted = []
        for call in calls:
            fn = dict(_function(call))
            fn["arguments"] = _shift_value(fn["arguments"])
            if not changed:
                fn["name"] = shift_text(fn["name"])
            shifted.append({**call, "function": fn} if "function" in call else fn)
        out["tool_calls"] = shifted
        changed = True
    if not changed:  # an empty message: give it some text to find where it goes
        out["content"] = shift_text(str(out.get("content") or ""))
    return out


def _function(call: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = call.get("function", call)
    return function


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


def _generation_start(
    render: Render, messages: list[dict[str, Any]], i: int, tools: Any, full: str, own: int
) -> int | None:
    """Where the model starts writing message i in `full`: where the conversation before it,
    rendered with the generation prompt, parts from the conversation through it (so a call's
    opener and name, which a history turn shows and a generation prompt does not, are the
    model's, as is whatever a thinking-only generation prompt leaves out). None when the
    template will not render that prefix or the place cannot be found in `full`."""
    try:
        prompt = render(messages[:i], tools, True)
        through = render(messages[: i + 1], tools, False)
    except ValueError:
        return None
    at = _tag_start(through, _common_prefix(prompt, through))
    previous = str(messages[i - 1].get("content") or "") if i else ""
    floor = full.rfind(previous, 0, own) + len(previous) if previous.strip() else 0
    if at < floor and previous in prompt and previous in through:
        # the prompt renders an earlier message otherwise (Mistral Nemo puts the system prompt
        # into the last user turn): compare what follows the previous message's text instead
        after_p = prompt.rfind(previous) + len(previous)
        after_t = through.rfind(previous) + len(previous)
        shared = _tag_start(through, after_t + _common_prefix(prompt[after_p:], through[after_t:]))
        start = floor + shared - after_t
        fits = full[floor:start] == through[after_t:shared]
        return start if fits and start <= own else None
    if full[:at] == through[:at] and floor <= at <= own:
        return at
    # the conversation's later turns changed the text before it (Mistral puts the tool list
    # before the last user turn): find the text between the model's start and its own
    # characters right before those characters
    variant = render([*messages[:i], shifted_message(messages[i])], tools, False)
    mine = differing(through, variant)[0] if variant != through else len(through)
    gap = through[at:mine]
    if mine < at or not full.endswith(gap, 0, own):
        return None
    return own - len(gap)


def _common_prefix(a: str, b: str) -> int:
    n, limit = 0, min(len(a), len(b))
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def _tag_start(text: str, at: int) -> int:
    """`at`, or the start of the markup tag it falls inside (two renderings that part at the
    `<|` shared by `<|tool_call>` and `<|channel>` part at the tag)."""
    for tag in _TAG_OR_TOKEN.finditer(text, max(0, at - 64)):
        if tag.start() < at < tag.end():
            return tag.start()
    return at


def trained_spans(
    render: Render,
    messages: list[dict[str, Any]],
    tools: Any,
    roles: set[str],
    markers: Markers,
    first: int = 0,
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the sorted character spans that carry loss. Messages before
    `first` carry none (the prompt of a preference pair, whatever its roles)."""
    full = render(messages, tools, False)

    def own(i: int) -> tuple[int, int] | None:
        """Where message i's characters are; None when the template does not show it."""
        message = messages[i]
        # a template that ignores tool calls still shows an empty reply: give it text to find
        empty = {**message, "content": shift_text(str(message.get("content") or ""))}
        for changed in (shifted_message(message), empty):
            variant = render([*messages[:i], changed, *messages[i + 1 :]], tools, False)
            if variant != full:
                return differing(full, variant)
        return None

    spans = []
    for i, message in enumerate(messages):
        if i < first or message["role"] not in roles or (region := own(i)) is None:
            continue
        start, end = region
        assistant = message["role"] == "assistant"
        if assistant:
            opened = _generation_start(render, messages, i, tools, full, start)
            start = _after_header(full, start, markers) if opened is None else opened
        stop = _through_end(full, end, markers, assistant)
        if stop > end and full[end:stop].strip() != (markers.end or "").strip():
            # text between this message and its end marker (a tool call's closing tags, or
            # the next message when a template keeps tool results inside the model's turn)
            following = own(i + 1) if i + 1 < len(messages) else None
            if following is not None and following[0] < stop:
                alone = render(messages[: i + 1], tools, False)
                fits = full.startswith(alone) and end <= len(alone) <= following[0]
                stop = len(alone) if fits else end
        elif assistant and stop == end:
            # no end-of-turn marker after it (GLM-4 has none; Kimi K3 closes a turn of calls
            # with other tags than a reply): the turn ends where rendering it last ends
            alone = render(messages[: i + 1], tools, False)
            if full.startswith(alone) and len(alone) > end:
                stop = len(alone)
        if assistant and markers.closing and full[stop:] == markers.closing:
            stop = len(full)  # the conversation's closing EOS ends the model's last reply
        spans.append((start, stop))
    return full, sorted(spans)
