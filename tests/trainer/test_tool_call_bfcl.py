"""The `toolCall` reward against the Berkeley Function-Calling Leaderboard's AST checker
(`bfcl_eval/eval_checker/ast_eval/ast_checker.py`, run unchanged: tests/support/bfcl_reference.py
says how and from which commit), on BFCL's own cases: the first 25 rows each of simple
(Python), multiple, parallel and parallel-multiple, with their function descriptions and
possible answers.

For each case the reference call is BFCL's first accepted value of every parameter (what a
dataset row would hold as `reference_tool_calls`). Model outputs are derived from it by one
change at a time; BFCL's checker gives its verdict on the decoded calls, and the reward (the
`toolCall` grader on the same calls written as hermes `<tool_call>` blocks) counts as valid at
1.0. Where the two must agree, they must; where kubetune differs on purpose, the test checks
that BFCL accepts and kubetune refuses, for the reason given in DIFFERENCES:

- `another accepted value`: BFCL's possible answers list every acceptable value of a parameter
  ("NYC" or "New York City"); a dataset row holds one reference call, so kubetune accepts that
  value only.
- `optional parameter left out`: BFCL accepts leaving out a parameter whose accepted values
  include "" (optional, the default meant); the reference call holds a value, and kubetune
  compares the arguments as given.
- `string case and punctuation`: BFCL's `standardize_string` lower-cases and drops spaces and
  `,./-_*^` before comparing strings; kubetune compares strings exactly.
- `float for an integer`: BFCL's `type_checker` refuses 5.0 for an `integer` parameter;
  kubetune has no schema at hand (the row's reference is JSON, where 5 and 5.0 are one number)
  and compares numbers by value.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from kubetune_api.reward_spec import RewardSpec
from kubetune_trainer.training.rewards import graders
from tests.support import bfcl_reference

Call = dict[str, Any]  # {"name": str, "arguments": {…}}
CHECKER = bfcl_reference.load()
# change: (BFCL's verdict, kubetune's verdict), for every case that offers the change
DIFFERENCES = {
    "another accepted value": (True, False),
    "optional parameter left out": (True, False),
    "string case and punctuation": (True, False),
    "float for an integer": (False, True),
}


def first_accepted(values: list[Any]) -> Any:
    """The first accepted value; inside a dictionary (BFCL's `dict_checker`: each key's accepted
    values) or a list of them, the first accepted value of each key."""
    value = next((v for v in values if v != ""), None)
    if isinstance(value, dict):
        inner = {k: first_accepted(vs) for k, vs in value.items()}
        return {k: v for k, v in inner.items() if v is not None}
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        return [first_accepted([x]) for x in value]
    return value


def reference_calls(case: dict[str, Any]) -> list[Call]:
    """BFCL's first accepted value of each parameter (none for an optional one without)."""
    calls = []
    for answer in case["ground_truth"]:
        ((name, params),) = answer.items()
        described = description(case, name)["parameters"]["properties"]
        # a possible answer may name a parameter the description lacks (parallel_multiple_12's
        # "permeability", optional there): BFCL refuses it in a call, so the reference leaves it
        arguments = {p: first_accepted(vs) for p, vs in params.items() if p in described}
        calls.append(
            {"name": name, "arguments": {p: v for p, v in arguments.items() if v is not None}}
        )
    return calls


def description(case: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in case["function"] if f["name"] == name)


def param_type(case: dict[str, Any], call: Call, param: str) -> str:
    return str(description(case, call["name"])["parameters"]["properties"][param]["type"])


def accepted(case: dict[str, Any], index: int, param: str) -> list[Any]:
    ((params,),) = [case["ground_truth"][index].values()]
    return list(params[param])


# One change to the reference calls each: (calls, case) → changed calls, or None where the
# case has nothing to change that way. Each edits the first call that offers what it needs.
Mutation = Callable[[list[Call], dict[str, Any]], list[Call] | None]


def _first_param(
    calls: list[Call], case: dict[str, Any], fits: Callable[[int, str, Any], bool]
) -> tuple[int, str] | None:
    for i, call in enumerate(calls):
        for param, value in call["arguments"].items():
            if fits(i, param, value):
                return i, param
    return None


def _set(calls: list[Call], index: int, param: str, value: Any) -> list[Call]:
    out = copy.deepcopy(calls)
    if value is _DROP:
        del out[index]["arguments"][param]
    else:
        out[index]["arguments"][param] = value
    return out


_DROP = object()


def as_referenced(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    return calls


def reordered(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    return calls[::-1] if len(calls) > 1 else None


def wrong_name(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    out = copy.deepcopy(calls)
    offered = [f["name"] for f in case["function"] if f["name"] != calls[0]["name"]]
    out[0]["name"] = offered[0] if offered else calls[0]["name"] + "_other"
    return out


def required_missing(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    found = _first_param(
        calls,
        case,
        lambda i, p, _: p in description(case, calls[i]["name"])["parameters"]["required"],
    )
    return None if found is None else _set(calls, *found, _DROP)


def unexpected_parameter(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    return _set(calls, 0, "kubetune_extra", 1)


def _other_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1000003
    if isinstance(value, str):
        return value + " kubetune"
    if isinstance(value, list) and all(isinstance(x, str | int | float) for x in value):
        return [*value, value[0] if value else "kubetune"]
    return None


def wrong_value(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    found = _first_param(calls, case, lambda i, p, v: _other_value(v) is not None)
    if found is None:
        return None
    i, param = found
    return _set(calls, i, param, _other_value(calls[i]["arguments"][param]))


def call_missing(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    return calls[:-1] if len(calls) > 1 else None


def call_repeated(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    return [*calls, copy.deepcopy(calls[0])]


def number_as_string(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    found = _first_param(
        calls, case, lambda i, p, v: isinstance(v, int | float) and not isinstance(v, bool)
    )
    return (
        None if found is None else _set(calls, *found, str(calls[found[0]]["arguments"][found[1]]))
    )


def boolean_as_number(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    found = _first_param(calls, case, lambda i, p, v: isinstance(v, bool))
    return (
        None if found is None else _set(calls, *found, int(calls[found[0]]["arguments"][found[1]]))
    )


def integer_for_float(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    found = _first_param(
        calls,
        case,
        lambda i, p, v: (
            param_type(case, calls[i], p) == "float" and isinstance(v, float) and v.is_integer()
        ),
    )
    return (
        None if found is None else _set(calls, *found, int(calls[found[0]]["arguments"][found[1]]))
    )


def float_for_integer(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    found = _first_param(
        calls,
        case,
        lambda i, p, v: (
            param_type(case, calls[i], p) == "integer"
            and isinstance(v, int)
            and not isinstance(v, bool)
        ),
    )
    return (
        None
        if found is None
        else _set(calls, *found, float(calls[found[0]]["arguments"][found[1]]))
    )


def another_accepted_value(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    found = _first_param(
        calls, case, lambda i, p, v: len([x for x in accepted(case, i, p) if x != ""]) > 1
    )
    if found is None:
        return None
    i, param = found
    return _set(calls, i, param, [x for x in accepted(case, i, param) if x != ""][1])


def optional_left_out(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    found = _first_param(
        calls,
        case,
        lambda i, p, v: (
            "" in accepted(case, i, p)  # optional in the answer, and not required
            and p not in description(case, calls[i]["name"])["parameters"]["required"]
        ),
    )
    return None if found is None else _set(calls, *found, _DROP)


def string_case_and_punctuation(calls: list[Call], case: dict[str, Any]) -> list[Call] | None:
    found = _first_param(calls, case, lambda i, p, v: isinstance(v, str) and v.upper() + "." != v)
    if found is None:
        return None
    i, param = found
    return _set(calls, i, param, calls[i]["arguments"][param].upper() + ".")


AGREE: dict[str, Mutation] = {
    "as referenced": as_referenced,
    "parallel calls reordered": reordered,
    "wrong function": wrong_name,
    "required parameter missing": required_missing,
    "unexpected parameter": unexpected_parameter,
    "wrong value": wrong_value,
    "a call missing": call_missing,
    "a call repeated": call_repeated,
    "number as a string": number_as_string,
    "boolean as a number": boolean_as_number,
    "integer for a float": integer_for_float,
}
DIFFER: dict[str, Mutation] = {
    "another accepted value": another_accepted_value,
    "optional parameter left out": optional_left_out,
    "string case and punctuation": string_case_and_punctuation,
    "float for an integer": float_for_integer,
}
GRADER = graders([RewardSpec.model_validate({"toolCall": {"syntax": "hermes"}})], None, 64)[0]


def bfcl_valid(case: dict[str, Any], category: str, calls: list[Call]) -> bool:
    output = [{c["name"]: c["arguments"]} for c in calls]
    verdict = CHECKER.ast_checker(
        case["function"],
        output,
        case["ground_truth"],
        CHECKER.Language.PYTHON,
        category,
        bfcl_reference.MODEL_NAME,
    )
    return bool(verdict["valid"])


def reward(reference: list[Call], calls: list[Call]) -> float:
    completion = "".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)
    row = json.dumps({"reference_tool_calls": reference})
    (score,) = GRADER(prompts=[""], completions=[completion], completion_ids=[[0]], reference=[row])
    assert score is not None
    return score


def verdicts(category: str) -> list[tuple[str, str, bool, float]]:
    """(case id, change, BFCL valid, reward) for every change a case offers."""
    out = []
    for case in bfcl_reference.cases(category):
        reference = reference_calls(case)
        for label, mutation in {**AGREE, **DIFFER}.items():
            calls = mutation(reference, case)
            if calls is not None:
                out.append(
                    (case["id"], label, bfcl_valid(case, category, calls), reward(reference, calls))
                )
    return out


@pytest.mark.parametrize("category", bfcl_reference.CATEGORIES)
def test_the_tool_call_reward_agrees_with_bfcl_ast_checker(category: str) -> None:
    rows = verdicts(category)
    assert len({r[0] for r in rows}) == 25
    # BFCL accepts every reference call as built (else the table would test nothing)
    refused = [r for r in rows if r[1] == "as referenced" and not r[2]]
    assert not refused, refused
    disagree = [r for r in rows if r[1] in AGREE and r[2] != (r[3] == 1.0)]
    assert not disagree, "\n".join(map(str, disagree))
    for label, (theirs, ours) in DIFFERENCES.items():
        other = [r for r in rows if r[1] == label and (r[2], r[3] == 1.0) != (theirs, ours)]
        assert not other, "\n".join(map(str, other))


def test_the_table_covers_every_change_on_bfcl_cases() -> None:
    """Every change, agreeing or deliberately different, happens on some of BFCL's cases, both
    verdicts of BFCL occur, and the table's size is known (a silent skip would shrink it)."""
    rows = [r for c in bfcl_reference.CATEGORIES for r in verdicts(c)]
    counts = {label: sum(1 for r in rows if r[1] == label) for label in {**AGREE, **DIFFER}}
    assert all(counts.values()), counts
    assert {r[2] for r in rows} == {True, False}
    print(len(rows), "verdicts:", counts)
