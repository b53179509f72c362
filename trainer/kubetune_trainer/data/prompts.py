"""Prompts for `training.objective: grpo`: the messages up to the generation point, plus the
reference fields the rewards read.

    {"prompt": [messages…], "tools"?: [schemas…], "reference": {field: value, …},
     "messages"?: [messages…]}

- `prompts`: a `prompt` column (messages in the `messages` format's shape, or a text, which
  becomes one user turn), optional `tools`, and every other column a reference field, as is.
- any conversation format (`messages`, `sharegpt`, `alpaca`, `xlam`, `glaive`): converted as
  for SFT (`formats.convert`), then cut before its last assistant turn. That turn becomes the
  reference: `reference_tool_calls` (its calls as `{name, arguments}`, what the tool-call
  scorer compares with) and `reference_text` (its text). The whole conversation is kept as
  `messages` for the tool-call scoring of the held-out split after training.

`PromptEncoder` renders each prompt with the chat template, tools included and the generation
prompt added, through the same `Encoder.render` as SFT: the prompt the policy completes is the
text a served model would be given. Pure Python except for the tokenizer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubetune_trainer.data.formats import (
    FormatError,
    _field,
    _optional,
    convert,
    from_messages,
    tools_of,
)
from kubetune_trainer.data.tokenize import Encoder, Refused, Stats, TemplateError
from kubetune_trainer.data.tool_calls import reference_calls

PromptRecord = dict[str, Any]


def from_prompts(record: Mapping[str, Any], fields: Mapping[str, str]) -> PromptRecord:
    """A `prompts` row: its prompt, its tools, and every other column as a reference field."""
    column, tools_column = fields.get("prompt", "prompt"), fields.get("tools", "tools")
    prompt = _field(record, "prompt", fields)
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        keys = {k: v for k, v in fields.items() if k in ("role", "content")}
        messages = list(from_messages({"messages": prompt}, keys)["messages"])
    out: PromptRecord = {"prompt": messages}
    if tools := tools_of(_optional(record, "tools", fields)):
        out["tools"] = tools
    out["reference"] = {k: v for k, v in record.items() if k not in (column, tools_column)}
    return out


def from_conversation(
    record: Mapping[str, Any], fmt: str, fields: Mapping[str, str]
) -> PromptRecord:
    """A conversation cut before its last assistant turn, which becomes the reference."""
    conversation = convert(record, fmt, fields)
    if "messages" not in conversation:
        raise FormatError(f"format {fmt!r} holds no conversation to take a prompt from")
    messages = conversation["messages"]
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise FormatError("no assistant turn: nothing marks the generation point")
    target = messages[last]
    out: PromptRecord = {
        "prompt": messages[:last],
        "reference": {
            "reference_tool_calls": reference_calls(target),
            "reference_text": target.get("content") or "",
        },
        "messages": messages[: last + 1],
    }
    if conversation.get("tools"):
        out["tools"] = conversation["tools"]
    return out


def convert_prompt(
    record: Mapping[str, Any], fmt: str, fields: Mapping[str, str] | None = None
) -> PromptRecord:
    """One record in `fmt` as a prompt with its reference fields; FormatError names what is
    wrong (a prompt that is empty, or ends with the model's own turn)."""
    fields = fields or {}
    try:
        out = (
            from_prompts(record, fields)
            if fmt == "prompts"
            else from_conversation(record, fmt, fields)
        )
    except FormatError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise FormatError(f"record does not fit format {fmt!r}: {err!r}") from err
    if not out["prompt"]:
        raise FormatError("empty prompt: no turn before the generation point")
    if out["prompt"][-1]["role"] == "assistant":
        raise FormatError(
            "prompt ends with an assistant turn: the generation point follows a user or tool turn"
        )
    return out


@dataclass
class EncodedPrompt:
    prompt: str
    """The rendered prompt, generation prompt included (what TRL's GRPOTrainer completes)."""
    prompt_length: int
    """Its tokens."""
    reference: str
    """The reference fields, as JSON (one column whatever each row holds)."""


class PromptEncoder:
    """Renders and measures batches of prompts for one tokenizer: a prompt that leaves fewer
    than `maxCompletionLength` tokens of `maxLength` is refused (skipped and counted)."""

    def __init__(self, tokenizer: Any, max_length: int, max_completion_length: int) -> None:
        self.encoder = Encoder(tokenizer, ["assistant"], max_length)
        self.tokenizer = tokenizer
        self.room = max_length - max_completion_length
        self.stats: Stats = self.encoder.stats

    def encode_batch(self, prompts: list[PromptRecord]) -> list[EncodedPrompt | Refused]:
        out: list[EncodedPrompt | Refused] = []
        for record in prompts:
            try:
                text = self.encoder.render(record["prompt"], record.get("tools"), generation=True)
            except TemplateError as err:
                out.append(Refused(str(err)))
                continue
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) > self.room:
                self.stats.truncated_samples += 1
                out.append(
                    Refused(
                        f"prompt too long: {len(ids)} tokens, over training.maxLength − "
                        f"grpo.maxCompletionLength = {self.room}"
                    )
                )
                continue
            self.stats.samples += 1
            self.stats.tokens += len(ids)
            reference = json.dumps(record["reference"], ensure_ascii=False, default=str)
            out.append(EncodedPrompt(text, len(ids), reference))
        return out
