"""kopf's `when` filters: which events need a reconcile. They run in kopf's event loop, before a
handler thread is taken, so an event that needs nothing is dropped at once, its body with it."""

from __future__ import annotations

from typing import Any

import kopf

from kubetune.render.metadata import JOB_LABEL
from kubetune.runtime import metrics
from kubetune.runtime.children import CREATE_FAILURES
from kubetune.runtime.indexes import owning_pytorchjob
from kubetune.runtime.status import finished, network_degraded
from kubetune.runtime.views import PyTorchJobView
from kubetune_api.conditions import NETWORK_DEGRADED


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
    shown = any(c["type"] == NETWORK_DEGRADED and c["status"] == "True" for c in conditions)
    unchanged = (
        bool(status.get("phase"))
        and status.get("observedGeneration") == generation
        and network_degraded(status.get("network")) == shown
    )
    if event["type"] is None:
        return unchanged and finished(status)
    return event["type"] == "MODIFIED" and unchanged


def unsettled(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> bool:
    """kopf's `when` filter runs in its event loop, before a handler thread is taken: an event
    that needs nothing is dropped at once, its body with it, instead of waiting (with the
    body) for one of the handler threads among a burst of new jobs. A settled job seen at a
    listing still counts in the jobs-by-phase metric."""
    if event["type"] == "DELETED" or not settled(event):
        return True
    if event["type"] is None:
        metrics.record_phase(body["metadata"]["uid"], (body.get("status") or {}).get("phase"))
    return False


def pytorchjob_news(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> bool:
    """Whether a PyTorchJob event can change its FineTuneJob; if not, it is dropped in kopf's
    event loop (see `unsettled`). Not: one without conditions, just created by this operator
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


# Server-side selectors (kopf's `settings.watching`): the API server sends only the objects a
# handler could use, so the operator neither decodes nor queues the rest — at start-up, kopf
# lists every object of a watched kind and gives each its own worker. Each selector is a
# superset of its handlers' filters (tests/runtime/test_handlers.py checks the labels).
# Without them the operator watched every pod and every Event of the cluster: a PVC that never
# binds alone re-posts its ProvisioningFailed Event every few minutes.
LABEL_SELECTORS = {
    ("kubeflow.org", "v1", "pytorchjobs"): JOB_LABEL,
    ("", "v1", "pods"): JOB_LABEL,
}
# The training-operator's FailedCreatePod and FailedCreateService are Warnings about a
# PyTorchJob; field selectors have no "in", so `create_failure` still checks the reason.
FIELD_SELECTORS = {("", "v1", "events"): "involvedObject.kind=PyTorchJob,type=Warning"}


def create_failure(body: kopf.Body, **_: Any) -> bool:
    """An Event of the training-operator's failing to create a PyTorchJob's pod or Service."""
    involved = body.get("involvedObject") or {}
    return involved.get("kind") == "PyTorchJob" and body.get("reason") in CREATE_FAILURES


def of_pytorchjob(body: kopf.Body, **_: Any) -> bool:
    """A Kueue Workload that a PyTorchJob owns."""
    return owning_pytorchjob(body) is not None


def queued(status: kopf.Status, **_: Any) -> bool:
    """A job Kueue holds (phase `Queued`): the only ones whose queue position is refreshed."""
    return status.get("phase") == "Queued"
