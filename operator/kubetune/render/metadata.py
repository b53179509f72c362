"""Labels, owner references and object metadata shared by every child of a FineTuneJob."""

from __future__ import annotations

from typing import Any

from kubetune.api.job import FineTuneJob
from kubetune_api.resource import API_VERSION, KIND

JOB_LABEL = "kubetune.io/job"
KEEP_ANNOTATION = "kubetune.io/keep-on-delete"
Obj = dict[str, Any]


def labels(job: FineTuneJob, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "kubetune",
        "app.kubernetes.io/instance": job.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "kubetune",
        "app.kubernetes.io/managed-by": "kubetune-operator",
        JOB_LABEL: job.name,
    }


def owner_references(job: FineTuneJob) -> list[Obj]:
    """The FineTuneJob as controller owner, so deleting it garbage-collects the child."""
    if not job.metadata.uid:
        return []
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": job.name,
            "uid": job.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def object_meta(job: FineTuneJob, name: str, component: str, *, owned: bool = True) -> Obj:
    meta: Obj = {"name": name, "namespace": job.namespace, "labels": labels(job, component)}
    refs = owner_references(job) if owned else []
    if refs:
        meta["ownerReferences"] = refs
    return meta
