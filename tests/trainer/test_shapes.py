"""Masking once per conversation shape (data/shapes.py) gives exactly what masking each
conversation on its own (`turns.trained_spans`, proved against TRL's masks and llama.cpp's
templates elsewhere) gives, costs one rendering for a shape already seen, and masks a
conversation on its own when its template looks into a text. `prepare`'s worker threads and
processes (data/workers.py) give the results and statistics of one process."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kubetune_trainer.data.formats import convert
from kubetune_trainer.data.shapes import ShapeSpans
from kubetune_trainer.data.templates import builtin_template
from kubetune_trainer.data.tokenize import Encoded, Encoder, Refused, TemplateError
from kubetune_trainer.data.turns import trained_spans
from kubetune_trainer.data.vocabularies import read_vocabulary
from kubetune_trainer.data.workers import encode_batches, split
from tests.support.conversations import CONVERSATIONS
from tests.support.vocabularies import llama_cpp_models, with_template

FIXTURES = Path(__file__).parent / "fixtures"
ROLES = {"assistant"}
# One built-in name per distinct template (qwen is qwen2.5's, gemma-3 is gemma's).
TEMPLATES = ("chatml", "llama-3", "llama-3.1", "gemma", "gemma-2", "qwen2.5", "qwen3")


def public_rows() -> list[dict[str, Any]]:
    return [
        convert(json.loads(line), fmt)
        for fmt in ("sharegpt", "glaive", "xlam")
        for line in (FIXTURES / f"{fmt}.jsonl").read_text().splitlines()
    ]


def conversations() -> list[dict[str, Any]]:
    own = [{"messages": m, "tools": t} for t, m in CONVERSATIONS.values()]
    return own + public_rows()


class Counted:
    """An encoder's render that counts its calls."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder, self.calls = encoder, 0

    def __call__(self, messages: Any, tools: Any, generation: bool) -> str:
        self.calls += 1
        return self.encoder.render(messages, tools, generation)


def encoder_for(builtin: str) -> Encoder:
    return Encoder(with_template("qwen2", builtin_template(builtin)), sorted(ROLES), 1 << 20)


@pytest.mark.parametrize("builtin", TEMPLATES)
def test_shape_spans_are_each_conversations_own(builtin: str) -> None:
    encoder = encoder_for(builtin)
    shapes = ShapeSpans(encoder.render, ROLES)
    compared = 0
    for conversation in conversations():
        messages, tools = conversation["messages"], conversation.get("tools")
        try:
            want = trained_spans(encoder.render, messages, tools, ROLES, encoder.markers)
        except TemplateError:
            continue
        assert shapes.spans(messages, tools, encoder.markers) == want
        compared += 1
    assert compared >= 5


def reworded(conversation: dict[str, Any], word: str) -> dict[str, Any]:
    """The same conversation with every message's text changed (its shape kept)."""
    out = copy.deepcopy(conversation)
    for message in out["messages"]:
        for key in ("content", "reasoning_content"):
            if message.get(key):
                message[key] = f"{message[key]} {word}"
    return out


# Mistral Nemo refuses a call id that is not nine characters: ids keep their length in a shape.
MISTRAL_NEMO = "mistralai-Mistral-Nemo-Instruct-2407"


@pytest.mark.parametrize(
    ("template", "case"),
    [
        ("qwen2.5", "multi-turn"),
        ("qwen2.5", "tool-call"),
        ("qwen2.5", "parallel-calls"),
        (MISTRAL_NEMO, "tool-call"),
    ],
)
def test_a_seen_shape_costs_one_rendering(template: str, case: str) -> None:
    if template == MISTRAL_NEMO:
        source = (llama_cpp_models() / "templates" / f"{template}.jinja").read_text()
        encoder = Encoder(with_template("qwen2", source), sorted(ROLES), 1 << 20)
    else:
        encoder = encoder_for(template)
    render = Counted(encoder)
    shapes = ShapeSpans(render, ROLES)
    tools, messages = CONVERSATIONS[case]
    shapes.spans(messages, tools, encoder.markers)
    assert render.calls > 3  # the shape's spans: several renderings per reply
    render.calls = 0
    other = reworded({"messages": messages, "tools": tools}, "again")
    got = shapes.spans(other["messages"], tools, encoder.markers)
    assert render.calls == 1
    assert got == trained_spans(encoder.render, other["messages"], tools, ROLES, encoder.markers)


@pytest.mark.parametrize(
    ("builtin", "text"),
    [
        # Qwen3 splits the reasoning out of a reply that holds `</think>`
        ("qwen3", "<think>\nFirst the sum.\n</think>\n\nThe sum is 5."),
        # tojson escapes the quote in a call's argument (qwen2.5)
        ("qwen2.5", 'Quoted "Paris"'),
    ],
)
def test_a_template_that_looks_into_a_text_masks_it_on_its_own(builtin: str, text: str) -> None:
    encoder = encoder_for(builtin)
    render = Counted(encoder)
    shapes = ShapeSpans(render, ROLES)
    tools, messages = CONVERSATIONS["tool-call"]
    shapes.spans(messages, tools, encoder.markers)  # the shape, learned from plain texts
    messages = copy.deepcopy(messages)
    messages[-1]["content"] = text
    messages[2]["tool_calls"][0]["function"]["arguments"] = {"city": text}
    render.calls = 0
    got = shapes.spans(messages, tools, encoder.markers)
    assert render.calls > 1  # not the shape's: masked on its own
    assert got == trained_spans(encoder.render, messages, tools, ROLES, encoder.markers)


@pytest.mark.parametrize("where", ["threads", "processes"])
def test_workers_give_one_process_results_and_statistics(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads for a tokenizer whose backend takes texts directly; worker processes for one
    configured to truncate (so not shared between threads)."""
    rows = [c for c in conversations() for _ in range(3)]
    batches = [rows[i : i + 7] for i in range(0, len(rows), 7)]
    alone, spread = encoder_for("llama-3.1"), encoder_for("llama-3.1")
    if where == "processes":  # a tokenizer of its own: the shared one stays unconfigured
        tokenizer = read_vocabulary(llama_cpp_models(), "qwen2")
        tokenizer.chat_template = builtin_template("llama-3.1")
        spread = Encoder(tokenizer, sorted(ROLES), 1 << 20)
        tokenizer.backend_tokenizer.enable_truncation(1 << 20)  # after its BOS probe resets it
    twins: list[Encoder] = []
    for_thread = Encoder.for_thread

    def counted(encoder: Encoder) -> Encoder:
        twins.append(for_thread(encoder))
        return twins[-1]

    monkeypatch.setattr(Encoder, "for_thread", counted)
    one = [r for batch in encode_batches(alone, iter(batches), 1) for r in batch]
    two = [r for batch in encode_batches(spread, iter(batches), 2) for r in batch]
    assert two == one
    assert spread.stats == alone.stats
    assert alone.stats.samples > 0 and any(isinstance(r, Refused) for r in one)
    assert (len(twins) == len(batches)) == (where == "threads"), len(twins)
    # the ids are transformers' own: its template rendering, its tokenizer's call
    tokenizer = spread.tokenizer
    for row, result in zip(rows, two, strict=True):
        if isinstance(result, Encoded):
            text = tokenizer.apply_chat_template(
                row["messages"], tools=row.get("tools") or None, tokenize=False
            )
            assert result.input_ids == tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(
    ("count", "workers", "sizes"),
    [
        (0, 2, []),
        (40, 2, [40]),  # too few to be worth a second process
        (300, 2, [150, 150]),  # under one batch: still every core
        (1100, 2, [275] * 4),  # three batches' worth: four, even
        (2000, 2, [500] * 4),
        (600, 16, [67] * 8 + [64]),  # more cores than batches of at least 64
    ],
)
def test_prepare_splits_work_so_every_worker_gets_some(
    count: int, workers: int, sizes: list[int]
) -> None:
    batches = split(list(range(count)), workers)
    assert [len(b) for b in batches] == sizes
    assert [i for b in batches for i in b] == list(range(count))
    assert all(len(b) <= 512 for b in batches)
