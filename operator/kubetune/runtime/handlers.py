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
from kubetune.runtime.reconcile import CREATE_FAILURES, PYTORCHJOB, Reconciler
from kubetune.runtime.status import NETWORK_CONDITION, finished, network_degraded
from kubetune.runtime.views import PodView, PyTorchJobView


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Watches end server-side every few minutes and are re-established; a client timeout
    # slightly longer catches half-dead connections.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    # The listing at start-up in pages of 500 (kopf's default: one response with everything),
    # so a restart over thousands of jobs never holds every PyTorchJob body at once.
    settings.watching.chunk_size = 500
    settings.posting.level = logging.WARNING  # our own Events carry the transitions
    workers = memo.get("workers", 16)
    settings.execution.max_workers = workers
    # No limit on the objects in flight per watch (kopf's default). A limit (64 was tried, for
    # a lower RSS after a 1,000-job burst: 209 → 115 MiB) deadlocks at start-up with more
    # objects of an indexed kind than the limit: every worker waits for all indexes to be
    # filled while holding a slot the rest need (kopf issue #1243; tests/cluster/test_faults.py
    # found it: a restarted operator with 200 jobs never reconciled one). An idle worker frees
    # its slot after 1 s instead of kopf's 5 s.
    settings.queueing.idle_timeout = 1.0
    memo.reconciler = Reconciler(
        Kube.connect(connections=workers), RenderSettings(trainer_image=memo.trainer_image)
    )
    # (namespace, job) → the digest of the PyTorchJob its last reconcile read (views.py): a
    # PyTorchJob event with the same digest cannot change the job, and is dropped before its
    # FineTuneJob is read (a GET) and reconciled. A few hundred bytes a job, until it goes.
    memo.reconciled_with = {}


Key = tuple[str | None, str]  # (namespace, name)


@dataclass
class Indexed:
    """The reconciler's view of the children, from the indexes below (see reconcile.Watched)."""

    pytorchjobs_by_job: Mapping[Key, Collection[PyTorchJobView]]  # a kopf.Index: key → values
    pods_by_job: Mapping[Key, Collection[PodView]]
    claim_phases: Mapping[Key, Collection[str | None]]
    workloads_by_pytorchjob: Mapping[Key, Collection[Obj]] = field(default_factory=dict)

    def pytorchjob(self, job: str, namespace: str) -> Obj | None:
        view = next(iter(self.pytorchjobs_by_job.get((namespace, job), [])), None)
        return view.as_obj() if view is not None else None

    def pods(self, job: str, namespace: str) -> list[PodView]:
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
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    if outcome.pytorchjob is not None:
        call.memo.reconciled_with[key] = PyTorchJobView.of(outcome.pytorchjob).digest()
    metrics.children_created.inc(len(outcome.created))
    metrics.record_phase(body["metadata"]["uid"], outcome.phase)
    if outcome.created:
        call.logger.info(f"created {', '.join(outcome.created)}")
    if outcome.phase == outcome.previous_phase:
        return None
    if posted := phase_event(outcome.previous_phase, outcome.phase):
        metrics.api_writes.labels(verb="create", kind="Event").inc()
        kopf.event(body, type=posted.type, reason=posted.reason, message=posted.message)
    return str(outcome.phase)


@dataclass(frozen=True)
class PhaseEvent:
    type: str
    reason: str
    message: str


def phase_event(previous: str | None, phase: str | None) -> PhaseEvent | None:
    """The Event a phase change posts: one for each change, except a job's first phase unless
    it is Failed — the status just written says all that "none → Pending" would, and for a
    burst of new jobs that Event was one write in eight."""
    if phase == previous or (previous is None and phase != "Failed"):
        return None
    level = "Warning" if phase == "Failed" else "Normal"
    return PhaseEvent(level, phase or "Unknown", f"phase {previous or 'none'} → {phase}")


@kopf.index(GROUP, VERSION, PLURAL)
async def stages_after(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> Any:
    """(namespace, job) → the FineTuneJobs whose model comes from that job."""
    source = (spec.get("model") or {}).get("fromJob") or {}
    return {(namespace, source["name"]): name} if source.get("name") else None


@kopf.index("kubeflow.org", "v1", "pytorchjobs", labels={JOB_LABEL: kopf.PRESENT})
async def pytorchjobs_by_job(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> Any:
    """(namespace, job) → its PyTorchJob, cut to what the reconciler reads (views.py)."""
    return {(namespace, labels[JOB_LABEL]): PyTorchJobView.of(body)}


@kopf.index("", "v1", "pods", labels={JOB_LABEL: kopf.PRESENT})
async def pods_by_job(
    namespace: str | None, name: str, uid: str, labels: kopf.Labels, status: kopf.Status, **_: Any
) -> Any:
    """(namespace, job) → its pods: uid and what the phase rules read (views.py)."""
    pod = {"metadata": {"name": name, "uid": uid}, "status": status}
    return {(namespace, labels[JOB_LABEL]): PodView.of(pod)}


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
    preflight finding (`status.network`) that the NetworkDegraded condition does not show yet.

    When the operator starts (a listing, type None), only a finished job is settled: its status
    is final, whatever its children did meanwhile, so a restart over thousands of finished
    jobs reconciles none of them; any other job is reconciled, with every child in the indexes
    (kopf fills them before any handler runs)."""
    body = event["object"]
    generation = body["metadata"].get("generation")
    status = body.get("status") or {}
    conditions = status.get("conditions") or []
    shown = any(c["type"] == NETWORK_CONDITION and c["status"] == "True" for c in conditions)
    unchanged = (
        bool(status.get("phase"))
        and status.get("observedGeneration") == generation
        and network_degraded(status.get("network")) == shown
    )
    if event["type"] is None:
        return unchanged and finished(status)
    return event["type"] == "MODIFIED" and unchanged


class Indexes(TypedDict):
    """The indexes below, as kopf passes them to every handler: by name, among its other
    keyword arguments (which the handlers do not read)."""

    pytorchjobs_by_job: kopf.Index[Key, PyTorchJobView]
    pods_by_job: kopf.Index[Key, PodView]
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


def _unsettled(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> bool:
    """kopf's `when` filter runs in its event loop, before a handler thread is taken: an event
    that needs nothing is dropped at once, its body with it, instead of waiting (with the
    body) for one of the handler threads among a burst of new jobs. A settled job seen at a
    listing still counts in the jobs-by-phase metric."""
    if event["type"] == "DELETED" or not settled(event):
        return True
    if event["type"] is None:
        metrics.record_phase(body["metadata"]["uid"], (body.get("status") or {}).get("phase"))
    return False


# kopf's handler protocol types only its standard keywords, not the indexes it passes by name.
@kopf.on.event(GROUP, VERSION, PLURAL, when=_unsettled)  # type: ignore[arg-type]
def finetunejob_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **indexes: Unpack[Indexes],
) -> None:
    if event["type"] == "DELETED":
        metrics.record_phase(body["metadata"]["uid"], None)
        memo.reconciled_with.pop((body["metadata"]["namespace"], body["metadata"]["name"]), None)
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


def _pytorchjob_news(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> bool:
    """Whether a PyTorchJob event can change its FineTuneJob; if not, it is dropped in kopf's
    event loop (see `_unsettled`). Not: one without conditions, just created by this operator
    (whose reconcile read it then; the training-operator's first status update brings it
    back), and one whose digest (what the reconcile reads of it: views.py) is the one the
    job's last reconcile read — the training-operator's Created condition, say."""
    if event["type"] == "DELETED":
        return True
    if not (body.get("status") or {}).get("conditions"):
        return False
    key = (body["metadata"].get("namespace"), body["metadata"]["labels"][JOB_LABEL])
    read = memo.reconciled_with.get(key)
    if read is None and event["type"] is None:
        # Listed when the operator starts: its job's own listing reconciles it (or the job is
        # finished, and nothing of a child changes it). A relisting after a broken watch
        # finds the job's digest, and a PyTorchJob that changed meanwhile differs from it.
        return False
    return bool(read != PyTorchJobView.of(body).digest())


@kopf.on.event(  # type: ignore[arg-type]
    "kubeflow.org", "v1", "pytorchjobs", labels={JOB_LABEL: kopf.PRESENT}, when=_pytorchjob_news
)
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
    else:
        _owner_event(call, body, pytorchjob=body)


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
