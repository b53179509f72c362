"""Preference records (a prompt, a preferred and a rejected completion) in one shape:

    {"prompt": [messages…], "chosen": [assistant messages…], "rejected": [assistant messages…],
     "tools"?: [schemas…]}

or, for plain-text pairs (no chat template), {"prompt": str, "chosen": str, "rejected": str}.
Messages are transformers' conversation shape, exactly as `formats.py` makes them for SFT.

Layouts:
- `preference`: TRL's preference layouts. `prompt`/`chosen`/`rejected` as text or as
  conversations; without `prompt`, the prompt is implicit: the shared start of `chosen` and
  `rejected`, split as TRL's `extract_prompt` splits it. UltraFeedback-binarized rows (a `prompt`
  text and `chosen`/`rejected` conversations that repeat it) take their prompt from the
  conversations.
- `hh-rlhf`: Anthropic HH full texts `"\\n\\nHuman: …\\n\\nAssistant: …"`, split into turns the
  way TRL's `examples/datasets/hh-rlhf-helpful-base.py` does: the shared start up to the last
  `Assistant:` before the two diverge is the prompt, the rest is each completion.
- `sharegpt-preference`: LLaMA-Factory's ShareGPT pairs: `conversations` (the prompt, optional
  `system` and `tools` columns) plus one `chosen` and one `rejected` turn of `{from, value}`.

Pairs that teach nothing are refused with a FormatError (skipped and counted by `prepare`):
a missing side, an empty completion, identical completions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from kubetune_trainer.data.formats import (
    SHAREGPT_ROLES,
    Conversation,
    FormatError,
    Message,
    _optional,
    from_messages,
    from_sharegpt,
    text_of,
    tool_calls,
    tools_of,
)

Pair = dict[str, Any]


def _side(record: Mapping[str, Any], name: str, fields: Mapping[str, str]) -> Any:
    """A required column; JSON rows without it come back as None once `datasets` unifies the
    columns of a file, so None counts as missing too."""
    column = fields.get(name, name)
    value = record.get(column)
    if value is None:
        raise FormatError(
            f"missing {name}: no {column!r} in the record (map another column with "
            f"fields: {{{name}: <column>}})"
        )
    return value


def _messages(value: Any, fields: Mapping[str, str]) -> list[Message]:
    """A conversation column (OpenAI-style messages) through the SFT `messages` converter."""
    keys = {k: v for k, v in fields.items() if k in ("role", "content")}
    return list(from_messages({"messages": value}, keys)["messages"])


def _is_conversation(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, Mapping) and "role" in m for m in value)


def from_preference(record: Mapping[str, Any], fields: Mapping[str, str]) -> Pair:
    chosen, rejected = _side(record, "chosen", fields), _side(record, "rejected", fields)
    prompt = _optional(record, "prompt", fields)
    pair: Pair
    if _is_conversation(chosen) and _is_conversation(rejected):
        chosen, rejected = _messages(chosen, fields), _messages(rejected, fields)
        if _is_conversation(prompt):
            pair = {"prompt": _messages(prompt, fields), "chosen": chosen, "rejected": rejected}
        elif chosen and chosen[0]["role"] != "assistant":
            # implicit prompt (UltraFeedback-binarized repeats it in both conversations)
            pair = _split_implicit(chosen, rejected)
            if (
                isinstance(prompt, str)
                and prompt
                and not any(m["role"] == "user" and m["content"] == prompt for m in pair["prompt"])
            ):
                raise FormatError(
                    "prompt differs from the conversations' prompt: drop the prompt column "
                    "(fields: {prompt: <unused>}) or fix the row"
                )
        elif isinstance(prompt, str):
            user = [{"role": "user", "content": prompt}]
            pair = {"prompt": user, "chosen": chosen, "rejected": rejected}
        else:
            raise FormatError(
                "missing column 'prompt' (chosen starts with the reply, so the prompt is not in it)"
            )
    elif isinstance(chosen, str) and isinstance(rejected, str):
        if prompt is None:
            pair = _split_implicit(chosen, rejected)
        elif isinstance(prompt, str):
            pair = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
        else:
            raise FormatError("prompt: expected text when chosen and rejected are text")
    else:
        raise FormatError(
            "chosen and rejected must both be text or both be conversations "
            f"(got {type(chosen).__name__} and {type(rejected).__name__})"
        )
    if tools := tools_of(_optional(record, "tools", fields)):
        pair["tools"] = tools
    return pair


def _split_implicit(chosen: Any, rejected: Any) -> Pair:
    """The shared start of two conversations (or texts) is the prompt, as TRL's
    `extract_prompt` splits them: a text's space before the split goes with the completions.
    (Unlike `extract_prompt`, a side that is all prompt keeps an empty completion, refused
    later, instead of being split one item early.)"""
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    if isinstance(chosen, str) and n and chosen[n - 1] == " ":
        n -= 1
    return {"prompt": chosen[:n], "chosen": chosen[n:], "rejected": rejected[n:]}


_HH_ASSISTANT, _HH_TURN = "\n\nAssistant:", re.compile(r"\n\n(Human|Assistant):")


def from_hh(record: Mapping[str, Any], fields: Mapping[str, str]) -> Pair:
    chosen, rejected = _side(record, "chosen", fields), _side(record, "rejected", fields)
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise FormatError("chosen and rejected must be the full Human/Assistant texts")
    common = 0
    while common < min(len(chosen), len(rejected)) and chosen[common] == rejected[common]:
        common += 1
    cut = chosen.rfind(_HH_ASSISTANT, 0, common)
    if cut < 0:
        raise FormatError("no '\\n\\nAssistant:' turn before chosen and rejected diverge")
    start = cut + len(_HH_ASSISTANT)
    prompt = _hh_turns(chosen[:cut])
    if not prompt or prompt[-1]["role"] != "user":
        raise FormatError("the prompt must end with a '\\n\\nHuman:' turn")
    completions = []
    for side, text in (("chosen", chosen), ("rejected", rejected)):
        reply = text[start:]
        if _HH_TURN.search(reply):
            raise FormatError(f"{side}: the completion holds more turns after the divergence")
        completions.append([{"role": "assistant", "content": _after_marker(reply)}])
    return {"prompt": prompt, "chosen": completions[0], "rejected": completions[1]}


def _hh_turns(text: str) -> list[Message]:
    parts = _HH_TURN.split(text)
    if parts[0].strip():
        raise FormatError("text before the first '\\n\\nHuman:' turn")
    roles = {"Human": "user", "Assistant": "assistant"}
    return [
        {"role": roles[speaker], "content": _after_marker(content)}
        for speaker, content in zip(parts[1::2], parts[2::2], strict=True)
    ]


def _after_marker(text: str) -> str:
    """A turn's text without the one space that follows `Human:`/`Assistant:`."""
    return text[1:] if text.startswith(" ") else text


def _sharegpt_turn(turn: Any, side: str, fields: Mapping[str, str]) -> list[Message]:
    if not isinstance(turn, Mapping):
        raise FormatError(f"{side}: expected one {{from, value}} turn, got {type(turn).__name__}")
    speaker = turn.get(fields.get("from", "from"))
    value = turn.get(fields.get("value", "value"), "")
    if speaker == "function_call":
        return [{"role": "assistant", "content": "", "tool_calls": tool_calls(value, side)}]
    if not isinstance(speaker, str) or SHAREGPT_ROLES.get(speaker) != "assistant":
        raise FormatError(f"{side}: the completion must be a model turn, got speaker {speaker!r}")
    return [{"role": "assistant", "content": text_of(value, side)}]


def from_sharegpt_preference(record: Mapping[str, Any], fields: Mapping[str, str]) -> Pair:
    prompt: Conversation = from_sharegpt(record, fields)
    pair: Pair = {
        "prompt": prompt["messages"],
        "chosen": _sharegpt_turn(_side(record, "chosen", fields), "chosen", fields),
        "rejected": _sharegpt_turn(_side(record, "rejected", fields), "rejected", fields),
    }
    if "tools" in prompt:
        pair["tools"] = prompt["tools"]
    return pair


PAIR_CONVERTERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], Pair]] = {
    "preference": from_preference,
    "hh-rlhf": from_hh,
    "sharegpt-preference": from_sharegpt_preference,
}


def _completion_text(side: Any) -> str:
    if isinstance(side, str):
        return side.strip()
    return "".join(
        str(m.get("content") or "") + str(m.get("tool_calls") or "") for m in side
    ).strip()


def convert_pair(
    record: Mapping[str, Any], fmt: str, fields: Mapping[str, str] | None = None
) -> Pair:
    """One preference record in `fmt`, as a pair; FormatError names what is wrong."""
    try:
        pair = PAIR_CONVERTERS[fmt](record, fields or {})
    except FormatError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise FormatError(f"record does not fit format {fmt!r}: {err!r}") from err
    for side in ("chosen", "rejected"):
        if not _completion_text(pair[side]):
            raise FormatError(f"empty completion: {side} has no text after the prompt")
        if isinstance(pair[side], list) and any(m["role"] != "assistant" for m in pair[side]):
            raise FormatError(
                f"completion not from the model: {side} holds a "
                f"{next(m['role'] for m in pair[side] if m['role'] != 'assistant')} turn"
            )
    if pair["chosen"] == pair["rejected"]:
        raise FormatError("identical completions: chosen and rejected are the same")
    if isinstance(pair["prompt"], list) and not pair["prompt"]:
        raise FormatError("empty prompt: chosen and rejected share no turn before the reply")
    return pair
