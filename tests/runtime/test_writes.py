"""Every write of a FineTuneJob's life, pinned: the children in one pass, the status once per
real change, an Event per phase change after the first, nothing when the operator restarts.

The reconciler runs against the in-memory cluster (tests/support/memory_cluster.py, a mock so
the whole life runs in milliseconds); which events reach it at all (`settled`) and which phase
changes post an Event (`phase_event`) are the operator's own functions (runtime/event_filters.py,
runtime/handlers.py). bench/operator_burst.py
counts the same writes against a real API server.
"""

from __future__ import annotations

import copy
from typing import Any

from kubetune.runtime.event_filters import settled
from kubetune.runtime.handlers import phase_event
from kubetune.runtime.reconcile import Outcome
from tests.support.memory_cluster import CHILDREN, World, raw_event


def writes(world: World, outcome: Outcome) -> list[str]:
    """The API writes of one reconcile, the handler's Event included."""
    made = [c for c in world.cluster.calls if not c.startswith("get ")]
    if phase_event(outcome.previous_phase, outcome.phase):
        made.append(f"event {outcome.phase}")
    world.cluster.calls.clear()
    return made


def step(world: World) -> list[str]:
    """A reconcile, then the job as the watch shows it after our status write: the next event
    must see that status, or it would be written again."""
    outcome = world.reconcile()
    world.job["status"] = copy.deepcopy(outcome.status)
    return writes(world, outcome)


def settled_after(world: World) -> bool:
    """Whether the FineTuneJob event that our own status write causes is skipped."""
    world.job["metadata"]["generation"] = world.job["metadata"].get("generation", 1)
    return settled(raw_event("MODIFIED", world.job))


def pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "job-master-0", "uid": "u1"}, "status": status}


def test_a_suspended_job_costs_six_writes_and_a_restart_none() -> None:
    world = World().with_spec(**{"spec.runPolicy.suspend": True})
    world.job["metadata"]["generation"] = 1
    new = step(world)
    assert new == [*(f"create {c}" for c in CHILDREN), "status job"]
    assert len(new) == 6  # PVC, ConfigMap, ServiceAccount, RoleBinding, PyTorchJob; status
    assert settled_after(world)
    # The training-operator's first status (Created, Suspended) on the PyTorchJob comes back.
    world.with_pytorchjob(suspended=True)
    world.watch.pytorchjobs["job"]["status"] = {
        "conditions": [{"type": "Suspended", "status": "True"}]
    }
    assert step(world) == []
    # A restarted operator lists every job and every child: nothing is written.
    assert step(world) == []


def test_a_job_that_trains_to_success_costs_twelve_writes() -> None:
    world = World()
    world.job["metadata"]["generation"] = 1
    life = step(world)  # new: the five children and its first status
    assert life == [*(f"create {c}" for c in CHILDREN), "status job"]
    world.with_pytorchjob()
    pytorchjob = world.watch.pytorchjobs["job"]
    pytorchjob["status"] = {"conditions": [{"type": "Created", "status": "True"}]}
    assert step(world) == []  # created, no pods yet: still Pending, nothing to write
    world.watch.pod_list = [
        pod(phase="Pending", initContainerStatuses=[{"state": {"running": {}}}])
    ]
    life += (preparing := step(world))
    assert preparing == ["status job", "event Preparing"]
    assert step(world) == []  # the same pod again (another event): nothing
    world.watch.pod_list = [pod(phase="Running")]
    pytorchjob["status"]["conditions"].append({"type": "Running", "status": "True"})
    life += (training := step(world))
    assert training == ["status job", "event Training"]
    # The trainer's progress patches arrive as status-only changes: not even reconciled.
    world.job["status"]["progress"] = {"step": 5}
    assert settled_after(world)
    pytorchjob["status"]["conditions"].append({"type": "Succeeded", "status": "True"})
    world.watch.pod_list = [pod(phase="Succeeded")]
    life += (done := step(world))
    assert done == ["status job", "event Succeeded"]
    assert len(life) == 12
    # Restart, and the PyTorchJob and pods deleted meanwhile (ttlSecondsAfterFinished): quiet.
    world.watch.pytorchjobs.clear()
    world.cluster.objects.clear()
    world.watch.pod_list = []
    assert step(world) == []


def test_only_the_first_phase_goes_without_an_event() -> None:
    assert phase_event(None, "Pending") is None
    assert phase_event(None, "Suspended") is None
    assert phase_event("Pending", "Pending") is None
    failed = phase_event(None, "Failed")
    assert failed is not None and failed.type == "Warning"
    resumed = phase_event("Suspended", "Pending")
    assert resumed is not None and resumed.message == "phase Suspended → Pending"
