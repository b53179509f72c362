"""Jobs under Kueue (spec.scheduling.queue): the `Queued` phase from Kueue's Workload, and a
suspend that goes through the Workload's `spec.active`, never the PyTorchJob's `suspend`.

A table over the in-memory cluster and watches (mocks, milliseconds); tests/cluster/test_kueue.py
runs the same against real Kueue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from kubetune.render import RenderSettings
from kubetune.runtime import kube as kube_module
from kubetune.runtime.kube import Kube
from kubetune.runtime.kueue import QueuePosition, QueueState, position_of, queued
from kubetune.runtime.reconcile import Reconciler
from kubetune_api.status import FineTuneJobStatus
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


# --- the position in the queue (Kueue's visibility API) ---------------------------------------


def pending_item(name: str, in_cluster_queue: int, in_local_queue: int) -> dict[str, Any]:
    """One of `pendingworkloads`' items as Kueue v0.17's visibility API words it
    (apis/visibility/v1beta2/types.go: PendingWorkload; positions counted from 0)."""
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "priority": 0,
        "localQueueName": "team-q",
        "positionInClusterQueue": in_cluster_queue,
        "positionInLocalQueue": in_local_queue,
    }


def test_the_position_counts_from_one_and_only_for_a_pending_workload() -> None:
    pending = [pending_item("other", 0, 0), pending_item("pytorchjob-job-1a2b3", 2, 1)]
    assert position_of(pending, "pytorchjob-job-1a2b3") == QueuePosition(3, 2)
    assert position_of(pending, "admitted-meanwhile") is None
    assert position_of([], "pytorchjob-job-1a2b3") is None
    assert position_of(None, "pytorchjob-job-1a2b3") is None  # the API did not answer


def test_the_message_gives_the_position_before_kueues_own() -> None:
    state = QueueState(
        cluster_queue="gpus", workload=workload(PENDING_QUOTA), position=QueuePosition(3, 2)
    )
    assert queued("team-q", held(), state) == (
        "Pending",
        "ClusterQueue gpus (LocalQueue team-q), position 3 in the ClusterQueue, 2 in the "
        "LocalQueue: couldn't assign flavors to pod set master: insufficient unused quota for "
        "nvidia.com/gpu in flavor gpu, 1 more needed",
    )


def test_a_pending_job_shows_its_position_on_the_status_and_the_condition() -> None:
    world = queued_world()
    world.watch.workloads["job"] = workload(PENDING_QUOTA)
    world.cluster.pending = {"team-q": [pending_item("pytorchjob-job-1a2b3", 1, 0)]}
    outcome = world.reconcile()
    assert outcome.phase == "Queued"
    assert outcome.status["scheduling"] == {
        "clusterQueue": "gpus",
        "position": {"clusterQueue": 2, "localQueue": 1},
    }
    FineTuneJobStatus.model_validate(outcome.status)  # the status schema takes it
    message = next(c for c in outcome.status["conditions"] if c["type"] == "Queued")["message"]
    assert "position 2 in the ClusterQueue, 1 in the LocalQueue: couldn't assign" in message
    assert world.cluster.writes() == []


def test_without_the_visibility_api_a_job_is_queued_without_a_position() -> None:
    """The local control plane serves no visibility API: Kueue's reason, no position."""
    world = queued_world()
    world.watch.workloads["job"] = workload(PENDING_QUOTA)
    outcome = world.reconcile()
    assert outcome.phase == "Queued"
    assert outcome.status["scheduling"] == {"clusterQueue": "gpus"}
    queued_condition = next(c for c in outcome.status["conditions"] if c["type"] == "Queued")
    assert queued_condition["reason"] == "Pending"
    assert "position" not in queued_condition["message"]


def test_the_position_goes_once_the_job_is_admitted() -> None:
    """Kueue reserved quota: no longer pending, so the position is dropped, and the status
    merge patch says so with a null (a missing key would leave the old position in place)."""
    world = queued_world()
    world.job["status"]["scheduling"] = {
        "clusterQueue": "gpus",
        "position": {"clusterQueue": 1, "localQueue": 1},
    }
    world.watch.workloads["job"] = workload(
        {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved"}
    )
    world.cluster.pending = {"team-q": []}
    outcome = world.reconcile()
    assert outcome.status["scheduling"] == {"clusterQueue": "gpus"}
    assert world.cluster.status_patches[-1]["scheduling"] == {
        "clusterQueue": "gpus",
        "position": None,
    }


def queued_body(shown: dict[str, int] | None) -> dict[str, Any]:
    scheduling: dict[str, Any] = {"clusterQueue": "gpus"}
    if shown is not None:
        scheduling["position"] = shown
    return {
        "metadata": {"name": "job", "namespace": "ns"},
        "spec": {"scheduling": {"queue": "team-q"}},
        "status": {"phase": "Queued", "pytorchJobName": "job", "scheduling": scheduling},
    }


@pytest.mark.parametrize(
    ("pending", "shown", "moved"),
    [
        ([pending_item("pytorchjob-job-1a2b3", 0, 0)], {"clusterQueue": 2, "localQueue": 1}, True),
        ([pending_item("pytorchjob-job-1a2b3", 1, 0)], {"clusterQueue": 2, "localQueue": 1}, False),
        ([], {"clusterQueue": 1, "localQueue": 1}, True),  # admitted meanwhile
        (None, None, False),  # no visibility API: nothing to refresh, no reconcile
    ],
)
def test_the_timer_reconciles_only_when_the_position_moved(
    pending: list[dict[str, Any]] | None, shown: dict[str, int] | None, moved: bool
) -> None:
    world = queued_world()
    world.watch.workloads["job"] = workload(PENDING_QUOTA)
    world.cluster.pending = None if pending is None else {"team-q": pending}
    reconciler = Reconciler(world.cluster, RenderSettings())
    assert reconciler.queue_position_moved(queued_body(shown), world.watch) is moved
    assert world.cluster.writes() == []


def test_an_unanswering_visibility_api_is_logged_once_and_read_at_most_every_few_seconds(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Kube client against an API server without Kueue's APIService (a 404, as on the
    local control plane): None, one log line for any number of queued jobs and timer ticks,
    and one request per LocalQueue per PENDING_TTL_S."""
    requests: list[str] = []

    def not_served(method: str, url: str, *_: Any, **__: Any) -> dict[str, Any]:
        requests.append(url)
        raise ApiException(status=404, reason="Not Found")

    kube = Kube(api=None)  # type: ignore[arg-type]
    monkeypatch.setattr(kube, "_call", not_served)
    clock = [100.0]
    monkeypatch.setattr("kubetune.runtime.kube.time.monotonic", lambda: clock[0])
    with caplog.at_level(logging.INFO, logger=kube_module.__name__):
        for _ in range(3):
            assert kube.pending_workloads("ns", "team-q") is None
        clock[0] += kube_module.PENDING_TTL_S
        assert kube.pending_workloads("ns", "team-q") is None
        assert kube.pending_workloads("ns", "other-q") is None
    assert len(requests) == 3  # team-q twice (the cache expired once), other-q once
    assert requests[0] == (
        "/apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/ns/localqueues/team-q/pendingworkloads"
    )
    logged = [r for r in caplog.records if "visibility API" in r.getMessage()]
    assert len(logged) == 1, logged
