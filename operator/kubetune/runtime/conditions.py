"""Setting one condition in a list, as apimachinery's `meta.SetStatusCondition` does.

    set_condition(conditions, type, status, reason, message, now, observed_generation)

A new type is added with `lastTransitionTime` = now; an existing one takes the new status,
reason, message and observedGeneration, and its `lastTransitionTime` moves to now only when the
status flips. Pure: it returns a new list, the given one is left as it was.
"""

from __future__ import annotations

from typing import Literal

from kubetune.render.metadata import Obj

Status = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: list[Obj],
    type: str,
    status: Status,
    reason: str,
    message: str,
    now: str,
    observed_generation: int | None,
) -> list[Obj]:
    if not reason:
        raise ValueError(f"condition {type}: a reason is required (metav1.Condition)")
    out = [dict(c) for c in conditions]
    found = next((c for c in out if c["type"] == type), None)
    if found is None:
        found = {"type": type, "lastTransitionTime": now}
        out.append(found)
    elif found.get("status") != status:
        found["lastTransitionTime"] = now
    found.update(status=status, reason=reason, message=message)
    found["observedGeneration"] = observed_generation
    return out


def find_condition(conditions: list[Obj], type: str) -> Obj | None:
    """`meta.FindStatusCondition`: the condition of that type, or None."""
    return next((c for c in conditions if c.get("type") == type), None)
