"""What the operator's indexes keep of each child: small typed projections, not bodies.

A PyTorchJob body is tens of KiB of Python objects (two pod templates, the trainer config,
managedFields); a pod's status a few. The indexes hold one entry per child for as long as the
child exists, so each keeps only the fields the reconcile reads — a name, the applied spec
hash, the suspend switch and the conditions for a PyTorchJob; the `PodState` the phase rules
read for a pod — and hands the reconcile the same shape it reads from a watch event.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from kubetune.render.metadata import Obj
from kubetune.runtime.observe import pod_state
from kubetune.runtime.status import PodState

SPEC_HASH = "kubetune.io/spec-hash"
ENDINGS = ("Succeeded", "Failed")
READ_CONDITIONS = (*ENDINGS, "Suspended", "Running")
"""The PyTorchJob conditions status.py reads (`pytorchjob_condition`); the training-operator's
others (Created, Restarting) change nothing of a FineTuneJob."""


def _word(text: object) -> str:
    """A short repeated string (a condition type, a status) shared, not copied per child."""
    return sys.intern(str(text))


class Condition(NamedTuple):
    type: str
    status: str
    message: str


class PyTorchJobView(NamedTuple):
    """A PyTorchJob as the reconcile reads it (reconcile.observe, status.compute_status)."""

    name: str
    spec_hash: str | None
    suspend: bool | None
    conditions: tuple[Condition, ...]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> PyTorchJobView:
        meta = body["metadata"]
        conditions = (body.get("status") or {}).get("conditions") or []
        return cls(
            name=meta["name"],
            spec_hash=(meta.get("annotations") or {}).get(SPEC_HASH),
            suspend=(body.get("spec") or {}).get("runPolicy", {}).get("suspend"),
            conditions=tuple(
                Condition(_word(c.get("type")), _word(c.get("status")), c.get("message") or "")
                for c in conditions
            ),
        )

    def digest(self) -> tuple[object, ...]:
        """Everything of it that the reconcile's decisions read: the spec hash, suspend, and
        the conditions that are True among those the status rules name (with the message of
        an ending). Two PyTorchJobs with the same digest give the same reconcile."""
        read = {
            (c.type, c.message if c.type in ENDINGS else "")
            for c in self.conditions
            if c.status == "True" and c.type in READ_CONDITIONS
        }
        return (self.spec_hash, bool(self.suspend), frozenset(read))

    def as_obj(self) -> Obj:
        """The body shape the reconcile reads (a fresh dict: callers may keep it)."""
        return {
            "metadata": {"name": self.name, "annotations": {SPEC_HASH: self.spec_hash}},
            "spec": {"runPolicy": {"suspend": self.suspend}},
            "status": {"conditions": [c._asdict() for c in self.conditions]},
        }


class PodView(NamedTuple):
    """A training pod as the reconcile reads it: its uid (to tell it from the event's pod) and
    what the phase rules read of its status."""

    uid: str | None
    state: PodState

    @classmethod
    def of(cls, body: Obj) -> PodView:
        return cls(body["metadata"].get("uid"), pod_state(body))
