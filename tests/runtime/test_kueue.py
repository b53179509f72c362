"""Jobs under Kueue (spec.scheduling.queue): the `Queued` phase from Kueue's Workload, and a
suspend that goes through the Workload's `spec.active`, never the PyTorchJob's `suspend`.

A table over the in-memory cluster and watches (mocks, milliseconds); tests/cluster/test_kueue.py
runs the same against real Kueue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kubetune.runtime.kueue import QueueState, queued
from tests.support.memory_cluster import World

QUEUED = {"spec.scheduling.queue": "team-q"}
PENDING_QUOTA = {  # as real Kueue v0.17 words it (tests/cluster/test_kueue.py saw it)
    "type": "QuotaReserved",
    "status": "False",
    "reason": "Pending",
    "message": "couldn't assign flavors to pod set master: insufficient unused quota for "
    "nvidia.com/gpu in flavor gpu, 1 more needed",
}


def workload(*conditions: dict[str, str], active: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": "pytorchjob-job-1a2b3"},
        "spec": {"active": active},
        "status": {"conditions": list(conditions)},
    }


def held(suspended: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": "job"}, "spec": {"runPolicy": {"suspend": suspended}}}


@dataclass
class Case:
    name: str
    state: QueueState
    reason: str | None
    message: str = ""
    pytorchjob_suspended: bool = True


CASES = [
    Case(
        "Kueue not installed",
        QueueState(installed=False),
        "KueueNotInstalled",
        "Kueue is not installed",
    ),
    Case(
        "no such LocalQueue",
        QueueState(local_queue_found=False),
        "LocalQueueNotFound",
        "LocalQueue team-q does not exist",
    ),
    Case(
        "no Workload yet",
        QueueState(cluster_queue="gpus"),
        "WaitingForWorkload",
        "ClusterQueue gpus (LocalQueue team-q): waiting for Kueue to create the Workload",
    ),
    Case(
        "waiting for quota: Kueue's reason and message, the ClusterQueue named",
        QueueState(cluster_queue="gpus", workload=workload(PENDING_QUOTA)),
        "Pending",
        "ClusterQueue gpus (LocalQueue team-q): couldn't assign flavors to pod set master: "
        "insufficient unused quota for nvidia.com/gpu",
    ),
    Case(
        "quota reserved, not started yet",
        QueueState(
            cluster_queue="gpus",
            workload=workload(
                {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved"}
            ),
        ),
        "Admitting",
        "quota reserved",
    ),
    Case(
        "evicted by a higher priority",
        QueueState(
            cluster_queue="gpus",
            workload=workload(
                {
                    "type": "Evicted",
                    "status": "True",
                    "reason": "Preempted",
                    "message": "Preempted to accommodate a workload (UID: u) due to "
                    "prioritization in the ClusterQueue",
                },
                PENDING_QUOTA,
            ),
        ),
        "EvictedPreempted",
        "evicted by Kueue (Preempted): Preempted to accommodate a workload",
    ),
    Case(
        "admitted and running: not queued",
        QueueState(cluster_queue="gpus", workload=workload(PENDING_QUOTA)),
        None,
        pytorchjob_suspended=False,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_queued_reason(case: Case) -> None:
    got = queued("team-q", held(case.pytorchjob_suspended), case.state)
    if case.reason is None:
        assert got is None
        return
    assert got is not None, case.name
    reason, message = got
    assert reason == case.reason
    assert case.message in message, message


def queued_world(**paths: Any) -> World:
    """A queued job whose PyTorchJob Kueue holds (suspended), its LocalQueue present."""
    spec = {**QUEUED, **paths}
    world = World().with_spec(**spec).seen_before().with_pytorchjob(spec=spec, suspended=True)
    pytorchjob = world.cluster.objects[("PyTorchJob", "job")]
    pytorchjob["status"] = {"conditions": [{"type": "Suspended", "status": "True"}]}
    world.cluster.objects[("LocalQueue", "team-q")] = {"spec": {"clusterQueue": "gpus"}}
    return world


def test_a_job_waiting_for_quota_is_queued_with_kueues_reason() -> None:
    world = queued_world()
    world.watch.workloads["job"] = workload(PENDING_QUOTA)
    outcome = world.reconcile()
    assert outcome.phase == "Queued"
    queued_condition = next(c for c in outcome.status["conditions"] if c["type"] == "Queued")
    assert queued_condition["reason"] == "Pending"
    assert "ClusterQueue gpus" in queued_condition["message"]
    assert "insufficient unused quota for nvidia.com/gpu" in queued_condition["message"]
    assert world.cluster.writes() == []  # Kueue's suspend is left alone


@pytest.mark.parametrize(
    ("kueue", "local_queue", "reason"),
    [(False, True, "KueueNotInstalled"), (True, False, "LocalQueueNotFound")],
)
def test_misconfiguration_is_named(kueue: bool, local_queue: bool, reason: str) -> None:
    world = queued_world()
    world.cluster.kueue = kueue
    if not local_queue:
        del world.cluster.objects[("LocalQueue", "team-q")]
    outcome = world.reconcile()
    assert outcome.phase == "Queued"
    assert next(c for c in outcome.status["conditions"] if c["type"] == "Queued")["reason"] == (
        reason
    )


def test_the_operator_never_unsuspends_a_job_kueue_holds() -> None:
    world = queued_world()
    world.watch.workloads["job"] = workload(PENDING_QUOTA)
    world.reconcile()
    assert not [c for c in world.cluster.calls if c.startswith("patch PyTorchJob")]


def test_suspend_of_a_queued_job_deactivates_its_workload() -> None:
    world = queued_world(**{"spec.runPolicy.suspend": True})
    world.watch.workloads["job"] = workload(PENDING_QUOTA)
    outcome = world.reconcile()
    assert outcome.phase == "Suspended"
    assert world.cluster.writes() == ["patch Workload/pytorchjob-job-1a2b3 {'active': False}"]


def test_resume_of_a_queued_job_reactivates_its_workload() -> None:
    world = queued_world()
    world.watch.workloads["job"] = workload(PENDING_QUOTA, active=False)
    world.reconcile()
    assert world.cluster.writes() == ["patch Workload/pytorchjob-job-1a2b3 {'active': True}"]


def test_an_admitted_job_runs_as_any_other() -> None:
    spec = dict(QUEUED)
    world = World().with_spec(**spec).seen_before().with_pytorchjob(spec=spec, suspended=False)
    world.watch.workloads["job"] = workload(
        {"type": "Admitted", "status": "True", "reason": "Admitted"}
    )
    outcome = world.reconcile()
    assert outcome.phase == "Training"
    assert world.cluster.writes() == []
    assert "get LocalQueue/team-q" not in world.cluster.calls  # read only while held


def test_evictions_are_counted_and_kept_once_the_job_runs_again() -> None:
    """status.scheduling: Kueue's own count (the Workload's schedulingStats) while it holds the
    job; the same after it is admitted again and the Workload is no longer read."""
    world = queued_world()
    evicted = workload(
        {"type": "Evicted", "status": "True", "reason": "Preempted", "message": "m"},
        PENDING_QUOTA,
    )
    evicted["status"]["schedulingStats"] = {
        "evictions": [
            {"reason": "Preempted", "underlyingCause": "InClusterQueue", "count": 2},
            {"reason": "InactiveWorkload", "underlyingCause": "", "count": 1},
        ]
    }
    world.watch.workloads["job"] = evicted
    held_status = world.reconcile().status
    assert held_status["scheduling"] == {
        "clusterQueue": "gpus",
        "evictions": 3,
        "lastEvictionReason": "Preempted",
    }
    spec = dict(QUEUED)
    running = World().with_spec(**spec).seen_before().with_pytorchjob(spec=spec, suspended=False)
    running.job["status"] = held_status
    assert running.reconcile().status["scheduling"] == held_status["scheduling"]
