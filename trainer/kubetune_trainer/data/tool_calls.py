"""Tool calls in generated text, parsed in the chat template's own syntax, and scored.

Pure Python (no torch, no tokenizer): `syntax_of(template)` says how a template writes a call,
`parse(reply, syntax)` reads the calls back out of a generated reply, and `score_turn` /
`summarise` compare them with the reference turn. A reply that cannot be read is counted
(`errors`), never raised.

The two syntaxes of the built-in templates, read from the templates themselves:

- `hermes` — Qwen 2.5, Qwen 3, and kubetune's tool rendering in front of Llama 3.0, Gemma and
  ChatML: one `<tool_call>\\n{"name": …, "arguments": {…}}\\n</tool_call>` block per call,
  after any text (Qwen 3 may think first: `<think>…</think>` is text like any other).
- `llama3-json` — Llama 3.1's JSON tool calling: the whole reply is
  `{"name": …, "parameters": {…}}`, optionally after `<|python_tag|>`. The template renders one
  call per turn; several objects separated by `;` or whitespace are read as parallel calls
  (vLLM's `llama3_json` parser does the same).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Syntax = Literal["hermes", "llama3-json"]
_HERMES_BLOCK = re.compile(r"<tool_call>(.*?)(</tool_call>|$)", re.DOTALL)
_PYTHON_TAG = "<|python_tag|>"


def syntax_of(template: str | None) -> Syntax | None:
    """How a chat template writes tool calls; None when it has no tool syntax we can read."""
    if not template:
        return None
    if "<tool_call>" in template:
        return "hermes"
    if '"parameters": ' in template:
        return "llama3-json"
    return None


@dataclass
class Parsed:
    """The calls read from one reply, and what could not be read."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    """Each call as {"name": str, "arguments": dict}."""
    errors: list[str] = field(default_factory=list)
    """One line per call that was begun but could not be read (malformed JSON, no name, …)."""

    @property
    def attempted(self) -> bool:
        """The reply tried to call a tool (well-formed or not)."""
        return bool(self.calls or self.errors)


def _call(obj: Any, arguments_key: str) -> dict[str, Any] | str:
    """One decoded call object → {"name", "arguments"}, or the reason it is not one."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return "no function name"
    arguments = obj.get(arguments_key, obj.get("arguments", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return f"{name}: arguments are not JSON"
    if not isinstance(arguments, dict):
        return f"{name}: arguments are not an object"
    return {"name": name, "arguments": arguments}


def parse_hermes(reply: str) -> Parsed:
    parsed = Parsed()
    for block in _HERMES_BLOCK.finditer(reply):
        body, closed = block.group(1).strip(), bool(block.group(2))
        if not closed:
            parsed.errors.append("unclosed <tool_call>")
            continue
        try:
            call = _call(json.loads(body), "arguments")
        except json.JSONDecodeError as err:
            call = f"malformed JSON ({err.msg})"
        if isinstance(call, str):
            parsed.errors.append(call)
        else:
            parsed.calls.append(call)
    return parsed


def parse_llama3_json(reply: str) -> Parsed:
    parsed = Parsed()
    text = reply.strip()
    if text.startswith(_PYTHON_TAG):
        text = text[len(_PYTHON_TAG) :].lstrip()
    if not text.startswith("{"):
        return parsed  # a plain answer
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(text):
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            parsed.errors.append(f"malformed JSON ({err.msg})")
            break
        call = _call(obj, "parameters")
        if isinstance(call, str):
            parsed.errors.append(call)
        else:
            parsed.calls.append(call)
        while pos < len(text) and text[pos] in " \t\r\n;":
            pos += 1
    return parsed


def parse(reply: str, syntax: Syntax) -> Parsed:
    return parse_hermes(reply) if syntax == "hermes" else parse_llama3_json(reply)


def reference_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A reference assistant message's calls as {"name", "arguments"} (the converted
    conversation's OpenAI shape, `formats.tool_call`)."""
    calls = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function", call)
        arguments = fn.get("arguments") or {}
        if isinstance(arguments, str):
            arguments = json.loads(arguments)
        calls.append({"name": fn["name"], "arguments": arguments})
    return calls


def score_turn(expected: list[dict[str, Any]], parsed: Parsed) -> dict[str, Any]:
    """One turn's verdicts. Parallel calls match in any order; arguments are compared as
    decoded JSON (`_same_calls`)."""
    verdict: dict[str, Any] = {
        "expectedCall": bool(expected),
        "called": parsed.attempted,
        "wellFormed": not parsed.errors if parsed.attempted else None,
    }
    if expected:
        names = sorted(c["name"] for c in parsed.calls)
        verdict["nameMatch"] = not parsed.errors and names == sorted(c["name"] for c in expected)
        verdict["argumentsMatch"] = bool(verdict["nameMatch"]) and _same_calls(
            expected, parsed.calls
        )
    return verdict


def _same_calls(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> bool:
    """Equal as decoded JSON, call for call in any order: key order and spacing never matter,
    and neither does 1 against 1.0; "1" against 1 does, and so does true against 1 (BFCL's AST
    checker refuses both: tests/trainer/test_tool_call_bfcl.py)."""
    if len(expected) != len(got):
        return False
    remaining = list(got)
    for call in expected:
        match = next((g for g in remaining if same_json(g, call)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


def same_json(a: Any, b: Any) -> bool:
    """Python's == on decoded JSON, except that a boolean equals only a boolean (Python has
    True == 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def summarise(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """The scores over scored turns (each `score_turn`'s verdict, or {"error": …} for a turn
    whose generation failed)."""
    failed = [t for t in turns if "error" in t]
    ok = [t for t in turns if "error" not in t]
    with_calls = [t for t in ok if t["expectedCall"]]
    without = [t for t in ok if not t["expectedCall"]]
    attempted = [t for t in ok if t["called"]]
    return {
        "turns": len(turns),
        "toolTurns": len(with_calls),
        "noToolTurns": len(without),
        "wellFormed": _rate(sum(1 for t in attempted if t["wellFormed"]), len(attempted)),
        "malformed": sum(1 for t in attempted if not t["wellFormed"]),
        "toolNameAccuracy": _rate(sum(1 for t in with_calls if t["nameMatch"]), len(with_calls)),
        "argumentsExactMatch": _rate(
            sum(1 for t in with_calls if t["argumentsMatch"]), len(with_calls)
        ),
        "calledWhenExpected": _rate(sum(1 for t in with_calls if t["called"]), len(with_calls)),
        "refrainedWhenNotExpected": _rate(sum(1 for t in without if not t["called"]), len(without)),
        "generationErrors": len(failed),
    }
