"""The reconciler's world in memory, for tests/runtime/test_reconcile.py: `MemoryCluster` stands
in for the API server behind the `Cluster` protocol, `MemoryWatch` for the operator's watches,
and `World` builds a FineTuneJob with what the cluster and the watch hold. Mocks, used because
the reconcile table must run in milliseconds; tests/cluster/ proves the same wiring against a
real kube-apiserver and training-operator.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from kubetune.api import parse_job
from kubetune.render import RenderSettings, render
from kubetune.render.metadata import Obj
from kubetune.runtime.children import spec_hash
from kubetune.runtime.kube import NamespaceTerminating, Rejected
from kubetune.runtime.reconcile import Outcome, Reconciler
from kubetune.runtime.views import SPEC_HASH, PodView
from tests.support.factories import make_job

NS = "team-a"


def index_value(index: Any, **kwargs: Any) -> Any:
    """The one (key, value) a kopf index function returns for an object's fields."""
    (key, value), *rest = asyncio.run(index(**kwargs)).items()
    assert not rest
    return key, value


def raw_body(obj: Obj) -> kopf.RawBody:
    """A JSON object as kopf hands it to handlers (its RawBody types the JSON it parsed)."""
    return cast(kopf.RawBody, obj)


def raw_event(kind: kopf.RawEventType, obj: Obj) -> kopf.RawEvent:
    """A watch event as kopf hands it to handlers and filters."""
    return {"type": kind, "object": raw_body(obj)}


CHILDREN = [
    "PersistentVolumeClaim/job-workspace",
    "ConfigMap/job-trainer-config",
    "ServiceAccount/job.kubetune-reporter",
    "RoleBinding/job.kubetune-reporter",
    "PyTorchJob/job",
]


@dataclass
class MemoryCluster:
    """The API server, in memory: objects by (kind, name), and every call made."""

    objects: dict[tuple[str, str], Obj] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    rejects: dict[str, str] = field(default_factory=dict)
    terminating: bool = False
    kueue: bool = True
    """Kueue's API is served."""
    status_patches: list[Obj] = field(default_factory=list)
    """The status merge patches written, in order."""
    pending: dict[str, list[Obj]] | None = None
    """Kueue's visibility API: LocalQueue → its pending Workloads; None: not served."""

    def create(self, obj: Obj) -> Obj | None:
        key = (obj["kind"], obj["metadata"]["name"])
        self.calls.append(f"create {key[0]}/{key[1]}")
        if self.terminating:
            raise NamespaceTerminating(NS)
        if key[0] in self.rejects:
            raise Rejected(f"{key[0]}/{key[1]}", self.rejects[key[0]])
        if key in self.objects:
            return None
        self.objects[key] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    def apply(self, obj: Obj) -> Obj:
        key = (obj["kind"], obj["metadata"]["name"])
        self.calls.append(f"apply {key[0]}/{key[1]}")
        self.objects[key] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Obj | None:
        self.calls.append(f"get {kind}/{name}")
        found = self.objects.get((kind, name))
        return copy.deepcopy(found) if found is not None else None

    def patch_status(self, name: str, namespace: str, status: Obj) -> None:
        self.calls.append(f"status {name}")
        self.status_patches.append(copy.deepcopy(status))

    def patch(self, api_version: str, kind: str, name: str, namespace: str, body: Obj) -> None:
        self.calls.append(f"patch {kind}/{name} {body['spec']}")

    def serves(self, api_version: str) -> bool:
        return self.kueue or not api_version.startswith("kueue.x-k8s.io/")

    def pending_workloads(self, namespace: str, local_queue: str) -> list[Obj] | None:
        self.calls.append(f"get pendingworkloads/{local_queue}")
        if self.pending is None or local_queue not in self.pending:
            return None
        return copy.deepcopy(self.pending[local_queue])

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith(("get ", "status "))]


@dataclass
class MemoryWatch:
    """The operator's watches, in memory (reconcile.Watched)."""

    pytorchjobs: dict[str, Obj] = field(default_factory=dict)
    pod_list: list[Obj] = field(default_factory=list)
    claim: str | None = "Bound"
    workloads: dict[str, Obj] = field(default_factory=dict)

    def pytorchjob(self, job: str, namespace: str) -> Obj | None:
        return self.pytorchjobs.get(job)

    def pods(self, job: str, namespace: str) -> list[PodView]:
        return [PodView.of(p) for p in self.pod_list]

    def claim_phase(self, claim: str, namespace: str) -> str | None:
        return self.claim

    def workload(self, pytorchjob: str, namespace: str) -> Obj | None:
        return self.workloads.get(pytorchjob)


class World:
    """A fluent builder: a FineTuneJob, its status and what the cluster and the watch hold."""

    def __init__(self) -> None:
        self.job: Obj = make_job()
        self.cluster = MemoryCluster()
        self.watch = MemoryWatch()
        self.event_pod: Obj | None = None
        self.event_warning: Obj | None = None

    def with_spec(self, **paths: Any) -> World:
        self.job = make_job(**paths)
        return self

    def seen_before(self, phase: str = "Pending", reason: str = "Starting") -> World:
        condition = {"type": phase, "status": "True", "reason": reason, "message": "m"}
        self.job["status"] = {"phase": phase, "conditions": [condition]}
        return self

    def finished(self) -> World:
        return self.seen_before("Succeeded", "TrainingSucceeded")

    def with_pytorchjob(
        self, *, in_watch: bool = True, spec: Obj | None = None, suspended: bool = False
    ) -> World:
        job = parse_job(make_job(**(spec or {})))
        pytorchjob = next(o for o in render(job, RenderSettings()) if o["kind"] == "PyTorchJob")
        pytorchjob["metadata"]["annotations"] = {SPEC_HASH: spec_hash(job)}
        pytorchjob["spec"].setdefault("runPolicy", {})["suspend"] = suspended
        pytorchjob["status"] = {"conditions": [{"type": "Running", "status": "True"}]}
        self.cluster.objects[("PyTorchJob", "job")] = pytorchjob
        if in_watch:
            self.watch.pytorchjobs["job"] = pytorchjob
        return self

    def with_child(self, kind: str, name: str) -> World:
        self.cluster.objects[(kind, name)] = {"kind": kind, "metadata": {"name": name}}
        return self

    def with_upstream(self, phase: str | None, starts_from: str | None = None) -> World:
        self.job = make_job(**{"spec.model": {"fromJob": {"name": "sft"}}})
        if phase is not None:
            upstream: Obj = {"status": {"phase": phase}}
            if starts_from is not None:
                upstream["spec"] = {"model": {"fromJob": {"name": starts_from}}}
            self.cluster.objects[("FineTuneJob", "sft")] = upstream
        return self

    def with_stage(self, name: str, starts_from: str) -> World:
        self.cluster.objects[("FineTuneJob", name)] = {
            "spec": {"model": {"fromJob": {"name": starts_from}}},
            "status": {"phase": "Pending"},
        }
        return self

    def with_warning(self, reason: str, message: str) -> World:
        """The training-operator's Event on the PyTorchJob (v1 Event, as the watch gives it)."""
        self.event_warning = {
            "reason": reason,
            "message": f"Error creating: {message}",
            "involvedObject": {"kind": "PyTorchJob", "name": "job"},
        }
        return self

    def with_failed_prepare(self) -> World:
        exit1 = {"terminated": {"exitCode": 1, "message": "kubetune prepare: no usable samples"}}
        self.event_pod = {
            "metadata": {"name": "job-master-0", "uid": "u1"},
            "status": {
                "phase": "Failed",
                "initContainerStatuses": [{"name": "prepare", "state": exit1}],
            },
        }
        return self

    def rejecting(
        self, kind: str, message: str = "ConfigMap job is invalid: data: Too long"
    ) -> World:
        self.cluster.rejects[kind] = message
        return self

    def terminating(self) -> World:
        self.cluster.terminating = True
        return self

    def reconcile(self) -> Outcome:
        reconciler = Reconciler(self.cluster, RenderSettings())
        return reconciler.reconcile(
            copy.deepcopy(self.job),
            self.watch,
            event_pod=self.event_pod,
            event_warning=self.event_warning,
        )
