"""Uploaded fine-tuning files, checked line by line against the layouts kubetune trains on.

A file holds one kind of example throughout:
- `supervised`: OpenAI's chat format, `{"messages": [...], "tools"?: [...]}`; it is kubetune's
  `messages` format as it is, so the training copy is the upload itself.
- `preference`: OpenAI's DPO format, `{"input": {"messages": [...], "tools"?: [...]},
  "preferred_output": [...], "non_preferred_output": [...]}`, or TRL's
  `{"prompt", "chosen", "rejected"}` (kubetune's `preference` format). OpenAI's lines are
  rewritten into TRL's for the training copy; the upload is kept as it came for `/content`.
- `reinforcement`: OpenAI's reinforcement format, `{"messages": [...], "tools"?: [...],
  <reference fields>…}` whose messages end before any assistant reply (the prompt); its other
  fields (e.g. `reference_answer`) are what the graders read as `{{item.<field>}}`. The training
  copy is kubetune's `prompts` format, `{"prompt": [...], "tools"?: [...], <fields>…}`.

OpenAI's `developer` role becomes `system` in the training copy: OpenAI's API reference says
that "with o1 models and newer, `developer` messages replace the previous `system` messages",
and its reinforcement examples write their instructions as `developer` messages.

Each line goes through the trainer's own converters (`kubetune_trainer.data.formats` and
`.preference`, pure Python), so a line accepted here is a line `prepare` reads; the first bad
line is named with what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from kubetune.openai_api.errors import ApiError, invalid
from kubetune_trainer.data.formats import FormatError, convert
from kubetune_trainer.data.preference import convert_pair
from kubetune_trainer.data.prompts import from_prompts

Kind = Literal["supervised", "preference", "reinforcement"]
OPENAI_PREFERENCE_KEYS = ("input", "preferred_output", "non_preferred_output")


@dataclass(frozen=True)
class CheckedFile:
    kind: Kind
    examples: int
    training: bytes
    """What the FineTuneJob reads: JSONL in kubetune's `messages` or `preference` format."""


def kind_of(record: dict[str, Any]) -> Kind:
    if "messages" in record:
        messages = record["messages"] if isinstance(record["messages"], list) else []
        replies = any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)
        return "supervised" if replies or not messages else "reinforcement"
    if any(key in record for key in (*OPENAI_PREFERENCE_KEYS, "chosen", "rejected")):
        return "preference"
    raise FormatError(
        "neither a chat example (a `messages` list) nor a preference pair (`input`, "
        "`preferred_output`, `non_preferred_output`)"
    )


def trl_pair(record: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's DPO line as TRL's preference record (TRL's layout passes through)."""
    if not any(key in record for key in OPENAI_PREFERENCE_KEYS):
        return record
    missing = [key for key in OPENAI_PREFERENCE_KEYS if key not in record]
    if missing:
        raise FormatError(f"missing {', '.join(missing)} (OpenAI's preference format)")
    prompt = record["input"]
    if not isinstance(prompt, dict) or not isinstance(prompt.get("messages"), list):
        raise FormatError("input: expected an object with a `messages` list")
    pair: dict[str, Any] = {
        "prompt": prompt["messages"],
        "chosen": record["preferred_output"],
        "rejected": record["non_preferred_output"],
    }
    if prompt.get("tools"):
        pair["tools"] = prompt["tools"]
    return pair


def developer_as_system(record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The record with each `developer` message of its prompt as `system` (the chat's
    `messages`, or a DPO line's `input.messages`); and whether any was."""
    found = False

    def renamed(messages: Any) -> Any:
        nonlocal found
        if not isinstance(messages, list):
            return messages
        out = []
        for m in messages:
            if isinstance(m, dict) and m.get("role") == "developer":
                found = True
                m = {**m, "role": "system"}
            out.append(m)
        return out

    copy = dict(record)
    if "messages" in copy:
        copy["messages"] = renamed(copy["messages"])
    if isinstance(copy.get("input"), dict) and "messages" in copy["input"]:
        copy["input"] = {**copy["input"], "messages": renamed(copy["input"]["messages"])}
    return (copy, True) if found else (record, False)


def _check_supervised(record: dict[str, Any]) -> None:
    conversation = convert(record, "messages")
    if not any(m["role"] == "assistant" for m in conversation["messages"]):
        raise FormatError("no assistant message: an example needs a reply to train on")


def _prompts_row(record: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's reinforcement line as a `prompts` row, read back as `prepare` reads it."""
    row = {"prompt": record["messages"], **{k: v for k, v in record.items() if k != "messages"}}
    from_prompts(row, {})
    return row


def check_file(data: bytes, purpose: str = "fine-tune") -> CheckedFile:
    """The file's kind and training copy, or a 400 naming the first bad line (1-based)."""
    if purpose != "fine-tune":
        raise invalid(
            f"purpose {purpose!r} is not served here: use purpose 'fine-tune'", param="purpose"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise invalid(f"file: not UTF-8 text (byte {err.start})", param="file") from None
    kind: Kind | None = None
    out: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise FormatError(f"expected a JSON object, got {type(record).__name__}")
            record, renamed = developer_as_system(record)
            line_kind = kind_of(record)
            if kind is not None and line_kind != kind:
                if {kind, line_kind} == {"supervised", "reinforcement"}:
                    raise FormatError(
                        "no assistant message: a supervised example needs a reply to train on "
                        "(only a file of reinforcement prompts has none)"
                    )
                raise FormatError(
                    f"a {line_kind} example in a file of {kind} examples: keep one kind a file"
                )
            kind = line_kind
            if kind == "supervised":
                _check_supervised(record)
                out.append(json.dumps(record, ensure_ascii=False) if renamed else line)
            elif kind == "reinforcement":
                out.append(json.dumps(_prompts_row(record), ensure_ascii=False))
            else:
                pair = trl_pair(record)
                convert_pair(pair, "preference")
                out.append(json.dumps(pair, ensure_ascii=False))
        except json.JSONDecodeError as err:
            raise _bad_line(number, f"not JSON ({err.msg} at column {err.colno})") from None
        except FormatError as err:
            raise _bad_line(number, str(err)) from None
    if kind is None:
        raise invalid("file: no examples (every line is empty)", param="file")
    return CheckedFile(kind, len(out), ("\n".join(out) + "\n").encode())


def _bad_line(number: int, problem: str) -> ApiError:
    return invalid(f"file line {number}: {problem}", param="file", code="invalid_file_format")
