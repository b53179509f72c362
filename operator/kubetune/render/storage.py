"""The workspace PersistentVolumeClaim."""

from __future__ import annotations

from kubetune.api.job import FineTuneJob
from kubetune.render.metadata import KEEP_ANNOTATION, Obj, object_meta
from kubetune.render.names import workspace_claim_name
from kubetune.render.settings import RenderSettings


def workspace_claim(job: FineTuneJob) -> str:
    return job.spec.storage.existingClaim or workspace_claim_name(job.name)


def render_workspace_pvc(job: FineTuneJob, settings: RenderSettings) -> Obj | None:
    """The claim kubetune creates, or None when the job names an existing one."""
    storage = job.spec.storage
    if storage.existingClaim:
        return None
    mode = storage.accessMode or (
        "ReadWriteMany" if job.spec.distributed.nodes > 1 else "ReadWriteOnce"
    )
    meta = object_meta(job, workspace_claim(job), "workspace", owned=not storage.keepOnDelete)
    if storage.keepOnDelete:
        meta["annotations"] = {KEEP_ANNOTATION: "true"}
    spec: Obj = {
        "accessModes": [mode],
        "resources": {"requests": {"storage": str(storage.size or settings.default_storage_size)}},
    }
    if storage.storageClassName is not None:
        spec["storageClassName"] = storage.storageClassName
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}
