"""kopf handlers: thin. Every event on a FineTuneJob's PyTorchJob or pods, and every change
of its spec, reconciles the FineTuneJob (level-triggered); when a job's phase changes, the
stages that start from it are reconciled too.

What the reconciles read — PyTorchJobs, pods, claims, which stages follow which job — comes
from kopf indexes (indexes.py) fed by the operator's own watches; events that need no reconcile
are dropped by kopf `when` filters (event_filters.py) before a handler runs.

Event handlers and indexes do the work, so kopf writes no annotations of its own, and
children go by garbage collection through their owner references. The one exception is the
timer that refreshes a queued job's position in its Kueue queue: kopf runs it as a task per
job only while the job is `Queued`, and puts its finalizer on the job for that time (kopf's
rule for timers; it takes the finalizer off when the job leaves `Queued`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Unpack

import kopf

from kubetune.render import RenderSettings
from kubetune.render.metadata import JOB_LABEL
from kubetune.runtime import metrics
from kubetune.runtime.children import PYTORCHJOB
from kubetune.runtime.event_filters import (
    FIELD_SELECTORS,
    LABEL_SELECTORS,
    create_failure,
    of_pytorchjob,
    pytorchjob_news,
    queued,
    unsettled,
)
from kubetune.runtime.indexes import Indexed, Indexes, Key, owning_pytorchjob
from kubetune.runtime.kube import Kube, NamespaceTerminating
from kubetune.runtime.reconcile import Reconciler
from kubetune.runtime.views import PyTorchJobView
from kubetune_api.resource import API_VERSION, GROUP, KIND, PLURAL, VERSION


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
    for resource, labels in LABEL_SELECTORS.items():
        settings.watching.label_selectors[resource] = labels
    for resource, fields in FIELD_SELECTORS.items():
        settings.watching.field_selectors[resource] = fields
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


def _call(memo: kopf.Memo, logger: kopf.Logger, indexes: Indexes) -> Call:
    watched = Indexed(
        indexes["pytorchjobs_by_job"],
        indexes["pods_by_job"],
        indexes["claim_phases"],
        indexes.get("workloads_by_pytorchjob") or {},
    )
    return Call(memo, logger, watched, indexes["stages_after"])


# kopf's handler protocol types only its standard keywords, not the indexes it passes by name.
@kopf.on.event(GROUP, VERSION, PLURAL, when=unsettled)  # type: ignore[arg-type]
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


@kopf.on.event(  # type: ignore[arg-type]
    "kubeflow.org", "v1", "pytorchjobs", labels={JOB_LABEL: kopf.PRESENT}, when=pytorchjob_news
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


@kopf.on.event("", "v1", "events", when=create_failure)  # type: ignore[arg-type]
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


# How often a queued job's position in its Kueue queue is looked at. Kueue changes no object
# when a Workload ahead is admitted or leaves, so the position is polled; the pending list is
# read once per LocalQueue for all its jobs (kube.PENDING_TTL_S), and a job whose position did
# not move costs no write.
QUEUE_REFRESH_S = 10.0


@kopf.timer(  # type: ignore[arg-type]
    GROUP,
    VERSION,
    PLURAL,
    interval=QUEUE_REFRESH_S,
    initial_delay=QUEUE_REFRESH_S,
    when=queued,
)
def queue_position(
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **indexes: Unpack[Indexes],
) -> None:
    """While a job is `Queued`: reconcile it when its position in the Kueue queue moved."""
    call = _call(memo, logger, indexes)
    if call.memo.reconciler.queue_position_moved(dict(body), call.indexed):
        _reconcile_and_follow(call, body)


@kopf.on.event("kueue.x-k8s.io", "v1beta2", "workloads", when=of_pytorchjob)  # type: ignore[arg-type]
def workload_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **indexes: Unpack[Indexes],
) -> None:
    """Kueue queued, admitted or evicted a PyTorchJob's Workload: reconcile the FineTuneJob
    that owns that PyTorchJob (if one does), so its `Queued` condition follows Kueue's."""
    name = owning_pytorchjob(body)
    namespace = body["metadata"]["namespace"]
    call = _call(memo, logger, indexes)
    pytorchjob = call.memo.reconciler.cluster.get(*PYTORCHJOB, name, namespace)
    if pytorchjob is None or JOB_LABEL not in (pytorchjob["metadata"].get("labels") or {}):
        return
    _owner_event(call, pytorchjob)
