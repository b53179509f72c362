"""The handlers' pure parts: which FineTuneJob events need no reconcile, and the index copies
of the children (which must keep everything the status function reads)."""

from __future__ import annotations

import copy
import sys
from typing import Any, cast

import kopf
import pytest

from kubetune.api import parse_job
from kubetune.render import RenderSettings, render
from kubetune.render.metadata import JOB_LABEL
from kubetune.runtime.children import spec_hash
from kubetune.runtime.event_filters import pytorchjob_news, settled
from kubetune.runtime.indexes import Indexed, pods_by_job, pytorchjobs_by_job
from kubetune.runtime.observe import pod_state
from kubetune.runtime.status import Observed, compute_status
from kubetune.runtime.views import SPEC_HASH, PodView, PyTorchJobView
from tests.support.factories import make_job
from tests.support.memory_cluster import index_value, raw_body, raw_event

NOW = "2026-11-22T00:00:00Z"
TRAINING = {"phase": "Training", "observedGeneration": 3}
BELOW = {"verdict": "belowFabric", "message": "NCCL is on TCP sockets"}
DEGRADED = {"type": "NetworkDegraded", "status": "True"}
SUCCEEDED_JOB = {
    "phase": "Succeeded",
    "conditions": [{"type": "Succeeded", "status": "True", "reason": "TrainingSucceeded"}],
}
REFUSED_JOB = {
    "phase": "Failed",
    "conditions": [{"type": "Failed", "status": "True", "reason": "ChildRejected"}],
}
INVALID_JOB = {
    "phase": "Failed",
    "conditions": [{"type": "Failed", "status": "True", "reason": "InvalidSpec"}],
}


def event(kind: kopf.RawEventType, generation: int, status: dict[str, Any]) -> kopf.RawEvent:
    body = {"metadata": {"name": "job", "generation": generation}, "status": status}
    return raw_event(kind, body)


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
        # ... except a finished job: its status is final, whatever its children did meanwhile
        (event(None, 3, {**SUCCEEDED_JOB, "observedGeneration": 3}), True),
        (event(None, 4, {**SUCCEEDED_JOB, "observedGeneration": 3}), False),  # edited since
        (event(None, 3, {**REFUSED_JOB, "observedGeneration": 3}), True),
        (event(None, 3, {**INVALID_JOB, "observedGeneration": 3}), False),  # decided again
        # the trainer's preflight found the fabric degraded: the condition must show it
        (event("MODIFIED", 3, {**TRAINING, "network": BELOW}), False),
        (event("MODIFIED", 3, {**TRAINING, "network": BELOW, "conditions": [DEGRADED]}), True),
        (event("MODIFIED", 3, {**TRAINING, "network": {"verdict": "ok"}}), True),
    ],
)
def test_settled_events_need_no_reconcile(raw: kopf.RawEvent, expected: bool) -> None:
    assert settled(raw) is expected


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
    key, view = index_value(
        pytorchjobs_by_job,
        namespace="team-a",
        labels=pytorchjob["metadata"]["labels"],
        body=copy.deepcopy(pytorchjob),
    )
    assert key == ("team-a", job.name)
    assert isinstance(view, PyTorchJobView)
    # What memory holds per job: a few hundred bytes, not the body's tens of KiB.
    assert deep_size(view) < deep_size(pytorchjob) / 20, (deep_size(view), deep_size(pytorchjob))
    indexed = Indexed(pytorchjobs_by_job={key: [view]}, pods_by_job={}, claim_phases={})
    slim = indexed.pytorchjob(job.name, "team-a")
    assert slim is not None
    assert indexed.pytorchjob("other", "team-a") is None
    whole, cut = (compute_status(job, Observed(pytorchjob=p), {}, NOW) for p in (pytorchjob, slim))
    assert whole == cut
    assert cut["phase"] == "Training"
    assert slim["metadata"]["annotations"][SPEC_HASH] == spec_hash(job)
    assert slim["spec"]["runPolicy"]["suspend"] == pytorchjob["spec"]["runPolicy"].get("suspend")


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
    assert slim == PodView("u1", pod_state(pod))
    assert slim.state.prepare_failure == "init container prepare exited with code 2: no data"
    pod["status"]["phase"] = "Failed"  # the copy does not follow later changes of the body
    assert slim.state.phase == "Running"
    indexed = Indexed(pytorchjobs_by_job={}, pods_by_job={key: [slim]}, claim_phases={})
    assert indexed.pods("job", "team-a") == [slim]


def deep_size(obj: Any) -> int:
    """Bytes of an object and everything it holds (each object counted once)."""
    seen: set[int] = set()

    def size(o: Any) -> int:
        if id(o) in seen:
            return 0
        seen.add(id(o))
        inner: Any = ()
        if isinstance(o, dict):
            inner = [*o.keys(), *o.values()]
        elif isinstance(o, list | tuple | set):
            inner = o
        return sys.getsizeof(o) + sum(size(i) for i in inner)

    return size(obj)


def test_a_pytorchjob_event_the_last_reconcile_already_read_is_dropped() -> None:
    job = parse_job(make_job(**{"spec.runPolicy.suspend": True}))
    pytorchjob = next(o for o in render(job, RenderSettings()) if o["kind"] == "PyTorchJob")
    pytorchjob["metadata"]["annotations"] = {SPEC_HASH: spec_hash(job)}
    memo = kopf.Memo(reconciled_with={})

    def news(*conditions: tuple[str, str]) -> bool:
        body = copy.deepcopy(pytorchjob)
        body["status"] = {
            "conditions": [{"type": t, "status": "True", "message": m} for t, m in conditions]
        }
        return bool(
            pytorchjob_news(
                event=raw_event("MODIFIED", body), body=kopf.Body(raw_body(body)), memo=memo
            )
        )

    assert not news()  # just created, no conditions
    assert news(("Created", "created"))  # never reconciled by this operator: read it
    listed = {**pytorchjob, "status": {"conditions": [SUCCEEDED]}}
    # listed when the operator starts, before its job was reconciled: the job's listing will be
    assert not pytorchjob_news(
        event=raw_event(None, listed), body=kopf.Body(raw_body(listed)), memo=memo
    )
    # The reconcile that created it read it without conditions (handlers._reconcile records it).
    memo.reconciled_with[("team-a", job.name)] = PyTorchJobView.of(pytorchjob).digest()
    assert not news(("Created", "created"))  # the training-operator's Created: nothing to read
    assert news(("Created", "created"), ("Suspended", "suspended"))
    assert pytorchjob_news(
        event=raw_event("DELETED", pytorchjob), body=kopf.Body(raw_body(pytorchjob)), memo=memo
    )
    done = PyTorchJobView.of({**pytorchjob, "status": {"conditions": [SUCCEEDED]}})
    memo.reconciled_with[("team-a", job.name)] = done.digest()
    assert not news(("Succeeded", "done"), ("Created", "created"))
    assert news(("Succeeded", "done at last"))  # a different message is a different status
    # relisted after a broken watch: it changed meanwhile (the job read it Suspended)
    memo.reconciled_with[("team-a", job.name)] = PyTorchJobView.of(pytorchjob).digest()
    assert pytorchjob_news(
        event=raw_event(None, listed), body=kopf.Body(raw_body(listed)), memo=memo
    )


SUCCEEDED = {"type": "Succeeded", "status": "True", "message": "done"}


def test_every_handler_of_a_server_side_filtered_kind_asks_for_a_subset_of_it() -> None:
    """The selectors of `settings.watching` hide objects from every handler of their kind: a
    handler or index on those kinds must itself need the selected label, and the one handler
    of Events must itself need a PyTorchJob's Event (its Warnings are what the selector keeps)."""
    import kubetune.runtime.handlers  # noqa: F401  (registers the handlers and indexes)
    from kubetune.runtime.event_filters import FIELD_SELECTORS, LABEL_SELECTORS, create_failure

    registry = kopf.get_default_registry()
    handlers = [
        h
        for sub in (registry._watching, registry._indexing, registry._spawning)
        for h in sub.get_all_handlers()
    ]

    def of(resource: tuple[str, str, str]) -> list[Any]:
        group, version, plural = resource
        return [
            h
            for h in handlers
            if h.selector is not None
            and (h.selector.group, h.selector.version, h.selector.any_name)
            == (group, version, plural)
        ]

    for resource, label in LABEL_SELECTORS.items():
        assert of(resource), resource  # a selector for a kind nothing watches is a typo
        for handler in of(resource):
            assert label in (handler.labels or {}), (resource, handler.id)
    (events,) = FIELD_SELECTORS
    assert FIELD_SELECTORS[events] == "involvedObject.kind=PyTorchJob,type=Warning"
    assert [h.when for h in of(events)] == [create_failure]
    other = {"involvedObject": {"kind": "PersistentVolumeClaim"}, "reason": "FailedCreatePod"}
    assert not create_failure(kopf.Body(cast(kopf.RawBody, other)))
