"""kopf handlers: thin. Every event on a FineTuneJob's PyTorchJob or pods, and every change
of its spec, reconciles the FineTuneJob (level-triggered); when a job's phase changes, the
stages that start from it are reconciled too.

What the reconciles read — PyTorchJobs, pods, claims, which stages follow which job — comes
from kopf indexes fed by the operator's own watches, kept small (only the fields the status
function reads), instead of a GET and a LIST per reconcile.

Only event handlers and indexes are used, so kopf writes no annotations or finalizers of its
own and keeps no per-object tasks: children go by garbage collection through their owner
references.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import kopf

from kubetune.api.job import API_VERSION, GROUP, KIND, PLURAL, VERSION
from kubetune.render import RenderSettings
from kubetune.render.metadata import JOB_LABEL, Obj
from kubetune.runtime import metrics
from kubetune.runtime.kube import Kube, NamespaceTerminating
from kubetune.runtime.reconcile import CREATE_FAILURES, PYTORCHJOB, SPEC_HASH, Reconciler
from kubetune.runtime.status import NETWORK_CONDITION, network_degraded


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Watches end server-side every few minutes and are re-established; a client timeout
    # slightly longer catches half-dead connections.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    settings.posting.level = logging.WARNING  # our own Events carry the transitions
    settings.execution.max_workers = memo.get("workers", 16)
    # No limit on the objects in flight per watch (kopf's default). A limit (64 was tried, for
    # a lower RSS after a 1,000-job burst: 209 → 115 MiB) deadlocks at start-up with more
    # objects of an indexed kind than the limit: every worker waits for all indexes to be
    # filled while holding a slot the rest need (kopf issue #1243; tests/cluster/test_faults.py
    # found it: a restarted operator with 200 jobs never reconciled one). An idle worker frees
    # its slot after 1 s instead of kopf's 5 s.
    settings.queueing.idle_timeout = 1.0
    memo.reconciler = Reconciler(Kube.connect(), RenderSettings(trainer_image=memo.trainer_image))


Key = tuple[str | None, str]  # (namespace, name)


@dataclass
class Indexed:
    """The reconciler's view of the children, from the indexes below (see reconcile.Watched)."""

    pytorchjobs_by_job: Mapping[Key, Collection[Obj]]  # a kopf.Index: key → its objects' values
    pods_by_job: Mapping[Key, Collection[Obj]]
    claim_phases: Mapping[Key, Collection[str | None]]
    workloads_by_pytorchjob: Mapping[Key, Collection[Obj]] = field(default_factory=dict)

    def pytorchjob(self, job: str, namespace: str) -> Obj | None:
        return next(iter(self.pytorchjobs_by_job.get((namespace, job), [])), None)

    def pods(self, job: str, namespace: str) -> list[Obj]:
        return list(self.pods_by_job.get((namespace, job), []))

    def claim_phase(self, claim: str, namespace: str) -> str | None:
        return next(iter(self.claim_phases.get((namespace, claim), [])), None)

    def workload(self, pytorchjob: str, namespace: str) -> Obj | None:
        return next(iter(self.workloads_by_pytorchjob.get((namespace, pytorchjob), [])), None)


@dataclass
class Call:
    """One handler call: the operator's memo, its logger, and the indexes it reads."""

    memo: kopf.Memo
    logger: kopf.Logger
    indexed: Indexed
    stages_after: kopf.Index[Key, str]


def _reconcile(
    call: Call, body: Any, pod: Any = None, pytorchjob: Any = None, warning: Any = None
) -> str | None:
    """Reconcile one FineTuneJob; returns its phase when it changed."""
    started = time.monotonic()
    try:
        outcome = call.memo.reconciler.reconcile(
            dict(body),
            call.indexed,
            event_pod=dict(pod) if pod is not None else None,
            event_pytorchjob=dict(pytorchjob) if pytorchjob is not None else None,
            event_warning=dict(warning) if warning is not None else None,
        )
    except NamespaceTerminating:
        # Its children went first (a namespace deletion): recreating them is neither possible
        # nor wanted; the FineTuneJob goes next.
        call.logger.debug("namespace terminating: not recreating children")
        return None
    except Exception:
        metrics.reconcile_errors.inc()
        raise
    finally:
        metrics.reconcile_seconds.observe(time.monotonic() - started)
    metrics.children_created.inc(len(outcome.created))
    metrics.record_phase(body["metadata"]["uid"], outcome.phase)
    if outcome.created:
        call.logger.info(f"created {', '.join(outcome.created)}")
    if outcome.phase != outcome.previous_phase:
        level = "Warning" if outcome.phase == "Failed" else "Normal"
        metrics.api_writes.labels(verb="event").inc()
        kopf.event(
            body,
            type=level,
            reason=outcome.phase or "Unknown",
            message=f"phase {outcome.previous_phase or 'none'} → {outcome.phase}",
        )
        return str(outcome.phase)
    return None


@kopf.index(GROUP, VERSION, PLURAL)
async def stages_after(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> Any:
    """(namespace, job) → the FineTuneJobs whose model comes from that job."""
    source = (spec.get("model") or {}).get("fromJob") or {}
    return {(namespace, source["name"]): name} if source.get("name") else None


@kopf.index("kubeflow.org", "v1", "pytorchjobs", labels={JOB_LABEL: kopf.PRESENT})
async def pytorchjobs_by_job(
    namespace: str | None, name: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> Any:
    """(namespace, job) → its PyTorchJob, cut to what the reconciler reads."""
    annotations = body["metadata"].get("annotations") or {}
    return {
        (namespace, labels[JOB_LABEL]): {
            "metadata": {"name": name, "annotations": {SPEC_HASH: annotations.get(SPEC_HASH)}},
            "spec": {"runPolicy": {"suspend": body["spec"].get("runPolicy", {}).get("suspend")}},
            "status": {"conditions": copy.deepcopy(body.get("status", {}).get("conditions", []))},
        }
    }


@kopf.index("", "v1", "pods", labels={JOB_LABEL: kopf.PRESENT})
async def pods_by_job(
    namespace: str | None, name: str, uid: str, labels: kopf.Labels, status: kopf.Status, **_: Any
) -> Any:
    """(namespace, job) → its pods: name, uid and status (what the phase rules read)."""
    pod = {"metadata": {"name": name, "uid": uid}, "status": copy.deepcopy(dict(status))}
    return {(namespace, labels[JOB_LABEL]): pod}


@kopf.index("", "v1", "persistentvolumeclaims")
async def claim_phases(namespace: str | None, name: str, status: kopf.Status, **_: Any) -> Any:
    """(namespace, claim) → its phase (Pending until bound)."""
    return {(namespace, name): status.get("phase")}


def _owning_pytorchjob(body: kopf.Body) -> str | None:
    """The PyTorchJob that owns a Kueue Workload (Kueue's PyTorchJob integration sets it)."""
    for ref in body["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "PyTorchJob" and ref.get("apiVersion") == PYTORCHJOB[0]:
            return str(ref["name"])
    return None


# Kueue's Workloads: served only where Kueue is installed; kopf watches them once its CRD
# appears (and not at all without it).
@kopf.index("kueue.x-k8s.io", "v1beta2", "workloads")
async def workloads_by_pytorchjob(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    """(namespace, PyTorchJob) → its Workload, cut to what runtime/kueue.py reads."""
    owner = _owning_pytorchjob(body)
    if owner is None:
        return None
    status = body.get("status") or {}
    return {
        (namespace, owner): {
            "metadata": {"name": body["metadata"]["name"]},
            "spec": {"active": (body.get("spec") or {}).get("active", True)},
            "status": {
                "conditions": copy.deepcopy(status.get("conditions") or []),
                "schedulingStats": copy.deepcopy(status.get("schedulingStats") or {}),
            },
        }
    }


def _reconcile_and_follow(
    call: Call, body: Any, pod: Any = None, pytorchjob: Any = None, warning: Any = None
) -> None:
    """Reconcile a job; if its phase changed (whichever event showed it), reconcile the stages
    that start from it: their wait is over, or their waiting message is stale."""
    if _reconcile(call, body, pod, pytorchjob, warning) is None:
        return
    namespace = body["metadata"]["namespace"]
    for name in call.stages_after.get((namespace, body["metadata"]["name"]), []):
        after = call.memo.reconciler.cluster.get(API_VERSION, KIND, name, namespace)
        if after is not None and not after["metadata"].get("deletionTimestamp"):
            _reconcile(call, after)


def settled(event: kopf.RawEvent) -> bool:
    """A change of status or metadata only (our own status write, the trainer's progress):
    the spec was already reconciled, and the children's events cover the rest. Not settled: a
    preflight finding (`status.network`) that the NetworkDegraded condition does not show yet."""
    body = event["object"]
    generation = body["metadata"].get("generation")
    status = body.get("status") or {}
    conditions = status.get("conditions") or []
    shown = any(c["type"] == NETWORK_CONDITION and c["status"] == "True" for c in conditions)
    return (
        event["type"] == "MODIFIED"
        and bool(status.get("phase"))
        and status.get("observedGeneration") == generation
        and network_degraded(status.get("network")) == shown
    )


class Indexes(TypedDict):
    """The indexes below, as kopf passes them to every handler: by name, among its other
    keyword arguments (which the handlers do not read)."""

    pytorchjobs_by_job: kopf.Index[Key, Obj]
    pods_by_job: kopf.Index[Key, Obj]
    claim_phases: kopf.Index[Key, str | None]
    stages_after: kopf.Index[Key, str]
    workloads_by_pytorchjob: kopf.Index[Key, Obj]


def _call(memo: kopf.Memo, logger: kopf.Logger, indexes: Indexes) -> Call:
    watched = Indexed(
        indexes["pytorchjobs_by_job"],
        indexes["pods_by_job"],
        indexes["claim_phases"],
        indexes.get("workloads_by_pytorchjob") or {},
    )
    return Call(memo, logger, watched, indexes["stages_after"])


# kopf's handler protocol types only its standard keywords, not the indexes it passes by name.
@kopf.on.event(GROUP, VERSION, PLURAL)  # type: ignore[arg-type]
def finetunejob_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **indexes: Unpack[Indexes],
) -> None:
    if event["type"] == "DELETED":
        metrics.record_phase(body["metadata"]["uid"], None)
        return
    if settled(event):
        return
    call = _call(memo, logger, indexes)
    _reconcile_and_follow(call, body)


def _owner_event(
    call: Call, child: Any, pod: Any = None, pytorchjob: Any = None, warning: Any = None
) -> None:
    """A child's event: reconcile its FineTuneJob, read fresh."""
    name = child["metadata"]["labels"][JOB_LABEL]
    namespace = child["metadata"]["namespace"]
    owner = call.memo.reconciler.cluster.get(API_VERSION, KIND, name, namespace)
    if owner is not None and not owner["metadata"].get("deletionTimestamp"):
        _reconcile_and_follow(call, owner, pod, pytorchjob, warning)


@kopf.on.event("kubeflow.org", "v1", "pytorchjobs", labels={JOB_LABEL: kopf.PRESENT})  # type: ignore[arg-type]
def pytorchjob_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **indexes: Unpack[Indexes],
) -> None:
    call = _call(memo, logger, indexes)
    if event["type"] == "DELETED":
        _owner_event(call, body)
    elif (body.get("status") or {}).get("conditions"):
        _owner_event(call, body, pytorchjob=body)
    # else: just created (by this operator, whose reconcile read it then); the
    # training-operator's first status update brings it back.


@kopf.on.event("", "v1", "pods", labels={JOB_LABEL: kopf.PRESENT})  # type: ignore[arg-type]
def pod_event(
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **indexes: Unpack[Indexes],
) -> None:
    call = _call(memo, logger, indexes)
    _owner_event(call, body, pod=body)


def _create_failure(body: kopf.Body, **_: Any) -> bool:
    involved = body.get("involvedObject") or {}
    return involved.get("kind") == "PyTorchJob" and body.get("reason") in CREATE_FAILURES


@kopf.on.event("", "v1", "events", when=_create_failure)  # type: ignore[arg-type]
def pytorchjob_warning(
    event: kopf.RawEvent,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **indexes: Unpack[Indexes],
) -> None:
    """The training-operator could not create a pod or Service of one of our PyTorchJobs (the
    API server refused it): the FineTuneJob says so instead of waiting for pods that never
    come. Repeats of the event (its count rising) change nothing once the job has failed."""
    if event["type"] == "DELETED":
        return
    involved = body["involvedObject"]
    call = _call(memo, logger, indexes)
    pytorchjob = call.memo.reconciler.cluster.get(
        *PYTORCHJOB, involved["name"], involved.get("namespace") or body["metadata"]["namespace"]
    )
    if pytorchjob is None or JOB_LABEL not in (pytorchjob["metadata"].get("labels") or {}):
        return
    _owner_event(call, pytorchjob, pytorchjob=pytorchjob, warning=body)


def _of_pytorchjob(body: kopf.Body, **_: Any) -> bool:
    return _owning_pytorchjob(body) is not None


@kopf.on.event("kueue.x-k8s.io", "v1beta2", "workloads", when=_of_pytorchjob)  # type: ignore[arg-type]
def workload_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **indexes: Unpack[Indexes],
) -> None:
    """Kueue queued, admitted or evicted a PyTorchJob's Workload: reconcile the FineTuneJob
    that owns that PyTorchJob (if one does), so its `Queued` condition follows Kueue's."""
    name = _owning_pytorchjob(body)
    namespace = body["metadata"]["namespace"]
    call = _call(memo, logger, indexes)
    pytorchjob = call.memo.reconciler.cluster.get(*PYTORCHJOB, name, namespace)
    if pytorchjob is None or JOB_LABEL not in (pytorchjob["metadata"].get("labels") or {}):
        return
    _owner_event(call, pytorchjob)
