"""Built-in templates against their references: the vendored files are the official templates
byte for byte, and what kubetune renders (record → format conversion → Encoder) is byte-identical
to transformers' `apply_chat_template(…, chat_template=<official text>)` for every family and
conversation. For the families without tool syntax, conversations with tools equal the official
template applied to the documented convention (`families.plain_turns`), and `chatml` equals the
official Qwen 2.5 template whenever there is a system message."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from kubetune_trainer.data.formats import convert
from kubetune_trainer.data.templates import BUILTIN_NAMES, FAMILIES, builtin_template, official
from kubetune_trainer.data.tokenize import Encoder, Refused
from tests.support.families import (
    CONVERSATIONS,
    TRL_TEMPLATES,
    WITH_KUBETUNE_TOOLS,
    official_input,
    official_template,
    tokenizer_for,
)

# SHA-256 of each vendored template (see chat_templates/SOURCES.md): a change must be deliberate.
PINNED = {
    "llama3.jinja": "ba03a121d097859c7b5b9cd03af99aafe95275210d2876f642ad9929a150f122",
    "llama3_1.jinja": "e10ca381b1ccc5cf9db52e371f3b6651576caee0a630b452e2816b2d404d4b65",
    "gemma2.jinja": "ecd6ae513fe103f0eb62e8ab5bfa8d0fe45c1074fa398b089c93a7e70c15cfd6",
    "gemma3.jinja": "7de1c58e208eda46e9c7f86397df37ec49883aeece39fb961e0a6b24088dd3c4",
    "qwen2_5.jinja": "cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f",
    "qwen3.jinja": "a55ee1b1660128b7098723e0abcd92caa0788061051c62d51cbe87d9cf1974d8",
}
TRL_NAME = {"gemma2.jinja": "gemma.jinja"}


@pytest.mark.parametrize("filename", sorted(PINNED))
def test_vendored_templates_are_the_official_ones(filename: str) -> None:
    text = official(filename)
    assert hashlib.sha256(text.encode()).hexdigest() == PINNED[filename]
    # TRL keeps the Hub's templates byte for byte (and checks them against the Hub weekly)
    assert text == (TRL_TEMPLATES / TRL_NAME.get(filename, filename)).read_text()


def kubetune_text(builtin: str, messages: list[dict[str, Any]], tools: Any) -> str | Refused:
    """What kubetune trains on: the record converted by the `messages` format, then encoded."""
    conversation = convert({"messages": messages, "tools": tools}, "messages")
    encoder = Encoder(tokenizer_for(builtin), ["assistant"], 100_000)
    (result,) = encoder.encode_batch([conversation])
    if isinstance(result, Refused):
        return result
    return encoder.text_and_spans(conversation)[0]


def reference(template: str, builtin: str, messages: Any, tools: Any) -> str | None:
    """transformers' own rendering with the official template; None when the template refuses."""
    import jinja2

    try:
        text: str = tokenizer_for(builtin).apply_chat_template(
            messages, tools=tools, tokenize=False, chat_template=template
        )
    except jinja2.TemplateError:
        return None
    return text


CASES = [(b, c) for b in BUILTIN_NAMES for c in CONVERSATIONS]


@pytest.mark.parametrize(("builtin", "case"), CASES, ids=[f"{b}-{c[0]}" for b, c in CASES])
def test_kubetune_renders_what_the_official_template_renders(builtin: str, case: Any) -> None:
    _, messages, tools = case
    expected = reference(
        official_template(builtin), builtin, *official_input(builtin, messages, tools)
    )
    ours = kubetune_text(builtin, messages, tools)
    if expected is None:  # the official template refuses it: so does kubetune, saying why
        assert isinstance(ours, Refused), ours
    else:
        assert ours == expected


@pytest.mark.parametrize("case", [c for c in CONVERSATIONS if c[2]], ids=lambda c: c[0])
def test_chatml_tools_are_qwen_2_5_tools(case: Any) -> None:
    """kubetune's tool convention is Qwen 2.5's: with a system message (Qwen adds its default
    prompt otherwise) chatml renders exactly what the official Qwen 2.5 template does."""
    _, messages, tools = case
    if messages[0]["role"] != "system":
        messages = [{"role": "system", "content": "You are a helpful assistant."}, *messages]
    expected = reference(official("qwen2_5.jinja"), "qwen", messages, tools)
    assert kubetune_text("chatml", messages, tools) == expected


def test_tool_free_conversations_are_untouched_by_the_tool_rendering() -> None:
    for builtin in WITH_KUBETUNE_TOOLS:
        assert builtin_template(builtin).endswith(official_template(builtin))


def test_gemma_is_gemma_2_plus_a_folded_system_prompt() -> None:
    """`gemma` (Gemma 3's template) renders what Gemma 2's does wherever Gemma 2 accepts the
    conversation, and folds a system prompt into the first user turn where Gemma 2 refuses."""
    for _, messages, tools in CONVERSATIONS:
        gemma2 = reference(official("gemma2.jinja"), "gemma", messages, None)
        if gemma2 is not None and not tools:
            assert reference(official("gemma3.jinja"), "gemma", messages, None) == gemma2
    assert FAMILIES["gemma"] == FAMILIES["gemma-3"]
    folded = kubetune_text("gemma", CONVERSATIONS[1][1], None)
    assert isinstance(folded, str) and "<start_of_turn>user\nBe short.\n\nWhat is" in folded
    assert "<start_of_turn>system" not in folded


def test_templates_that_refuse_say_why() -> None:
    system_first = CONVERSATIONS[1][1]
    refused = kubetune_text("gemma-2", system_first, None)
    assert isinstance(refused, Refused) and "System role not supported" in refused.reason
    parallel = next(c for c in CONVERSATIONS if c[0] == "parallel-calls-and-results")
    refused = kubetune_text("llama-3.1", parallel[1], parallel[2])
    assert isinstance(refused, Refused) and "only supports single tool-calls" in refused.reason


@pytest.mark.parametrize("case", CONVERSATIONS, ids=lambda c: c[0])
def test_chatml_is_qwen3_instruct_2507(case: Any) -> None:
    """Seed 2 trains Qwen/Qwen3-4B-Instruct-2507 with `chatml`: for every conversation, tools
    included, that renders exactly what the model's own template (TRL's byte-identical copy of
    it, `qwen3_instruct_2507.jinja`) renders."""
    _, messages, tools = case
    template = (TRL_TEMPLATES / "qwen3_instruct_2507.jinja").read_text()
    assert kubetune_text("chatml", messages, tools) == reference(template, "qwen", messages, tools)
