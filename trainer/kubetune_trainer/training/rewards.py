"""The graders of `spec.rewards`, as TRL reward functions: each is called with the batch's
completions and the dataset's other columns, and returns one float per completion.

Torch-free. Each grader reads the row's reference fields from the `reference` column (JSON, as
`data/prompts.py` writes it):

- `toolCall`: the evaluation's scorer (`evaluation/tool_calls.py`) against
  `reference_tool_calls`: without reference calls 1 for refraining and 0 for calling; with
  them 0 when nothing readable is called, else 1/3 for well-formed calls, 2/3 when the names
  match too, 1 when the arguments match as well.
  It reads the completion as the evaluation reads a reply, when the trainer gives it `decode`:
  the completion's tokens decoded with the special ones kept and cut at the end of the turn
  (TRL's own text has the special tokens dropped, and with them `<tool_call>` wherever the
  tokenizer marks it special, as the tiny model's does: every call would score 0).
- `stringCheck`: equals (trimmed), contains, or regex search, on the completion or on a
  JSON path inside it; 1 or 0.
- `jsonSchema`: the completion parses as JSON and validates (jsonschema, draft 2020-12); 1 or 0.
- `length`: 0 up to `targetTokens` completion tokens, then linearly down to −1 at
  `maxCompletionLength`.
- `python`: the user's function, `function(completions=, references=, prompts=)`.

A grader whose output is unusable (an exception, NaN, the wrong number of values) raises
`RewardError` naming the grader and what it did, and the job fails with that message.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from kubetune_api.reward_spec import RewardSpec
from kubetune_trainer.data.tool_calls import Syntax, parse, score_turn


class RewardError(RuntimeError):
    """A reward that cannot be computed; the message names the grader."""


_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")
_MISSING = object()


def at_path(value: Any, path: str) -> Any:
    """`$.a.b[0]` inside a decoded JSON value; `_MISSING` when a step is absent."""
    for step in _PATH_STEP.finditer(path[1:]):
        key, index = step.group(1), step.group(2)
        if key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return _MISSING
    return value


def json_of(text: str) -> Any:
    """The completion as JSON: the whole text, else the first ```json fenced block; `_MISSING`
    when neither parses."""
    for candidate in (text.strip(), *re.findall(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    return _MISSING


def tool_call_score(completion: str, expected: list[dict[str, Any]], syntax: Syntax) -> float:
    verdict = score_turn(expected, parse(completion, syntax))
    if not expected:
        return 0.0 if verdict["called"] else 1.0
    if not verdict["called"] or not verdict["wellFormed"]:
        return 0.0
    return (1 + bool(verdict["nameMatch"]) + bool(verdict["argumentsMatch"])) / 3


def string_check(completion: str, expected: str, operation: str, json_path: str | None) -> float:
    subject: Any = completion
    if json_path is not None:
        found = at_path(json_of(completion), json_path)
        if found is _MISSING:
            return 0.0
        subject = found if isinstance(found, str) else json.dumps(found)
    if operation == "equals":
        return float(subject.strip() == expected.strip())
    if operation == "contains":
        return float(expected in subject)
    return float(re.search(expected, subject) is not None)


class Grader:
    """One `spec.rewards` entry as a TRL reward function (TRL names its metrics after
    `__name__`: `rewards/<name>/mean` and `/std`)."""

    def __init__(
        self,
        spec: RewardSpec,
        name: str,
        syntax: Syntax | None,
        max_completion_length: int,
        decode: Callable[[Sequence[int]], str] | None = None,
    ) -> None:
        self.spec, self.__name__ = spec, name
        self.syntax, self.limit = syntax, max_completion_length
        self.decode = decode if spec.toolCall is not None else None
        self._score = self._scorer()

    def _scorer(self) -> Callable[..., list[float]]:
        spec = self.spec
        if spec.toolCall is not None:
            syntax = self.syntax if spec.toolCall.syntax == "auto" else spec.toolCall.syntax
            if syntax is None:
                raise RewardError(
                    f"rewards {self.__name__}: the chat template has no tool-call syntax kubetune "
                    "can read; set toolCall.syntax (hermes or llama3-json)"
                )
            return lambda completions, references, **_: [
                tool_call_score(c, r.get("reference_tool_calls") or [], syntax)
                for c, r in zip(completions, references, strict=True)
            ]
        if spec.stringCheck is not None:
            check = spec.stringCheck
            if check.operation == "regex" and check.expected is not None:
                try:
                    re.compile(check.expected)
                except re.error as err:
                    raise RewardError(
                        f"rewards {self.__name__}: stringCheck.expected is not a regular "
                        f"expression: {err}"
                    ) from err

            def strings(
                completions: list[str], references: list[dict[str, Any]], **_: Any
            ) -> list[float]:
                out = []
                for completion, reference in zip(completions, references, strict=True):
                    expected = check.expected
                    if check.referenceField is not None:
                        if check.referenceField not in reference:
                            raise RewardError(
                                f"rewards {self.__name__}: the row has no reference field "
                                f"{check.referenceField!r} (it has: {', '.join(sorted(reference))})"
                            )
                        expected = str(reference[check.referenceField])
                    out.append(
                        string_check(completion, expected or "", check.operation, check.jsonPath)
                    )
                return out

            return strings
        if spec.jsonSchema is not None:
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            try:
                Draft202012Validator.check_schema(spec.jsonSchema.jsonSchema)
            except SchemaError as err:
                raise RewardError(
                    f"rewards {self.__name__}: jsonSchema is not a valid JSON Schema: {err.message}"
                ) from err
            validator = Draft202012Validator(spec.jsonSchema.jsonSchema)
            return lambda completions, **_: [
                float((v := json_of(c)) is not _MISSING and validator.is_valid(v))
                for c in completions
            ]
        if spec.length is not None:
            target = spec.length.targetTokens
            span = max(1, self.limit - target)
            return lambda completion_ids, **_: [
                -min(1.0, max(0, len(ids) - target) / span) for ids in completion_ids
            ]
        assert spec.python is not None
        try:
            function = getattr(importlib.import_module(spec.python.module), spec.python.function)
        except (ImportError, AttributeError) as err:
            where = f"{spec.python.module}.{spec.python.function}"
            raise RewardError(
                f"rewards {self.__name__}: cannot load {where}: {type(err).__name__}: {err} (the "
                "module must be importable in the trainer: in the image, or on PYTHONPATH "
                "through spec.env)"
            ) from err
        return lambda completions, references, prompts, **_: function(
            completions=completions, references=references, prompts=prompts
        )

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]],
        reference: Sequence[str] | None = None,
        **_: Any,
    ) -> list[float | None]:
        """TRL's reward-function call: one score per completion (TRL's type allows None for
        "not applicable"; a grader always scores)."""
        if self.decode is not None:
            texts = [self.decode(ids) for ids in completion_ids]
        else:
            texts = [c if isinstance(c, str) else str(c[-1]["content"]) for c in completions]
        references = [json.loads(r) for r in reference] if reference else [{} for _ in texts]
        try:
            values = self._score(
                completions=texts,
                references=references,
                prompts=list(prompts),
                completion_ids=completion_ids,
            )
        except RewardError:
            raise
        except Exception as err:
            raise RewardError(
                f"rewards {self.__name__}: the grader raised {type(err).__name__}: {err}"
            ) from err
        scores: list[float | None] = [*checked(self.__name__, values, len(texts))]
        return scores


def checked(name: str, values: Any, expected: int) -> list[float]:
    """One finite float per completion, or a RewardError naming the grader."""
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError) as err:
        raise RewardError(
            f"rewards {name}: expected one number per completion, got {type(values).__name__} "
            f"({err})"
        ) from err
    if len(floats) != expected:
        raise RewardError(
            f"rewards {name}: returned {len(floats)} values for {expected} completions "
            "(one per completion)"
        )
    bad = [i for i, v in enumerate(floats) if not math.isfinite(v)]
    if bad:
        raise RewardError(
            f"rewards {name}: returned {floats[bad[0]]} for completion {bad[0]} "
            f"({len(bad)} of {expected} not finite); return a finite number for every completion"
        )
    return floats


def graders(
    specs: Sequence[RewardSpec],
    syntax: Syntax | None,
    max_completion_length: int,
    decode: Callable[[Sequence[int]], str] | None = None,
) -> list[Grader]:
    """The job's graders, named by `name` or their kind (a kind used twice is numbered);
    `decode` (a completion's tokens to the text `toolCall` reads) goes to the `toolCall` ones."""
    labels = [s.label for s in specs]
    names = [
        label if labels.count(label) == 1 else f"{label}-{labels[: i + 1].count(label)}"
        for i, label in enumerate(labels)
    ]
    return [
        Grader(s, n, syntax, max_completion_length, decode)
        for s, n in zip(specs, names, strict=True)
    ]
