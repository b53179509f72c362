"""A FineTuneJob's children: creating them once (the PyTorchJob last, stamped with the hash of
the spec it was made from), the spec changes refused after that, and the refusals of children
by the API server (ours, or the training-operator's FailedCreate* Events)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from kubetune.api.job import FineTuneJob
from kubetune.render import RenderSettings, render
from kubetune.render.metadata import Obj
from kubetune.render.names import pytorchjob_name
from kubetune.runtime.interfaces import Cluster
from kubetune.runtime.kube import Rejected
from kubetune.runtime.status import Refusal
from kubetune.runtime.views import SPEC_HASH
from kubetune_api.s3_spec import UpstreamOutputs

PYTORCHJOB = ("kubeflow.org/v1", "PyTorchJob")
# The training-operator's Warning events when the API server refuses what it creates for a
# PyTorchJob (pkg/controller.v1/control/{pod,service}_control.go).
CREATE_FAILURES = ("FailedCreatePod", "FailedCreateService")


def spec_hash(job: FineTuneJob) -> str:
    """Everything that shapes the training; suspend is a run-time switch, not part of it."""
    spec = job.spec.model_dump(mode="json")
    spec["runPolicy"].pop("suspend", None)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Children:
    """The PyTorchJob after `ensure_children`, and whether this reconcile created it."""

    pytorchjob: Obj | None
    just_created: bool = False
    refusal: Refusal | None = None

    @property
    def existing(self) -> Obj | None:
        """The PyTorchJob as it ran before this reconcile (a just-created one has no pods yet,
        no bound claim and nothing to refuse or suspend)."""
        return None if self.just_created else self.pytorchjob


def create_children(
    cluster: Cluster,
    settings: RenderSettings,
    job: FineTuneJob,
    created: list[str],
    upstream: UpstreamOutputs | None = None,
) -> Children:
    """Create the children in order, the PyTorchJob last; each one created is added to
    `created` as `Kind/name`.

    A child that already exists means an earlier create was interrupted (the operator
    stopped) or the watch lags: if the PyTorchJob exists, nothing more is touched (a spec
    change is then refused, never half-applied); otherwise the child is converged."""
    for obj in render(job, settings, upstream):
        is_pytorchjob = obj["kind"] == "PyTorchJob"
        if is_pytorchjob:
            obj["metadata"].setdefault("annotations", {})[SPEC_HASH] = spec_hash(job)
        try:
            made = cluster.create(obj)
        except Rejected as refused:
            message = f"the API server refused {refused.child}: {refused.message}"
            return Children(None, refusal=Refusal("ChildRejected", message))
        if made is None:
            existing = cluster.get(*PYTORCHJOB, pytorchjob_name(job.name), job.namespace)
            if existing is not None:
                return Children(existing)
            made = cluster.apply(obj)
        created.append(f"{obj['kind']}/{obj['metadata']['name']}")
        if is_pytorchjob:
            return Children(made, just_created=True)
    return Children(None)


def refused_change(job: FineTuneJob, pytorchjob: Obj) -> str | None:
    """Why the spec may not change now, if it changed since the PyTorchJob was made from it."""
    applied = (pytorchjob["metadata"].get("annotations") or {}).get(SPEC_HASH)
    if applied is None or applied == spec_hash(job):
        return None
    return (
        "the spec changed after training started; only spec.runPolicy.suspend can change "
        "now. The running training keeps its original spec: delete and recreate the "
        "FineTuneJob to train with the new one"
    )


def pods_refused(pytorchjob: Obj | None, warning: Obj | None) -> Refusal | None:
    """The training-operator's FailedCreate* event, if it is about this very PyTorchJob (not an
    earlier one of the same name)."""
    if pytorchjob is None or warning is None or warning.get("reason") not in CREATE_FAILURES:
        return None
    if "already exists" in str(warning.get("message")):
        return (
            None  # the training-operator's cache lags (after an API server outage): not a refusal
        )
    involved = warning.get("involvedObject") or {}
    uid = pytorchjob["metadata"].get("uid")
    if uid is not None and involved.get("uid") not in (None, uid):
        return None
    what = "pod" if warning["reason"] == "FailedCreatePod" else "Service"
    message = str(warning.get("message") or "").removeprefix("Error creating: ")
    return Refusal(
        "PodsRejected", f"the training-operator could not create a training {what}: {message}"
    )
