"""Labels are masked token by token: only the chosen roles' text and end-of-turn markers carry
loss, never a header, with any template — prefix-stable or not."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune_trainer.data.formats import convert
from kubetune_trainer.data.templates import BUILTIN_NAMES
from kubetune_trainer.data.tokenize import (
    IGNORE,
    Encoded,
    Encoder,
    Refused,
    labels_by_span,
    tokenized_with_labels,
)
from tests.support.families import tokenizer_for
from tests.support.vocabularies import FAITHFUL, UNFAITHFUL, reference_cases, vocabulary

CHAT = convert(
    {
        "messages": [
            {"role": "system", "content": "Be short."},
            {"role": "user", "content": "What is 2 plus 3?"},
            {"role": "assistant", "content": "2 plus 3 is 5."},
            {"role": "user", "content": "And 4 plus 4?"},
            {"role": "assistant", "content": "8."},
        ]
    },
    "messages",
)
NO_SYSTEM = {"messages": CHAT["messages"][1:]}
END = {"chatml": "<|im_end|>\n", "llama": "<|eot_id|>", "gemma": "<end_of_turn>\n"}
HEADERS = ["<|im_start|>", "<|start_header_id|>", "<start_of_turn>", "<|end_header_id|>"]


def end_of(builtin: str) -> str:
    return END["llama" if "llama" in builtin else "gemma" if "gemma" in builtin else "chatml"]


def trained_text(tokenizer: Any, encoded: Any) -> str:
    return str(
        tokenizer.decode(
            [
                t
                for t, label in zip(encoded.input_ids, encoded.labels, strict=True)
                if label != IGNORE
            ]
        )
    )


def encode(builtin: str, roles: list[str], conversation: dict[str, Any]) -> Encoded:
    (encoded,) = Encoder(tokenizer_for(builtin), roles, 4096).encode_batch([conversation])
    assert isinstance(encoded, Encoded), encoded
    return encoded


@pytest.mark.parametrize("builtin", BUILTIN_NAMES)
def test_only_assistant_replies_carry_loss(builtin: str) -> None:
    chat = NO_SYSTEM if builtin == "gemma-2" else CHAT
    encoded = encode(builtin, ["assistant"], chat)
    end = end_of(builtin)
    # Qwen3 opens the final reply with an empty reasoning block: the model generates it too
    think = "<think>\n\n</think>\n\n" if builtin == "qwen3" else ""
    assert trained_text(tokenizer_for(builtin), encoded) == f"2 plus 3 is 5.{end}{think}8.{end}"
    assert all(
        label in (IGNORE, token)
        for token, label in zip(encoded.input_ids, encoded.labels, strict=True)
    )


@pytest.mark.parametrize("builtin", BUILTIN_NAMES)
def test_other_roles_train_their_text_never_their_headers(builtin: str) -> None:
    chat = NO_SYSTEM if builtin == "gemma-2" else CHAT
    roles = ["user"] if builtin == "gemma-2" else ["user", "system"]
    text = trained_text(tokenizer_for(builtin), encode(builtin, roles, chat))
    assert "What is 2 plus 3?" in text and "And 4 plus 4?" in text
    assert "2 plus 3 is 5." not in text
    assert not any(h in text for h in HEADERS), text
    assert ("Be short." in text) == ("system" in roles)


def test_tool_calls_are_trained_and_tool_results_and_definitions_are_not() -> None:
    conversation = convert(
        {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"name": "w", "arguments": {"c": "Oslo"}}],
                },
                {"role": "tool", "content": "cold"},
                {"role": "assistant", "content": "Cold."},
            ],
            "tools": [{"name": "w", "description": "weather", "parameters": {}}],
        },
        "messages",
    )
    tokenizer = tokenizer_for("qwen")
    text = trained_text(tokenizer, encode("qwen", ["assistant"], conversation))
    assert text == (
        '<tool_call>\n{"name": "w", "arguments": {"c": "Oslo"}}\n</tool_call><|im_end|>\n'
        "Cold.<|im_end|>\n"
    )
    # trained as `tool`, a result is its text only: not the user turn it sits in, not its tags
    text = trained_text(tokenizer, encode("qwen", ["tool"], conversation))
    assert text == "cold"


def test_qwen3_masks_a_conversation_that_is_not_prefix_stable() -> None:
    """Qwen3 drops the reasoning of turns before the last user message: rendering the first
    turns is not a prefix of rendering them all. Masking does not depend on that."""
    conversation = convert(
        {
            "messages": [
                {"role": "user", "content": "What is 2 plus 3?"},
                {"role": "assistant", "content": "5.", "reasoning_content": "two and three"},
                {"role": "user", "content": "And 4 plus 4?"},
                {"role": "assistant", "content": "8.", "reasoning_content": "four and four"},
            ]
        },
        "messages",
    )
    tokenizer = tokenizer_for("qwen3")
    first = tokenizer.apply_chat_template(conversation["messages"][:2], tokenize=False)
    full = tokenizer.apply_chat_template(conversation["messages"], tokenize=False)
    assert not full.startswith(first)  # the reasoning of turn one is gone from the full text
    text = trained_text(tokenizer, encode("qwen3", ["assistant"], conversation))
    assert text == "5.<|im_end|>\n<think>\nfour and four\n</think>\n\n8.<|im_end|>\n"


def test_text_rows_get_bos_where_the_tokenizer_adds_one() -> None:
    for builtin, bos in (("llama-3", True), ("gemma", True), ("qwen", False), ("chatml", False)):
        tokenizer = tokenizer_for(builtin)
        encoded = encode(builtin, ["assistant"], {"text": "the sky is blue"})
        assert encoded.labels == encoded.input_ids
        assert (encoded.input_ids[0] == tokenizer.bos_token_id) == bos
        assert encoded.input_ids[-1] == tokenizer.eos_token_id


def test_a_conversation_the_template_refuses_comes_back_refused() -> None:
    encoder = Encoder(tokenizer_for("gemma-2"), ["assistant"], 4096)
    (refused,) = encoder.encode_batch([CHAT])
    assert isinstance(refused, Refused) and "System role not supported" in refused.reason


def test_truncation_is_counted_and_empty_samples_dropped() -> None:
    encoder = Encoder(tokenizer_for("chatml"), ["assistant"], 24)
    long_user = convert(
        {
            "messages": [
                {"role": "user", "content": "word " * 200},
                {"role": "assistant", "content": "ok"},
            ]
        },
        "messages",
    )
    first, dropped = encoder.encode_batch([CHAT, long_user])
    assert isinstance(first, Encoded) and len(first.input_ids) == 24 and dropped is None
    assert encoder.stats.truncated_samples == 2
    assert encoder.stats.dropped_no_labels == 1
    assert encoder.stats.truncated_tokens > 200


@pytest.mark.parametrize("name", [*FAITHFUL, *sorted(UNFAITHFUL)])
def test_span_labels_are_every_token_touching_a_span_in_real_vocabularies(name: str) -> None:
    """The backend's span lookup (`char_to_token`) against every token's offsets from the
    tokenizer's own call, token by token: llama.cpp's reference inputs (emoji, CJK, runs of
    spaces and newlines; byte fallback in llama-spm) cut into spans at every seventh character,
    one to five characters long, and one span over each whole text."""
    tokenizer = vocabulary(name)
    texts = [text for text, _ in reference_cases(name) if text]
    spans = [[(i, min(i + 1 + i % 5, len(t))) for i in range(0, len(t), 7)] for t in texts]
    texts, spans = texts + texts, spans + [[(0, len(t))] for t in texts]
    got = tokenized_with_labels(tokenizer, texts, spans)
    backend = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    by_span = 0
    for text, text_spans, (ids, labels), encoding in zip(texts, spans, got, backend, strict=True):
        reference = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        assert ids == reference["input_ids"], text
        want = [  # a token of no characters counts as its first
            token if any(a < end and first < b for a, b in text_spans) else IGNORE
            for token, (first, after) in zip(ids, reference["offset_mapping"], strict=True)
            for end in [max(after, first + 1)]
        ]
        assert labels == want, (name, text, text_spans)
        by_span += labels_by_span(encoding, ids, text_spans) is not None
    assert by_span >= 0.9 * len(texts), f"{name}: {by_span} of {len(texts)} by span"
