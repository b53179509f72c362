"""Trained spans found once per conversation shape, so masking costs one rendering.

`turns.trained_spans` renders a conversation several times per trained message to find where
each message is; over a long conversation that is most of preprocessing. The conversations of a
dataset come in few shapes, though: the same roles, the same fields, texts of different words.

A conversation's shape is the conversation with each distinct text replaced by a placeholder
(the same text, the same placeholder; whitespace around it, roles, types, keys, numbers and
booleans kept). `trained_spans` runs on the shape once. For a conversation of that shape, the
shape's rendering with every placeholder replaced by its text must be the conversation's own
rendering, character for character (it is rendered once, as always): then the shape's spans
apply, moved by the lengths of the texts before them. When it is not (a template that looks
into a text: Qwen3 splits reasoning out of a reply, JSON escapes a quote), the conversation is
masked on its own by `trained_spans`. Call ids keep their length in a shape: Mistral's templates
refuse ids that are not nine characters.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from typing import Any

from kubetune_trainer.data.turns import Markers, Render, trained_spans

# Letters only, so the probes of trained_spans change every character of a placeholder.
_PLACEHOLDER = re.compile(r"Zzq([a-z]+)X*Qzz")
_KEPT_FIELDS = frozenset({"role", "type"})  # templates branch on these values
# Fields whose length a template may check (Mistral's call ids have nine characters): their
# placeholders are padded to the text's length, which becomes part of the shape.
_SIZED_FIELDS = frozenset({"id", "tool_call_id"})
CACHE_LIMIT = 4096
_UNSEEN: Any = object()


def _placeholder(index: int, length: int = 0) -> str:
    """A placeholder for text `index`, padded to `length` characters where it is shorter."""
    letters = ""
    while True:
        index, digit = divmod(index, 26)
        letters += chr(ord("a") + digit)
        if not index:
            return f"Zzq{letters}{'X' * (length - len(letters) - 6)}Qzz"


def _index(letters: str) -> int:
    return sum((ord(c) - ord("a")) * 26**k for k, c in enumerate(letters))


class _Abstraction:
    """Replaces texts by placeholders, remembering which text each stands for."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._seen: dict[str, int] = {}

    def value(self, value: Any, field: str | None) -> Any:
        kind = type(value)  # exact types: anything else is kept as it is, part of the shape
        if kind is str:
            core = value.strip()
            if not core or field in _KEPT_FIELDS:
                return value
            index = self._seen.setdefault(core, len(self.texts))
            if index == len(self.texts):
                self.texts.append(core)
            start = len(value) - len(value.lstrip())
            sized = len(core) if field in _SIZED_FIELDS else 0
            return value[:start] + _placeholder(index, sized) + value[start + len(core) :]
        if kind is dict:
            return {key: self.value(item, key) for key, item in value.items()}
        if kind is list or kind is tuple:
            return [self.value(item, field) for item in value]
        return value


@dataclass(frozen=True)
class _Shape:
    pieces: list[str]
    """The shape's rendering between its placeholders (one more than `used`)."""
    used: list[int]
    """The text each placeholder in the rendering stands for, in order."""
    starts: list[int]
    """Where each placeholder starts in the shape's rendering."""
    lengths: list[int]
    spans: list[tuple[int, int]]


def _shape(
    render: Render, messages: Any, tools: Any, roles: set[str], markers: Markers
) -> _Shape | None:
    try:
        text, spans = trained_spans(render, messages, tools, roles, markers)
    except ValueError:
        return None  # the shape is refused where the conversation may not be
    pieces, used, starts, lengths, position = [], [], [], [], 0
    for found in _PLACEHOLDER.finditer(text):
        pieces.append(text[position : found.start()])
        used.append(_index(found.group(1)))
        starts.append(found.start())
        lengths.append(found.end() - found.start())
        position = found.end()
    pieces.append(text[position:])
    return _Shape(pieces, used, starts, lengths, spans)


class ShapeSpans:
    """Trained spans by conversation shape, for one template and one set of trained roles."""

    def __init__(self, render: Render, roles: set[str]) -> None:
        self.render = render
        self.roles = roles
        self._shapes: dict[str, _Shape | None] = {}

    def spans(
        self, messages: list[dict[str, Any]], tools: Any, markers: Markers
    ) -> tuple[str, list[tuple[int, int]]]:
        """What `trained_spans(render, messages, tools, roles, markers)` returns."""
        full = self.render(messages, tools, False)
        abstraction = _Abstraction()
        shape_messages = abstraction.value(messages, None)
        shape_tools = abstraction.value(tools, None)
        key = json.dumps([shape_messages, shape_tools], ensure_ascii=False, default=str)
        # threads may share this cache (workers.py): one lookup, one store
        shape = self._shapes.get(key, _UNSEEN)
        if shape is _UNSEEN:
            if len(self._shapes) >= CACHE_LIMIT:
                self._shapes.clear()
            shape = _shape(self.render, shape_messages, shape_tools, self.roles, markers)
            self._shapes[key] = shape
        mapped = _apply(shape, abstraction.texts, full) if shape is not None else None
        if mapped is None:
            return trained_spans(self.render, messages, tools, self.roles, markers)
        return full, mapped


def _apply(shape: _Shape, texts: list[str], full: str) -> list[tuple[int, int]] | None:
    """The shape's spans in `full`, or None when `full` is not the shape's rendering with the
    texts put back, or a span would start or end inside a text."""
    filled = [shape.pieces[0]]
    for index, piece in zip(shape.used, shape.pieces[1:], strict=True):
        filled += [texts[index], piece]
    if "".join(filled) != full:
        return None
    moved, total = [0], 0  # moved[k]: how far positions after the k-th placeholder move
    for index, length in zip(shape.used, shape.lengths, strict=True):
        total += len(texts[index]) - length
        moved.append(total)
    ends = [start + length for start, length in zip(shape.starts, shape.lengths, strict=True)]
    out = []
    for span in shape.spans:
        points = []
        for point in span:
            k = bisect.bisect_right(ends, point)  # placeholders ending at or before the point
            if k < len(shape.starts) and shape.starts[k] < point:
                return None  # inside a placeholder
            points.append(point + moved[k])
        out.append((points[0], points[1]))
    return out
