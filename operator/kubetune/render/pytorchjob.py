"""The Kubeflow PyTorchJob (kubeflow.org/v1): Master plus nodes − 1 Workers."""

from __future__ import annotations

from kubetune.api.job import FineTuneJob
from kubetune.render.metadata import Obj, object_meta
from kubetune.render.names import pytorchjob_name

KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"


def render_run_policy(job: FineTuneJob) -> Obj:
    policy = job.spec.runPolicy
    run: Obj = {
        # Keep finished pods so their logs can be read; ttlSecondsAfterFinished cleans up.
        "cleanPodPolicy": "None",
        "backoffLimit": policy.backoffLimit,
        # Queued under Kueue: created suspended; Kueue unsuspends it when it admits it.
        "suspend": policy.suspend or job.spec.scheduling.queue is not None,
    }
    if policy.activeDeadlineSeconds is not None:
        run["activeDeadlineSeconds"] = policy.activeDeadlineSeconds
    if policy.ttlSecondsAfterFinished is not None:
        run["ttlSecondsAfterFinished"] = policy.ttlSecondsAfterFinished
    gang = policy.gangScheduling
    if gang is not None:
        scheduling: Obj = {"minAvailable": gang.minAvailable or job.spec.distributed.nodes}
        if gang.queue:
            scheduling["queue"] = gang.queue
        if gang.priorityClass:
            scheduling["priorityClass"] = gang.priorityClass
        run["schedulingPolicy"] = scheduling
    return run


def render_pytorchjob(job: FineTuneJob, template: Obj) -> Obj:
    spec = job.spec
    meta = object_meta(job, pytorchjob_name(job.name), "training")
    if spec.scheduling.queue:
        meta["labels"][KUEUE_QUEUE_LABEL] = spec.scheduling.queue
    if spec.scheduling.priorityClass:
        meta["labels"][KUEUE_PRIORITY_LABEL] = spec.scheduling.priorityClass

    def replica(count: int) -> Obj:
        # ExitCode: exit codes 1-127 (a bug, bad data) fail the job at once; 128+ (signals:
        # preemption, OOM kill) recreate the pod, which resumes from the latest checkpoint.
        return {"replicas": count, "restartPolicy": "ExitCode", "template": template}

    replicas: Obj = {"Master": replica(1)}
    if spec.distributed.nodes > 1:
        replicas["Worker"] = replica(spec.distributed.nodes - 1)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": meta,
        "spec": {
            "runPolicy": render_run_policy(job),
            "nprocPerNode": str(spec.procs_per_node),
            "pytorchReplicaSpecs": replicas,
        },
    }
