"""The handlers' pure parts: which FineTuneJob events need no reconcile, and the index copies
of the children (which must keep everything the status function reads)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from kubetune.api import parse_job
from kubetune.render import RenderSettings, render
from kubetune.render.metadata import JOB_LABEL
from kubetune.runtime.handlers import Indexed, pods_by_job, pytorchjobs_by_job, settled
from kubetune.runtime.observe import pod_state
from kubetune.runtime.reconcile import SPEC_HASH, spec_hash
from kubetune.runtime.status import Observed, compute_status
from tests.support.factories import make_job

NOW = "2026-11-22T00:00:00Z"
TRAINING = {"phase": "Training", "observedGeneration": 3}
BELOW = {"verdict": "belowFabric", "message": "NCCL is on TCP sockets"}
DEGRADED = {"type": "NetworkDegraded", "status": "True"}


def event(kind: str | None, generation: int, status: dict[str, Any]) -> dict[str, Any]:
    body = {"metadata": {"name": "job", "generation": generation}, "status": status}
    return {"type": kind, "object": body}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # our own status write, or the trainer's progress: nothing to do
        (event("MODIFIED", 3, {"phase": "Training", "observedGeneration": 3}), True),
        # the spec changed (suspend, or a change to refuse)
        (event("MODIFIED", 4, {"phase": "Training", "observedGeneration": 3}), False),
        # never reconciled (an interrupted first reconcile)
        (event("MODIFIED", 1, {}), False),
        # new, or listed when the operator starts: always reconciled
        (event("ADDED", 1, {}), False),
        (event(None, 3, {"phase": "Training", "observedGeneration": 3}), False),
        # the trainer's preflight found the fabric degraded: the condition must show it
        (event("MODIFIED", 3, {**TRAINING, "network": BELOW}), False),
        (event("MODIFIED", 3, {**TRAINING, "network": BELOW, "conditions": [DEGRADED]}), True),
        (event("MODIFIED", 3, {**TRAINING, "network": {"verdict": "ok"}}), True),
    ],
)
def test_settled_events_need_no_reconcile(raw: dict[str, Any], expected: bool) -> None:
    assert settled(raw) is expected


def index_value(index: Any, **kwargs: Any) -> Any:
    (key, value), *rest = asyncio.run(index(**kwargs)).items()
    assert not rest
    return key, value


def test_the_index_copy_of_a_pytorchjob_gives_the_same_status_as_the_whole_object() -> None:
    job = parse_job(make_job())
    pytorchjob = next(o for o in render(job, RenderSettings()) if o["kind"] == "PyTorchJob")
    pytorchjob["metadata"]["annotations"] = {SPEC_HASH: spec_hash(job), "other": "x"}
    pytorchjob["status"] = {
        "conditions": [
            {"type": "Created", "status": "True"},
            {"type": "Running", "status": "True", "message": "running"},
        ],
        "replicaStatuses": {"Master": {"active": 1}},
    }
    key, slim = index_value(
        pytorchjobs_by_job,
        namespace="team-a",
        name=pytorchjob["metadata"]["name"],
        labels=pytorchjob["metadata"]["labels"],
        body=copy.deepcopy(pytorchjob),
    )
    assert key == ("team-a", job.name)
    assert len(str(slim)) < len(str(pytorchjob)) / 5  # what memory holds per job
    indexed = Indexed(pytorchjobs_by_job={key: [slim]}, pods_by_job={}, claim_phases={})
    assert indexed.pytorchjob(job.name, "team-a") == slim
    assert indexed.pytorchjob("other", "team-a") is None
    whole, cut = (compute_status(job, Observed(pytorchjob=p), {}, NOW) for p in (pytorchjob, slim))
    assert whole == cut
    assert cut["phase"] == "Training"


def test_the_index_copy_of_a_pod_keeps_what_pod_state_reads() -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p-master-0", "uid": "u1", "labels": {JOB_LABEL: "job"}},
        "spec": {"containers": [{"name": "pytorch", "image": "x"}]},
        "status": {
            "phase": "Running",
            "initContainerStatuses": [
                {"name": "prepare", "state": {"terminated": {"exitCode": 2, "message": "no data"}}}
            ],
        },
    }
    key, slim = index_value(
        pods_by_job,
        namespace="team-a",
        name="p-master-0",
        uid="u1",
        labels={JOB_LABEL: "job"},
        status=pod["status"],
    )
    assert key == ("team-a", "job")
    assert pod_state(slim) == pod_state(pod)
    assert pod_state(slim).prepare_failure == "init container prepare exited with code 2: no data"
    pod["status"]["phase"] = "Failed"  # the copy does not follow later changes of the body
    assert slim["status"]["phase"] == "Running"
    indexed = Indexed(pytorchjobs_by_job={}, pods_by_job={key: [slim]}, claim_phases={})
    assert indexed.pods("job", "team-a") == [slim]
