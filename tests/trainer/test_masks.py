"""Assistant masks against TRL's: TRL ships training variants of the official templates with
`{% generation %}` blocks around what the model generates, and transformers turns those into
`assistant_masks` (`return_assistant_tokens_mask=True`). Wherever a training variant renders the
same text as the official template kubetune uses, kubetune's trained tokens must be exactly the
tokens in TRL's mask — with one deliberate difference: TRL's Qwen 2.5 variant opens its block
before the newline of `<|im_start|>assistant\n`, which is part of the generation prompt (the
model never generates it); kubetune trains no header token, so that newline is left out."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune_trainer.data.formats import convert
from kubetune_trainer.data.tokenize import IGNORE, Encoded, Encoder
from tests.support.families import (
    CONVERSATIONS,
    TRL_TEMPLATES,
    official_input,
    tokenizer_for,
)

TRAINING = {
    "llama-3": "llama3_training.jinja",
    "gemma-2": "gemma_training.jinja",
    "gemma": "gemma3_training.jinja",
    "gemma-3": "gemma3_training.jinja",
    "qwen": "qwen2_5_training.jinja",
    "qwen2.5": "qwen2_5_training.jinja",
    "qwen3": "qwen3_training.jinja",
}
CASES = [(b, c) for b in TRAINING for c in CONVERSATIONS]


def generation_mask(
    tokenizer: Any, template: str, messages: Any, tools: Any
) -> tuple[list[int], list[int]] | None:
    """transformers' tokens and assistant mask for a template with generation blocks, or None
    when the template refuses the conversation."""
    import jinja2

    try:
        out = tokenizer.apply_chat_template(
            messages,
            tools=tools,
            chat_template=template,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
    except jinja2.TemplateError:
        return None
    return list(out["input_ids"]), list(out["assistant_masks"])


def trl_mask(builtin: str, messages: Any, tools: Any) -> tuple[list[int], list[int]] | None:
    """TRL's training variant of the builtin's template, through transformers."""
    template = (TRL_TEMPLATES / TRAINING[builtin]).read_text()
    return generation_mask(tokenizer_for(builtin), template, messages, tools)


def without_header_newline(builtin: str, ids: list[int], mask: list[int]) -> list[int]:
    tokenizer = tokenizer_for(builtin)
    out = list(mask)
    for i in range(1, len(ids)):
        head = tokenizer.decode(ids[max(0, i - 3) : i])
        if mask[i] and not mask[i - 1] and head.endswith("<|im_start|>assistant"):
            assert tokenizer.decode([ids[i]]) == "\n"
            out[i] = 0
    return out


@pytest.mark.parametrize(("builtin", "case"), CASES, ids=[f"{b}-{c[0]}" for b, c in CASES])
def test_assistant_mask_is_trls(builtin: str, case: Any) -> None:
    _, messages, tools = case
    # TRL's Llama 3 / Gemma variants have no tools: they get kubetune's plain turns, which
    # render the same text (test_templates), so the masks are comparable.
    reference = trl_mask(builtin, *official_input(builtin, messages, tools))
    conversation = convert({"messages": messages, "tools": tools}, "messages")
    (encoded,) = Encoder(tokenizer_for(builtin), ["assistant"], 100_000).encode_batch(
        [conversation]
    )
    if reference is None or not isinstance(encoded, Encoded):
        pytest.skip("refused by the template")
    ids, mask = reference
    if builtin in ("qwen", "qwen2.5"):
        mask = without_header_newline(builtin, ids, mask)
    if ids != encoded.input_ids:
        pytest.skip("TRL's training variant renders other text here (Qwen3 keeps all reasoning)")
    assert [int(label != IGNORE) for label in encoded.labels] == mask


# TRL training templates whose `{% generation %}` blocks follow kubetune's rule (from after the
# generation prompt through the end-of-turn marker). The others differ by convention, not by
# accident: their blocks also cover the generation prompt (DeepSeek, gpt-oss, Muse), a
# prefilled `<think>` (Qwen 3.5–3.8, Nemotron), the header's newline (Qwen 2.5), or the next
# turn's header used as a stop token (GLM-4).
SAME_RULE = [
    "cohere_training.jinja",
    "cohere2_training.jinja",
    "gemma_training.jinja",
    "gemma3_training.jinja",
    "lfm2_training.jinja",
    "lfm2_v2_training.jinja",
    "llama3_training.jinja",
    "qwen2_5_vl_training.jinja",
    "qwen3_training.jinja",
    "qwen3_instruct_2507_training.jinja",
    "qwen3_vl_training.jinja",
]


@pytest.mark.parametrize("name", SAME_RULE)
def test_masks_of_templates_kubetune_does_not_ship(name: str) -> None:
    """A template given as `chatTemplate.jinja` is masked by the same rule, whatever its shape:
    each TRL training template, rendered by kubetune, against its own generation blocks."""
    if not (TRL_TEMPLATES / name).exists():  # TRL at its floor (1.12) lacks the later ones
        pytest.skip(f"this TRL ships no {name}")
    tokenizer = tokenizer_for("qwen3")
    template = (TRL_TEMPLATES / name).read_text()
    compared = 0
    for _, messages, tools in CONVERSATIONS:
        reference = generation_mask(tokenizer, template, messages, tools)
        if reference is None:
            continue
        conversation = convert({"messages": messages, "tools": tools}, "messages")
        saved, tokenizer.chat_template = tokenizer.chat_template, template
        try:
            (encoded,) = Encoder(tokenizer, ["assistant"], 100_000).encode_batch([conversation])
        finally:
            tokenizer.chat_template = saved
        assert isinstance(encoded, Encoded) and encoded.input_ids == reference[0]
        assert [int(label != IGNORE) for label in encoded.labels] == reference[1]
        compared += 1
    assert compared >= 4
