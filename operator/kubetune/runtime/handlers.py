"""kopf handlers: thin. Every event on a FineTuneJob, its PyTorchJob or its pods reconciles
the FineTuneJob (level-triggered); when a job's phase changes, the stages that start from it
(found through an in-memory kopf index) are reconciled too.

Only event handlers and an index are used, so kopf writes no annotations or finalizers of its
own and keeps no per-object tasks: children go by garbage collection through their owner
references.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf

from kubetune.api.job import API_VERSION, GROUP, KIND, PLURAL, VERSION
from kubetune.render import RenderSettings
from kubetune.render.metadata import JOB_LABEL
from kubetune.runtime import metrics
from kubetune.runtime.kube import Kube
from kubetune.runtime.reconcile import Reconciler


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Watches end server-side every few minutes and are re-established; a client timeout
    # slightly longer catches half-dead connections.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    settings.posting.level = logging.WARNING  # our own Events carry the transitions
    settings.execution.max_workers = memo.get("workers", 16)
    memo.reconciler = Reconciler(Kube.connect(), RenderSettings(trainer_image=memo.trainer_image))


def _reconcile(
    memo: kopf.Memo, body: Any, logger: kopf.Logger, event_pod: Any | None = None
) -> str | None:
    """Reconcile one FineTuneJob; returns its phase when it changed."""
    started = time.monotonic()
    try:
        outcome = memo.reconciler.reconcile(
            dict(body), dict(event_pod) if event_pod is not None else None
        )
    except Exception:
        metrics.reconcile_errors.inc()
        raise
    finally:
        metrics.reconcile_seconds.observe(time.monotonic() - started)
    metrics.children_created.inc(len(outcome.created))
    metrics.record_phase(body["metadata"]["uid"], outcome.phase)
    if outcome.created:
        logger.info(f"created {', '.join(outcome.created)}")
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
def stages_after(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> Any:
    """(namespace, job) → the FineTuneJobs whose model comes from that job."""
    source = (spec.get("model") or {}).get("fromJob") or {}
    return {(namespace, source["name"]): name} if source.get("name") else None


def _reconcile_and_follow(
    memo: kopf.Memo,
    body: Any,
    logger: kopf.Logger,
    index: kopf.Index[tuple[str, str], str],
    event_pod: Any | None = None,
) -> None:
    """Reconcile a job; if its phase changed (whichever event showed it), reconcile the stages
    that start from it: their wait is over, or their waiting message is stale."""
    if _reconcile(memo, body, logger, event_pod) is None:
        return
    namespace = body["metadata"]["namespace"]
    for name in index.get((namespace, body["metadata"]["name"]), []):
        after = memo.reconciler.kube.get(API_VERSION, KIND, name, namespace)
        if after is not None and not after["metadata"].get("deletionTimestamp"):
            _reconcile(memo, after, logger)


@kopf.on.event(GROUP, VERSION, PLURAL)
def finetunejob_event(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any
) -> None:
    if event["type"] == "DELETED":
        metrics.record_phase(body["metadata"]["uid"], None)
        return
    _reconcile_and_follow(memo, body, logger, kwargs["stages_after"])  # kopf passes indexes by name


def _owner_event(
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    index: kopf.Index[tuple[str, str], str],
    event_pod: Any | None = None,
) -> None:
    name = body["metadata"]["labels"][JOB_LABEL]
    namespace = body["metadata"]["namespace"]
    owner = memo.reconciler.kube.get(API_VERSION, KIND, name, namespace)
    if owner is not None and not owner["metadata"].get("deletionTimestamp"):
        _reconcile_and_follow(memo, owner, logger, index, event_pod)


@kopf.on.event("kubeflow.org", "v1", "pytorchjobs", labels={JOB_LABEL: kopf.PRESENT})
def pytorchjob_event(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any) -> None:
    _owner_event(body, memo, logger, kwargs["stages_after"])


@kopf.on.event("", "v1", "pods", labels={JOB_LABEL: kopf.PRESENT})
def pod_event(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any) -> None:
    _owner_event(body, memo, logger, kwargs["stages_after"], event_pod=body)
