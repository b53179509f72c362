"""The watched objects kopf holds, cut by runtime/slim.py: the handlers, filters and indexes read
the same from a cut body as from the whole one, and kopf's queueing reads through the cut."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any, cast

import kopf
import pytest
from kopf._cogs.clients import watching
from kopf._cogs.structs import bodies, references
from kopf._core.reactor import processing
from kopf._core.reactor.inventory import ResourceMemories

from kubetune.api import parse_job
from kubetune.render import RenderSettings, render
from kubetune.runtime import readiness, slim
from kubetune.runtime.children import spec_hash
from kubetune.runtime.indexes import claim_phases, pytorchjobs_by_job
from kubetune.runtime.kueue import holds
from kubetune.runtime.status import Observed, compute_status
from kubetune.runtime.views import SPEC_HASH, PyTorchJobView
from tests.support.factories import make_job
from tests.support.memory_cluster import index_value

NOW = "2026-11-22T00:00:00Z"
# The shape of the API server's bookkeeping (one entry as kube-apiserver 1.35 returns it).
MANAGED = [
    {
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": {"f:phase": {}, "f:capacity": {".": {}, "f:storage": {}}}},
        "manager": "kube-controller-manager",
        "operation": "Update",
        "subresource": "status",
        "time": "2026-12-07T08:42:01Z",
    }
]


def children() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    job = parse_job(make_job())
    objects = render(job, RenderSettings())
    pytorchjob = next(o for o in objects if o["kind"] == "PyTorchJob")
    claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    pytorchjob["metadata"] |= {"uid": "u-ptj", "managedFields": copy.deepcopy(MANAGED)}
    pytorchjob["metadata"]["annotations"] = {SPEC_HASH: spec_hash(job)}
    pytorchjob["spec"]["runPolicy"]["suspend"] = True
    pytorchjob["status"] = {
        "conditions": [
            {"type": "Created", "status": "True", "message": "created"},
            {"type": "Suspended", "status": "True", "message": "suspended"},
        ]
    }
    claim["metadata"] |= {"uid": "u-pvc", "managedFields": copy.deepcopy(MANAGED)}
    claim["status"] = {"phase": "Bound", "capacity": {"storage": "10Ti"}}
    return job, pytorchjob, claim


def test_a_cut_pytorchjob_reads_the_same_and_keeps_its_run_policy() -> None:
    job, whole, _ = children()
    cut = copy.deepcopy(whole)
    slim.slim("kubeflow.org", "pytorchjobs", cut)
    assert "managedFields" not in cut["metadata"]
    assert cut["spec"] == {"runPolicy": whole["spec"]["runPolicy"]}  # the templates are gone
    assert {k: v for k, v in cut["metadata"].items()} == {
        k: v for k, v in whole["metadata"].items() if k != "managedFields"
    }
    assert cut["status"] == whole["status"]
    assert PyTorchJobView.of(cut) == PyTorchJobView.of(whole)
    assert holds(cut) is holds(whole) is True
    statuses = (compute_status(job, Observed(pytorchjob=p), {}, NOW) for p in (whole, cut))
    assert next(statuses) == next(statuses)
    labels = whole["metadata"]["labels"]
    indexed = (
        index_value(pytorchjobs_by_job, namespace="ns", labels=labels, body=b) for b in (whole, cut)
    )
    assert next(indexed) == next(indexed)


def test_a_cut_claim_keeps_its_phase_and_other_kinds_lose_only_managed_fields() -> None:
    _, _, whole = children()
    cut = copy.deepcopy(whole)
    slim.slim("", "persistentvolumeclaims", cut)
    assert "spec" not in cut and cut["status"] == whole["status"]
    name = whole["metadata"]["name"]
    assert index_value(claim_phases, namespace="ns", name=name, status=cut["status"]) == (
        ("ns", name),
        "Bound",
    )
    job = make_job()
    job["metadata"]["managedFields"] = copy.deepcopy(MANAGED)
    kept = copy.deepcopy(job)
    slim.slim("kubetune.io", "finetunejobs", kept)
    del job["metadata"]["managedFields"]
    assert kept == job


def test_kopfs_queueing_reads_its_streams_through_the_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """What kopf's queueing calls after install(), with kopf's own stream replaced by a script:
    objects are cut, Bookmarks and a watch ERROR's Status pass as they are, and closing the
    outer stream closes kopf's."""
    from kopf._core.reactor import queueing

    assert vars(queueing)["watching"] is watching  # queueing calls it through the module
    _, pytorchjob, _ = children()
    error = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "metadata": {}}}
    script = [
        {"type": None, "object": copy.deepcopy(pytorchjob)},
        watching.Bookmark.LISTED,
        error,
        {"type": "MODIFIED", "object": copy.deepcopy(pytorchjob)},
    ]
    closed = []

    async def scripted(**_: Any) -> AsyncIterator[Any]:
        try:
            for item in script:
                yield item
            await asyncio.sleep(3600)  # a watch that stays open
        finally:
            closed.append(True)

    monkeypatch.setattr(slim, "_ORIGINAL", scripted)
    monkeypatch.setattr(watching, "infinite_watch", watching.infinite_watch)  # restored after
    monkeypatch.setattr(processing, "process_resource_event", processing.process_resource_event)
    monkeypatch.setattr(slim, "_PROCESS", slim._PROCESS)
    slim.install()
    assert watching.infinite_watch is slim.slim_watch

    resource = references.Resource("kubeflow.org", "v1", "pytorchjobs")

    async def read() -> list[Any]:
        stream: Any = watching.infinite_watch(
            settings=kopf.OperatorSettings(), resource=resource, namespace=None
        )
        seen = [await anext(stream) for _ in script]
        await stream.aclose()
        return seen

    listed, bookmark, status, modified = asyncio.run(read())
    assert closed == [True]
    assert bookmark is watching.Bookmark.LISTED and status == error
    for event in (listed, modified):
        assert "managedFields" not in event["object"]["metadata"]
        assert event["object"]["spec"] == {"runPolicy": pytorchjob["spec"]["runPolicy"]}


def test_an_objects_body_is_let_go_after_each_event_unless_a_timer_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through both wrappers, as main() installs them (the gate's, then this one): kopf's
    processing keeps the body for the object's timers (as kopf's process_spawning_cause does);
    after the event it is gone, unless a timer of the object runs."""
    for module, name in ((processing, "process_resource_event"), (slim, "_PROCESS")):
        monkeypatch.setattr(module, name, getattr(module, name))
    monkeypatch.setattr(readiness, "_PROCESS", readiness._PROCESS)
    memories = ResourceMemories()
    calls = []

    async def kopfs(*, memories: ResourceMemories, raw_event: Any, **_: Any) -> None:
        memory = await memories.recall(raw_event["object"])
        memory.daemons_memory.live_fresh_body = bodies.Body(raw_event["object"])
        calls.append(raw_event["type"])

    monkeypatch.setattr(processing, "process_resource_event", kopfs)
    readiness.install()
    slim.install()
    slim.install()  # idempotent
    job: Any = {"metadata": {"uid": "u1", "name": "j", "namespace": "ns"}, "status": {}}

    async def event(kind: str | None) -> Any:
        process: Any = processing.process_resource_event
        await process(
            registry=None,
            resource=None,
            memories=memories,
            raw_event={"type": kind, "object": job},
            operator_indexed=None,
        )
        return (await memories.recall(job)).daemons_memory

    held = asyncio.run(event("ADDED"))
    assert calls == ["ADDED"] and held.live_fresh_body is None
    held.running_daemons[cast(Any, "queue_position")] = cast(Any, object())
    assert asyncio.run(event("MODIFIED")).live_fresh_body is not None
    assert calls == ["ADDED", "MODIFIED"]
