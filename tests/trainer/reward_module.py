"""A user's own reward module for `rewards: [{python: {module: tests.trainer.reward_module}}]`
(used by the GRPO test): it gets the completions and each row's reference fields."""

from __future__ import annotations

from typing import Any


def reward(
    completions: list[str], references: list[dict[str, Any]], prompts: list[str]
) -> list[float]:
    """1 when the completion names the reference's first tool, else 0."""
    out = []
    for completion, reference in zip(completions, references, strict=True):
        calls = reference.get("reference_tool_calls") or []
        out.append(float(bool(calls) and calls[0]["name"] in completion))
    return out
