"""Conversations to token ids with labels masked by role, token by token.

The chat template (transformers' `apply_chat_template`, the engine serving uses) renders each
conversation; `turns.trained_spans` finds the characters that carry loss. The text is tokenized
once, and a token is trained when one of its characters lies in a trained span. A conversation the
template refuses (its `raise_exception`, a missing field) comes back as `Refused` with the
template's message, so `prepare` can skip and count it.

A fast tokenizer's texts go straight to its `tokenizers` backend, and each span's first and last
tokens are asked of the encoding (`char_to_token`) instead of turning every token's offsets into
Python tuples: a fifth to a third less time for tokenizing and masking with real vocabularies
(docs/benchmarks.md). The same ids as the tokenizer's own call, the same labels as `labels_for`.
"""

from __future__ import annotations

import bisect
import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubetune_trainer.data.shapes import ShapeSpans
from kubetune_trainer.data.turns import Markers, probe

IGNORE = -100


class TemplateError(ValueError):
    """A chat template that cannot render a conversation; the message says why."""


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


@dataclass(frozen=True)
class Refused:
    """A conversation the chat template would not render."""

    reason: str


@dataclass
class Stats:
    samples: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    truncated_samples: int = 0
    truncated_tokens: int = 0
    dropped_no_labels: int = 0
    roles: dict[str, int] = field(default_factory=dict)


def labels_for(
    offsets: list[tuple[int, int]], ids: list[int], spans: list[tuple[int, int]]
) -> list[int]:
    """A token is trained when any of its characters is (as transformers' assistant masks); a
    token of no characters counts as its first. With the tokens in text order and the spans
    apart (the usual case), each span's tokens are found by two bisections, not token by token."""
    firsts = [first for first, _ in offsets]
    lasts = [after if after > first else first + 1 for first, after in offsets]
    apart = all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    if apart and _ascending(firsts) and _ascending(lasts):
        labels = [IGNORE] * len(ids)
        for start, end in spans:
            low, high = bisect.bisect_right(lasts, start), bisect.bisect_left(firsts, end)
            labels[low:high] = ids[low:high]
        return labels
    return _labels_token_by_token(offsets, ids, spans)


def plain_backend(tokenizer: Any) -> Any | None:
    """The fast tokenizer's `tokenizers` backend when texts can go to it directly (no
    truncation or padding configured on it); None for a slow tokenizer or a configured one.
    Its `encode_batch` releases the GIL, and it is only read, so threads may share it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        return None
    return backend


def tokenized_with_labels(
    tokenizer: Any, texts: list[str], spans: list[list[tuple[int, int]]]
) -> list[tuple[list[int], list[int]]]:
    """Each text's token ids (no special tokens added) and labels: `labels_for` of its spans."""
    if not texts:
        return []
    backend = plain_backend(tokenizer)
    if backend is None:
        batch = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        return [
            (list(ids), labels_for(offsets, ids, text_spans))
            for ids, offsets, text_spans in zip(
                batch["input_ids"], batch["offset_mapping"], spans, strict=True
            )
        ]
    out = []
    for encoding, text_spans in zip(
        backend.encode_batch(texts, add_special_tokens=False), spans, strict=True
    ):
        ids = encoding.ids
        labels = labels_by_span(encoding, ids, text_spans)
        if labels is None:
            labels = labels_for(encoding.offsets, ids, text_spans)
        out.append((ids, labels))
    return out


def labels_by_span(encoding: Any, ids: list[int], spans: list[tuple[int, int]]) -> list[int] | None:
    """`labels_for`, from each span's first and last tokens: from the token holding its first
    character to the one holding its last, and on over the tokens after it that start inside
    the span (byte fallback spells one character in several tokens); the tokens between are
    taken to be in text order, as a fast tokenizer gives them. None where the encoding
    cannot say so simply (a character no token holds, a token before the first that reaches
    into the span, spans that overlap or are out of order): then `labels_for` decides."""
    labels = [IGNORE] * len(ids)
    last = len(ids) - 1
    previous_end = 0
    for start, end in spans:
        if start < previous_end:
            return None
        previous_end = end
        if start >= end:
            continue
        low, high = encoding.char_to_token(start), encoding.char_to_token(end - 1)
        if low is None or high is None or high < low:
            return None
        if low > 0:
            before = encoding.token_to_chars(low - 1)
            if before is None or max(before[1], before[0] + 1) > start:
                return None  # a token of no characters counts as its first
        while high < last:
            after = encoding.token_to_chars(high + 1)
            if after is None:
                return None
            if after[0] >= end:
                break
            high += 1
        labels[low : high + 1] = ids[low : high + 1]
    return labels


def _ascending(values: list[int]) -> bool:
    return values == sorted(values)  # linear on sorted input, and in C


def _labels_token_by_token(
    offsets: list[tuple[int, int]], ids: list[int], spans: list[tuple[int, int]]
) -> list[int]:
    starts = [start for start, _ in spans]
    labels = []
    for (first, after), token in zip(offsets, ids, strict=True):
        k = bisect.bisect_left(starts, max(after, first + 1)) - 1
        labels.append(token if k >= 0 and spans[k][1] > first else IGNORE)
    return labels


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer puts a BOS token in front of plain text by itself."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


class Encoder:
    """Templates and tokenizes batches of conversations (or texts) for one tokenizer."""

    def __init__(self, tokenizer: Any, train_roles: Sequence[str], max_length: int) -> None:
        self.tokenizer = tokenizer
        self.train_roles = set(train_roles)
        self.max_length = max_length
        self.stats = Stats()
        self._markers: Markers | None = None
        self._bos = (tokenizer.bos_token or "") if adds_bos(tokenizer) else ""
        self._shapes = ShapeSpans(self.render, self.train_roles)

    def render(self, messages: list[dict[str, Any]], tools: Any, generation: bool) -> str:
        import jinja2

        try:
            text: str = self.tokenizer.apply_chat_template(
                messages, tools=tools or None, tokenize=False, add_generation_prompt=generation
            )
        except jinja2.TemplateSyntaxError:
            raise  # the template itself is broken: not one conversation's fault
        except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError) as err:
            raise TemplateError(f"the chat template refused it: {err}") from err
        return text

    @property
    def markers(self) -> Markers:
        if self._markers is None:
            try:
                self._markers = probe(self.render)
            except TemplateError:
                self._markers = Markers(None, None)
        return self._markers

    def for_thread(self) -> Encoder:
        """A twin to encode in another thread: the same tokenizer, markers and shape cache,
        statistics of its own (workers.py adds them up)."""
        _ = self.markers  # found once, shared
        twin = copy.copy(self)
        twin.stats = Stats()
        return twin

    def text_and_spans(self, conversation: dict[str, Any]) -> tuple[str, list[tuple[int, int]]]:
        """The text the model sees and the character spans that carry loss."""
        if "text" in conversation:
            text = self._bos + conversation["text"] + (self.tokenizer.eos_token or "")
            return text, [(0, len(text))]
        return self._shapes.spans(conversation["messages"], conversation.get("tools"), self.markers)

    def encode_batch(self, conversations: list[dict[str, Any]]) -> list[Encoded | Refused | None]:
        """One result per conversation: encoded, refused by the template, or None when no
        trained token is left after truncation (counted in the stats)."""
        rendered: list[tuple[str, list[tuple[int, int]]] | Refused] = []
        for conversation in conversations:
            try:
                rendered.append(self.text_and_spans(conversation))
            except TemplateError as err:
                rendered.append(Refused(str(err)))
        kept = [r for r in rendered if not isinstance(r, Refused)]
        tokenized = iter(
            tokenized_with_labels(self.tokenizer, [t for t, _ in kept], [s for _, s in kept])
        )
        return [
            item if isinstance(item, Refused) else self._finish(*next(tokenized))
            for item in rendered
        ]

    def _finish(self, ids: list[int], labels: list[int]) -> Encoded | None:
        stats = self.stats
        if len(ids) > self.max_length:  # explicit truncation, counted in the report
            stats.truncated_samples += 1
            stats.truncated_tokens += len(ids) - self.max_length
            ids, labels = ids[: self.max_length], labels[: self.max_length]
        trained = len(labels) - 1 - labels[1:].count(IGNORE)
        if trained == 0:
            stats.dropped_no_labels += 1
            return None
        stats.samples += 1
        stats.tokens += len(ids)
        stats.trained_tokens += trained
        return Encoded(ids, labels)
