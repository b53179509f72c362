"""The rewards of `objective: grpo` (`spec.rewards`): one grader each, with its weight.

Torch-free, as `config.py` (the operator embeds these sections in the FineTuneJob API).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kubetune_api.schema import Model


class ToolCallReward(Model):
    """The tool-call scorer's verdict on the completion against the row's `reference_tool_calls`.

    With reference calls: 0 when nothing (or nothing readable) is called, else 1/3 for
    well-formed calls, +1/3 when the tool names match, +1/3 when the arguments match too
    (parallel calls in any order). Without: 1 for refraining, 0 for calling."""

    syntax: Literal["auto", "hermes", "llama3-json"] = "auto"
    """How calls are written: `auto` reads it from the chat template (`<tool_call>` blocks, or
    Llama 3.1's JSON)."""


class StringCheckReward(Model):
    """1 when the completion (or a value inside it) passes the check, else 0."""

    operation: Literal["equals", "contains", "regex"] = "equals"
    """`equals` (after trimming surrounding whitespace), `contains`, or `regex` (Python `re`
    search, the expected string being the pattern)."""
    expected: str | None = Field(default=None, max_length=4096)
    """The string (or pattern) to check against. Set this or `referenceField`."""
    referenceField: str | None = Field(default=None, min_length=1, max_length=256)
    """Take the expected string from this reference field of each row (e.g. `reference_text`,
    or a `prompts` row's own column)."""
    jsonPath: str | None = Field(
        default=None, pattern=r"^\$(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*$"
    )
    """Check a value inside the completion read as JSON, e.g. `$.answer` or `$.items[0].id`
    (a completion that is not JSON, or lacks the path, scores 0)."""


class JsonSchemaReward(Model):
    """1 when the completion parses as JSON and validates against the schema, else 0."""

    jsonSchema: dict[str, Any] = Field(default_factory=dict)
    """A JSON Schema (draft 2020-12); `{}` accepts any JSON."""


class LengthReward(Model):
    """A penalty for long completions: 0 up to `targetTokens`, falling linearly to −1 at
    `training.grpo.maxCompletionLength`."""

    targetTokens: int = Field(ge=0, le=131072)
    """Completion tokens that cost nothing."""


class PythonReward(Model):
    """Your own reward function, importable in the trainer (from the image, or from a folder on
    the workspace volume put on `PYTHONPATH` through `spec.env`, as for a custom entrypoint).

    It is called as `function(completions=[str], references=[dict], prompts=[str])` and returns
    one float per completion."""

    module: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$", max_length=256)
    """Python module holding the function."""
    function: str = Field(default="reward", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)
    """Name of the function in the module."""


class RewardSpec(Model):
    """One reward (a grader): exactly one of `toolCall`, `stringCheck`, `jsonSchema`, `length`,
    `python`, and its weight."""

    name: str | None = Field(
        default=None, pattern=r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$", max_length=63
    )
    """Name in the metrics (`rewards/<name>/mean`); defaults to the grader's kind."""
    weight: float = Field(default=1.0, ge=-100, le=100)
    """Weight in the sum that is the completion's reward (TRL's `reward_weights`)."""
    toolCall: ToolCallReward | None = None
    """Tool calls against the row's reference calls (the evaluation's scorer)."""
    stringCheck: StringCheckReward | None = None
    """A string comparison."""
    jsonSchema: JsonSchemaReward | None = None
    """The completion is JSON that validates."""
    length: LengthReward | None = None
    """A length penalty."""
    python: PythonReward | None = None
    """Your own function."""

    @property
    def kind(self) -> str:
        return next(k for k in REWARD_KINDS if getattr(self, k) is not None)

    @property
    def label(self) -> str:
        return self.name or self.kind


REWARD_KINDS = ("toolCall", "stringCheck", "jsonSchema", "length", "python")
