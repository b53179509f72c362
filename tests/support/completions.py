"""What a chat template says the model generates, found without kubetune's masking code.

The reference is TRL's prompt–completion split: for assistant message i, the prompt is the
conversation before it rendered with the generation prompt (what a server sends the model), the
completion is the conversation through it rendered without one. Where the two renderings part is
where the model starts writing (after the previous message's text, where the prompt renders
an earlier message otherwise: Mistral Nemo moves the system prompt to the last user turn); the
completion ends where that rendering ends (a newline after an
end-of-turn marker included, as TRL's training templates mark it). When the template prints
nothing after a reply at the end of a conversation but closes it with a tag before the next
turn (Apertus, Hunyuan), that tag is the reply's end-of-turn marker and belongs to it, unless
the same tag opens the first user turn (GLM's `<|user|>` is the next turn's header).

Where the whole conversation's rendering does not start with the completion's (Qwen3 and QwQ drop
an earlier turn's reasoning), the turn has no exact reference: `Turn.exact` is False and only
what can be found by its text is checked (its text trained, other messages' text not).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Render = Callable[[list[dict[str, Any]], Any, bool], str]

_TAG = re.compile(r"<[^<>\s]+>|\[[A-Z_]+\]")


@dataclass(frozen=True)
class Turn:
    index: int
    start: int
    end: int
    exact: bool


def common_prefix(a: str, b: str) -> int:
    n = 0
    limit = min(len(a), len(b))
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def completion_turns(render: Render, messages: list[dict[str, Any]], tools: Any) -> list[Turn]:
    """One `Turn` per assistant message: its span in the whole conversation's rendering."""
    full = render(messages, tools, False)
    first_user = next(i for i, m in enumerate(messages) if m["role"] == "user")
    opening = render(messages[: first_user + 1], tools, False)
    turns = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(messages[:i], tools, True)
        through = render(messages[: i + 1], tools, False)
        start = common_prefix(prompt, through)
        previous = str(messages[i - 1].get("content") or "") if i else ""
        if previous.strip() and previous in prompt and previous in through:
            after_t = through.rfind(previous) + len(previous)
            if start < after_t:  # the prompt shows an earlier message otherwise: align after it
                after_p = prompt.rfind(previous) + len(previous)
                start = after_t + common_prefix(prompt[after_p:], through[after_t:])
        start = _word_start(through, _tag_start(through, start))
        end = len(through)
        exact = full.startswith(through)
        reply = through[start:end]
        if exact and reply and not reply[-1].isspace() and not _last_tag(reply):
            follows = _TAG.match(full, end)
            if follows and follows.group() not in opening:  # a marker, not the next header
                end = follows.end()
        turns.append(Turn(i, start, end, exact))
    return turns


def _tag_start(text: str, at: int) -> int:
    """`at`, or the start of the tag it falls inside (`<|tool_call>` and `<|channel>` share
    `<|`: the renderings part inside a tag, and the model writes the whole tag)."""
    for tag in _TAG.finditer(text, max(0, at - 64)):
        if tag.start() < at < tag.end():
            return tag.start()
    return at


def _word_start(text: str, at: int) -> int:
    """`at`, or the start of the word it falls inside (Apriel's generation prompt `Here are…`
    and a reply `Hi` share an `H`)."""
    while 0 < at < len(text) and text[at - 1].isalnum() and text[at].isalnum():
        at -= 1
    return at


def _last_tag(text: str) -> str:
    """The tag `text` ends with, or '' when it ends with plain text."""
    tags = [m for m in _TAG.finditer(text) if m.end() == len(text)]
    return tags[-1].group() if tags else ""


def message_texts(message: dict[str, Any]) -> list[str]:
    """The strings of a message a template prints as they are: content, reasoning, call names."""
    texts = [message.get("content") or "", message.get("reasoning_content") or ""]
    for call in message.get("tool_calls") or []:
        texts.append(call["function"]["name"])
    return [t for t in texts if t.strip()]


def tool_definition_texts(tools: Any) -> list[str]:
    """Descriptions in the tool definitions: never in a reply, so never trained."""
    out = []
    for tool in tools or []:
        fn = tool["function"]
        out.append(fn.get("description") or "")
        for prop in fn.get("parameters", {}).get("properties", {}).values():
            out.append(prop.get("description") or "")
    return [t for t in out if t]
