"""Every chat template in llama.cpp's `models/templates/` (official templates of ~70 model
families), used as an inline `chatTemplate.jinja`, on conversations with a system prompt and
several turns, a tool call and its result, parallel calls, and reasoning: each is masked exactly
as the reference says, or refused with the template's own message.

The reference (`tests/support/completions.py`) is TRL's prompt–completion split, rendered by
transformers: the model's turn starts where the prompt with the generation prompt and the
conversation through that turn part, and ends where the latter ends. Independently of it, the
messages' own texts are found by search: assistant text, reasoning and call names must be
trained; system, user and tool text and tool descriptions never.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubetune_trainer.data.tokenize import Encoder, TemplateError
from tests.support.completions import completion_turns, message_texts, tool_definition_texts
from tests.support.conversations import CONVERSATIONS
from tests.support.vocabularies import llama_cpp_models, with_template

TEMPLATES = sorted(p.stem for p in (llama_cpp_models() / "templates").glob("*.jinja"))

# Conversations a template refuses, with what its message says (the template's own words).
REFUSED: dict[tuple[str, str], str] = {
    **{
        ("CohereForAI-c4ai-command-r-plus-tool_use", c): "not iterable"
        for c in ("multi-turn", "reasoning")
    },
    **{
        ("CohereForAI-c4ai-command-r-plus-tool_use", c): "no attribute 'description'"
        for c in ("tool-call", "parallel-calls")
    },
    **{
        (f"NousResearch-Hermes-{v}-tool_use", c): "not iterable"
        for v in ("2-Pro-Llama-3-8B", "3-Llama-3.1-8B")
        for c in ("multi-turn", "reasoning")
    },
    **{
        ("fireworks-ai-llama-3-firefunction-v2", c): "'functions' is undefined"
        for c in CONVERSATIONS
    },
    ("google-gemma-2-2b-it", "multi-turn"): "System role not supported",
    ("google-gemma-2-2b-it", "tool-call"): "System role not supported",
    ("google-gemma-2-2b-it", "parallel-calls"): "roles must alternate",
    **{
        (k, c): "access to attribute 'append' of 'list' object is unsafe"
        for k in ("Kimi-K2-Instruct", "Kimi-K2-Thinking")
        for c in ("tool-call", "parallel-calls")
    },
    **{
        ("llama-cpp-deepseek-r1", c): "not JSON serializable"
        for c in ("tool-call", "parallel-calls")
    },
    **{
        ("meetkai-functionary-medium-v3.2", c): "can only concatenate str"
        for c in ("tool-call", "parallel-calls")
    },
    **{
        (f"meta-llama-Llama-{v}", "parallel-calls"): "only supports single tool-calls"
        for v in ("3.1-8B-Instruct", "3.2-3B-Instruct", "3.3-70B-Instruct")
    },
}

# Where kubetune's mask deliberately differs from the reference: the text the reference trains
# and kubetune does not. DeepSeek-R1-Distill's template writes an empty `<｜Assistant｜>` turn
# after a call's end-of-sentence; the model stops at that end-of-sentence, so kubetune does too.
NOT_TRAINED: dict[tuple[str, str], str] = {
    ("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", c): "<｜Assistant｜><｜end▁of▁sentence｜>"
    for c in ("tool-call", "parallel-calls")
}

# Templates that leave tool calls out of the text (they expect calls written into the content, or
# render one call of several): nothing of the missing calls can be trained, and nothing is.
DROPS_CALLS: dict[tuple[str, str], str] = {
    **{
        (t, c): "renders no tool_calls"
        for t in ("LFM2-8B-A1B", "LFM2.5-Instruct", "ibm-granite-granite-3.3-2B-Instruct")
        for c in ("tool-call", "parallel-calls")
    },
    **{
        (t, "parallel-calls"): "renders the first of parallel calls only"
        for t in ("GigaChat3-10B-A1.8B", "GigaChat3.1-10B-A1.8B", "openai-gpt-oss-120b")
    },
}

CASES = [(t, c) for t in TEMPLATES for c in CONVERSATIONS]


@pytest.fixture(scope="module")
def encoders() -> dict[str, Encoder]:
    return {}


def chars(spans: Any) -> set[int]:
    return {i for start, end in spans for i in range(start, end)}


@pytest.mark.parametrize(("template", "case"), CASES, ids=[f"{t}-{c}" for t, c in CASES])
def test_template_masks_exactly_or_refuses(
    template: str, case: str, encoders: dict[str, Encoder]
) -> None:
    if template not in encoders:
        source = (llama_cpp_models() / "templates" / f"{template}.jinja").read_text()
        encoders[template] = Encoder(with_template("llama-bpe", source), ["assistant"], 1 << 20)
    encoder = encoders[template]
    tools, messages = CONVERSATIONS[case]
    conversation = {"messages": messages, "tools": tools}
    if (template, case) in REFUSED:
        with pytest.raises(TemplateError, match=REFUSED[template, case]):
            encoder.text_and_spans(conversation)
        return
    text, spans = encoder.text_and_spans(conversation)
    trained = chars(spans)
    turns = completion_turns(encoder.render, messages, tools)
    exact = chars((t.start, t.end) for t in turns if t.exact)

    missing = "".join(text[i] for i in sorted(exact - trained))
    assert missing == NOT_TRAINED.get((template, case), ""), f"not trained: {missing!r}"

    # outside the exact turns, only an inexact turn's stretch (between the messages around it,
    # found by their text) may be trained
    located = locate(text, messages)
    allowed = set(exact)
    for turn in turns:
        if not turn.exact:
            before = max((e for k, (_, e) in located.items() if k < turn.index), default=0)
            after = min((s for k, (s, _) in located.items() if k > turn.index), default=len(text))
            allowed |= set(range(before, after))
    extra = "".join(text[i] for i in sorted(trained - allowed))
    assert not extra, f"trained outside the model's turns: {extra!r}"

    for i, message in enumerate(messages):
        for piece in message_texts(message):
            at = [k for k in range(len(text)) if text.startswith(piece, k)]
            if message["role"] == "assistant" and (template, case) in DROPS_CALLS:
                continue
            if message["role"] == "assistant":
                if i == max(t.index for t in turns) and piece == message["content"]:
                    assert at, f"the last reply {piece!r} is not rendered"
                # a call's name may also head its result (Gemma 4): one place must be trained
                assert not at or any(set(range(k, k + len(piece))) <= trained for k in at), piece
            else:
                assert not any(set(range(k, k + len(piece))) & trained for k in at), piece
    for piece in tool_definition_texts(tools):
        start = text.find(piece)
        assert start < 0 or not set(range(start, start + len(piece))) & trained, piece


def locate(text: str, messages: list[dict[str, Any]]) -> dict[int, tuple[int, int]]:
    """Where each non-assistant message's content is, searched in order."""
    out, cursor = {}, 0
    for i, message in enumerate(messages):
        content = message.get("content")
        if message["role"] == "assistant" or not content:
            continue
        at = text.find(content, cursor)
        if at >= 0:
            out[i] = (at, at + len(content))
            cursor = at + len(content)
    return out
