"""OpenAI's reinforcement graders as kubetune's rewards (`spec.rewards`, GRPO's reward functions).

Served (docs/openai-api.md#reinforcement):
- `string_check` with `operation` `eq` (kubetune's `stringCheck` `equals`, which trims the
  completion's surrounding whitespace) or `like` (`contains`); `input` is
  `{{sample.output_text}}`, or `{{sample.output_json.a.b}}` (the value at `$.a.b` of the
  completion read as JSON); `reference` is `{{item.<field>}}` (the training line's own field) or
  a literal string;
- `multi`: several of those by name (as OpenAI's graders guide writes it; the `openai` package's
  type holds one grader, taken as named by its `name`), and `calculate_output` a weighted sum
  of their names (`0.7 * exact + 0.3 * partial`), whose weights become the rewards' weights.

Anything else is refused with a 400 that names the grader field and what is served: `ne` and
`ilike` have no kubetune twin, and `text_similarity`, `score_model`, `label_model` and `python`
graders would need a model or code that the API does not run.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from kubetune.openai_api.errors import invalid

PARAM = "method.reinforcement.grader"
_SAMPLE_TEXT = "{{sample.output_text}}"
_SAMPLE_JSON = re.compile(r"^\{\{\s*sample\.output_json((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\}\}$")
_ITEM = re.compile(r"^\{\{\s*item\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
_OPERATIONS = {"eq": "equals", "like": "contains"}


def _refuse(message: str, where: str) -> Exception:
    return invalid(f"{where}: {message}", param=PARAM)


def _name(raw: Any, fallback: str) -> str:
    """A reward name of kubetune's shape (lower case, digits, `-` and `_`)."""
    text = re.sub(r"[^a-z0-9_-]+", "-", str(raw or fallback).lower()).strip("-_")[:63]
    return text.strip("-_") or fallback


def _string_check(grader: dict[str, Any], where: str) -> dict[str, Any]:
    operation = grader.get("operation")
    if operation not in _OPERATIONS:
        raise _refuse(
            f"operation {operation!r} is not served: use eq or like (ne and ilike have no "
            "kubetune twin)",
            where,
        )
    check: dict[str, Any] = {"operation": _OPERATIONS[operation]}
    source = str(grader.get("input", "")).strip()
    if source.replace(" ", "") != _SAMPLE_TEXT:
        found = _SAMPLE_JSON.match(source)
        if not found:
            raise _refuse(
                f"input {source!r}: use {_SAMPLE_TEXT} or {{{{sample.output_json.<field>}}}}",
                where,
            )
        check["jsonPath"] = "$" + found.group(1)
    reference = grader.get("reference")
    if not isinstance(reference, str) or not reference:
        raise _refuse("reference: a string, {{item.<field>}} or a literal", where)
    if field := _ITEM.match(reference.strip()):
        check["referenceField"] = field.group(1)
    elif "{{" in reference:
        raise _refuse(f"reference {reference!r}: use {{{{item.<field>}}}} or a literal", where)
    else:
        check["expected"] = reference
    return check


def _weights(formula: Any, names: list[str], where: str) -> dict[str, float]:
    """`calculate_output` as a weighted sum of grader names, or a 400."""
    usage = f"calculate_output: a weighted sum of the graders' names, e.g. 0.5 * {names[0]}"
    try:
        tree = ast.parse(str(formula), mode="eval").body
    except SyntaxError:
        raise _refuse(usage, where) from None
    weights: dict[str, float] = {}

    def term(node: ast.expr, sign: float) -> None:
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            term(node.left, sign)
            term(node.right, -sign if isinstance(node.op, ast.Sub) else sign)
            return
        factor, name = 1.0, node
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            left, right = node.left, node.right
            if isinstance(node.op, ast.Mult) and isinstance(left, ast.Constant):
                left, right = right, left
            if not isinstance(right, ast.Constant) or not isinstance(right.value, (int, float)):
                raise _refuse(usage, where)
            factor = float(right.value) if isinstance(node.op, ast.Mult) else 1 / right.value
            name = left
        if not isinstance(name, ast.Name) or name.id not in names:
            raise _refuse(f"{usage} (names: {', '.join(names)})", where)
        weights[name.id] = weights.get(name.id, 0.0) + sign * factor

    term(tree, 1.0)
    return weights


def rewards_of(grader: Any) -> list[dict[str, Any]]:
    """The `spec.rewards` for an OpenAI grader object."""
    if not isinstance(grader, dict):
        raise invalid("method.reinforcement.grader: required, a grader object", param=PARAM)
    kind = grader.get("type")
    if kind == "string_check":
        return [
            {
                "name": _name(grader.get("name"), "string-check"),
                "stringCheck": _string_check(grader, PARAM),
            }
        ]
    if kind == "multi":
        graders = grader.get("graders")
        if isinstance(graders, dict) and "type" in graders:
            # the `openai` package types `graders` as one grader; OpenAI's graders guide names
            # several: one grader is taken as named by its `name`
            graders = {str(graders.get("name") or "grader"): graders}
        if not isinstance(graders, dict) or not graders:
            raise _refuse("graders: an object of named graders", PARAM)
        weights = _weights(grader.get("calculate_output"), list(graders), PARAM)
        out = []
        for key, inner in graders.items():
            where = f"{PARAM}.graders.{key}"
            if not isinstance(inner, dict) or inner.get("type") != "string_check":
                raise _refuse("only string_check graders are served inside multi", where)
            out.append(
                {
                    "name": _name(key, "string-check"),
                    "weight": weights.get(key, 0.0),
                    "stringCheck": _string_check(inner, where),
                }
            )
        return out
    raise _refuse(
        f"type {kind!r} is not served: use string_check or multi (text_similarity, "
        "score_model, label_model and python graders need a model or code the API does not run)",
        PARAM,
    )
