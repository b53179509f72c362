"""Conversations to token ids with labels masked by role, token by token.

The chat template is rendered once per prefix of the conversation: the characters a message
adds are its span. For assistant turns the header (e.g. `<|im_start|>assistant\\n`, what
`add_generation_prompt` adds) is excluded, so only the reply carries loss. The full text is
tokenized once, and each token takes the label of the span its first character falls in.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

IGNORE = -100


class TemplateError(ValueError):
    """A chat template that role masking cannot use."""


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


@dataclass
class Stats:
    samples: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    truncated_samples: int = 0
    truncated_tokens: int = 0
    dropped_no_labels: int = 0
    roles: dict[str, int] = field(default_factory=dict)


def spans(render: Any, conversation: dict[str, Any]) -> tuple[str, list[tuple[int, str]]]:
    """The rendered text and, for each span, (end offset, role or '' for untrained headers)."""
    messages, tools = conversation["messages"], conversation.get("tools")
    full = render(messages, tools, False)
    bounds: list[tuple[int, str]] = []
    for k, message in enumerate(messages, start=1):
        if message["role"] == "assistant":
            head = render(messages[: k - 1], tools, True)
            if not full.startswith(head):
                raise TemplateError("the chat template is not prefix-stable at an assistant turn")
            bounds.append((len(head), ""))
        prefix = render(messages[:k], tools, False)
        if not full.startswith(prefix):
            raise TemplateError(
                "the chat template is not prefix-stable (rendering the first turns is not a "
                "prefix of rendering all of them), so loss cannot be masked by role; use a "
                "builtin template (dataset.chatTemplate.builtin)"
            )
        bounds.append((len(prefix), message["role"]))
    bounds.append((len(full), ""))
    return full, bounds


def labels_for(
    offsets: list[tuple[int, int]],
    ids: list[int],
    bounds: list[tuple[int, str]],
    train_roles: set[str],
) -> list[int]:
    ends = [end for end, _ in bounds]
    labels = []
    for (start, _), token in zip(offsets, ids, strict=True):
        role = bounds[min(bisect.bisect_right(ends, start), len(bounds) - 1)][1]
        labels.append(token if role in train_roles else IGNORE)
    return labels


class Encoder:
    """Templates and tokenizes batches of conversations (or texts) for one tokenizer."""

    def __init__(self, tokenizer: Any, train_roles: list[str], max_length: int) -> None:
        self.tokenizer = tokenizer
        self.train_roles = set(train_roles)
        self.max_length = max_length
        self.stats = Stats()

    def _render(self, messages: list[dict[str, Any]], tools: Any, generation: bool) -> str:
        if not messages and not generation:
            return ""
        text: str = self.tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=generation
        )
        return text

    def encode_batch(self, conversations: list[dict[str, Any]]) -> list[Encoded]:
        texts, bounds = [], []
        for conversation in conversations:
            if "text" in conversation:
                eos = self.tokenizer.eos_token or ""
                text = conversation["text"] + eos
                texts.append(text)
                bounds.append([(len(text), "text")])
            else:
                text, spans_ = spans(self._render, conversation)
                texts.append(text)
                bounds.append(spans_)
        batch = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        out = []
        for ids, offsets, span in zip(
            batch["input_ids"], batch["offset_mapping"], bounds, strict=True
        ):
            roles = self.train_roles | {"text"}
            labels = labels_for(offsets, ids, span, roles)
            out.append(self._finish(ids, labels))
        return [e for e in out if e is not None]

    def _finish(self, ids: list[int], labels: list[int]) -> Encoded | None:
        stats = self.stats
        if len(ids) > self.max_length:  # explicit truncation, counted in the report
            stats.truncated_samples += 1
            stats.truncated_tokens += len(ids) - self.max_length
            ids, labels = ids[: self.max_length], labels[: self.max_length]
        trained = sum(1 for label in labels[1:] if label != IGNORE)
        if trained == 0:
            stats.dropped_no_labels += 1
            return None
        stats.samples += 1
        stats.tokens += len(ids)
        stats.trained_tokens += trained
        return Encoded(list(ids), labels)
