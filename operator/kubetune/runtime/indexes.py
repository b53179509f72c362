"""The operator's kopf indexes: what the reconciles read of the children — PyTorchJobs, pods,
claims, Kueue's Workloads — and which stages start from which job, fed by the operator's own
watches and kept small (only the fields the status function reads: views.py), instead of a GET
and a LIST per reconcile. `Indexed` hands them to the reconciler as `interfaces.Watched`."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import kopf

from kubetune.render.metadata import JOB_LABEL, Obj
from kubetune.runtime.children import PYTORCHJOB
from kubetune.runtime.views import PodView, PyTorchJobView
from kubetune_api.resource import GROUP, PLURAL, VERSION

Key = tuple[str | None, str]  # (namespace, name)


@dataclass
class Indexed:
    """The reconciler's view of the children, from the indexes below (see interfaces.Watched)."""

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


def owning_pytorchjob(body: kopf.Body) -> str | None:
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
    owner = owning_pytorchjob(body)
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


class Indexes(TypedDict):
    """The indexes above, as kopf passes them to every handler: by name, among its other
    keyword arguments (which the handlers do not read)."""

    pytorchjobs_by_job: kopf.Index[Key, PyTorchJobView]
    pods_by_job: kopf.Index[Key, PodView]
    claim_phases: kopf.Index[Key, str | None]
    stages_after: kopf.Index[Key, str]
    workloads_by_pytorchjob: kopf.Index[Key, Obj]
