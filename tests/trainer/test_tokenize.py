"""Labels are masked token by token: only the chosen roles' replies carry loss."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune_trainer.data.formats import convert
from kubetune_trainer.data.templates import BUILTIN_TEMPLATES
from kubetune_trainer.data.tokenize import IGNORE, Encoder, TemplateError

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
END = {
    "chatml": "<|im_end|>\n",
    "qwen": "<|im_end|>\n",
    "llama-3": "<|eot_id|>",
    "gemma": "<end_of_turn>\n",
}


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


@pytest.fixture
def with_template(tokenizer: Any):  # type: ignore[no-untyped-def]
    original = tokenizer.chat_template
    yield lambda name: setattr(tokenizer, "chat_template", BUILTIN_TEMPLATES[name])
    tokenizer.chat_template = original


@pytest.mark.parametrize("template", sorted(BUILTIN_TEMPLATES))
def test_only_assistant_replies_carry_loss(
    tokenizer: Any, with_template: Any, template: str
) -> None:
    with_template(template)
    (encoded,) = Encoder(tokenizer, ["assistant"], 1024).encode_batch([CHAT])
    assert trained_text(tokenizer, encoded) == f"2 plus 3 is 5.{END[template]}8.{END[template]}"
    assert len(encoded.labels) == len(encoded.input_ids)
    # every label is either the token itself or masked
    assert all(
        label in (IGNORE, token)
        for token, label in zip(encoded.input_ids, encoded.labels, strict=True)
    )


def test_roles_to_train_on_are_chosen(tokenizer: Any, with_template: Any) -> None:
    with_template("chatml")
    (encoded,) = Encoder(tokenizer, ["user"], 1024).encode_batch([CHAT])
    text = trained_text(tokenizer, encoded)
    assert "What is 2 plus 3?" in text and "And 4 plus 4?" in text
    assert "2 plus 3 is 5." not in text and "Be short." not in text


def test_tool_calls_are_trained_and_tool_results_are_not(
    tokenizer: Any, with_template: Any
) -> None:
    with_template("chatml")
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
            ]
        },
        "messages",
    )
    (encoded,) = Encoder(tokenizer, ["assistant"], 1024).encode_batch([conversation])
    text = trained_text(tokenizer, encoded)
    assert '<tool_call>{"name": "w", "arguments": {"c": "Oslo"}}</tool_call>' in text
    assert "cold" not in text and "Cold." in text


def test_text_format_trains_on_everything(tokenizer: Any) -> None:
    (encoded,) = Encoder(tokenizer, ["assistant"], 1024).encode_batch([{"text": "the sky is blue"}])
    assert encoded.labels == encoded.input_ids
    assert encoded.input_ids[-1] == tokenizer.eos_token_id


def test_truncation_is_counted_and_empty_samples_dropped(
    tokenizer: Any, with_template: Any
) -> None:
    with_template("chatml")
    encoder = Encoder(tokenizer, ["assistant"], 24)
    long_user = convert(
        {
            "messages": [
                {"role": "user", "content": "word " * 200},
                {"role": "assistant", "content": "ok"},
            ]
        },
        "messages",
    )
    encoded = encoder.encode_batch([CHAT, long_user])
    assert len(encoded) == 1 and len(encoded[0].input_ids) == 24
    assert encoder.stats.truncated_samples == 2
    assert encoder.stats.dropped_no_labels == 1
    assert encoder.stats.truncated_tokens > 200


def test_non_prefix_stable_template_is_refused(tokenizer: Any) -> None:
    original = tokenizer.chat_template
    # Shows only the last user turn (like templates that drop earlier reasoning): not stable.
    tokenizer.chat_template = "{{ messages[-1].content }}{% if add_generation_prompt %}>{% endif %}"
    try:
        with pytest.raises(TemplateError, match="prefix-stable"):
            Encoder(tokenizer, ["assistant"], 1024).encode_batch([CHAT])
    finally:
        tokenizer.chat_template = original
