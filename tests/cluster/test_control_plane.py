"""The local control plane is real: the API server validates, the scheduler places pods on the
fake GPU nodes, PVCs bind, and the real training-operator runs PyTorchJobs to an end."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.kube import Kube, KubectlError, condition, eventually

FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"


def pvc(name: str, mode: str = "ReadWriteMany") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": [mode], "resources": {"requests": {"storage": "10Gi"}}},
    }


def pytorchjob(
    name: str,
    *,
    workers: int = 1,
    gpus: int = 8,
    claim: str | None = None,
    restart: str = "OnFailure",
    master_pod: dict[str, Any] | None = None,
    backoff: int = 0,
) -> dict[str, Any]:
    def template(extra_meta: dict[str, Any] | None = None) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": "pytorch",
            "image": "ghcr.io/kubetune/trainer:test",
            "command": ["torchrun", "-m", "kubetune_trainer.train"],
            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
        }
        spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Never"}
        if claim:
            container["volumeMounts"] = [{"name": "ws", "mountPath": "/workspace"}]
            spec["volumes"] = [{"name": "ws", "persistentVolumeClaim": {"claimName": claim}}]
        meta = {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "2s"}}
        for key, value in (extra_meta or {}).items():
            meta.setdefault(key, {}).update(value)
        return {"metadata": meta, "spec": spec}

    replicas: dict[str, Any] = {
        "Master": {"replicas": 1, "restartPolicy": restart, "template": template(master_pod)},
    }
    if workers:
        replicas["Worker"] = {"replicas": workers, "restartPolicy": restart, "template": template()}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {
            "runPolicy": {"backoffLimit": backoff, "cleanPodPolicy": "None"},
            "nprocPerNode": str(gpus),
            "pytorchReplicaSpecs": replicas,
        },
    }


def job_condition(kube: Kube, name: str, kind: str) -> dict[str, Any] | None:
    return condition(kube.get("pytorchjob", name), kind)


def test_pytorchjob_runs_to_success_on_fake_gpu_nodes(kube: Kube) -> None:
    kube.apply(pvc("workspace"), pytorchjob("train", workers=1, claim="workspace"))

    eventually(
        lambda: kube.get("pvc", "workspace")["status"].get("phase") == "Bound",
        what="the claim to bind to a hostPath PV",
    )
    pods = eventually(
        lambda: (
            (p := kube.get("pods", selector="training.kubeflow.org/job-name=train"))
            and len(p) == 2
            and all(x["spec"].get("nodeName") for x in p)
            and p
        ),
        what="two scheduled pods",
    )
    # Only the fake GPU nodes have nvidia.com/gpu, so that is where the scheduler puts them.
    assert {p["spec"]["nodeName"] for p in pods} <= {"kwok-gpu-0", "kwok-gpu-1"}
    worker = next(p for p in pods if p["metadata"]["name"] == "train-worker-0")
    env = {e["name"]: e.get("value") for e in worker["spec"]["containers"][0]["env"]}
    assert env["PET_MASTER_ADDR"] == "train-master-0" and env["WORLD_SIZE"] == "16"
    assert env["PET_NODE_RANK"] == "1" and env["PET_NPROC_PER_NODE"] == "8"
    services = kube.get("services", selector="training.kubeflow.org/job-name=train")
    assert {s["metadata"]["name"] for s in services} == {"train-master-0", "train-worker-0"}
    assert all(s["spec"]["clusterIP"] == "None" for s in services)

    succeeded = eventually(
        lambda: job_condition(kube, "train", "Succeeded"),
        timeout=120,
        what="the PyTorchJob to succeed",
    )
    assert succeeded["reason"] == "PyTorchJobSucceeded"


def failing_master(name: str, exit_code: int, backoff: int) -> dict[str, Any]:
    """A one-pod PyTorchJob whose master fails with `exit_code`, under the ExitCode policy."""
    failing = {
        "labels": {FAIL_LABEL: "true"},
        "annotations": {f"{FAIL_LABEL}/exit-code": str(exit_code), f"{FAIL_LABEL}/delay": "1s"},
    }
    return pytorchjob(
        name, workers=0, gpus=1, restart="ExitCode", master_pod=failing, backoff=backoff
    )


def test_failing_pod_fails_the_pytorchjob(kube: Kube) -> None:
    # What kubetune renders: restartPolicy ExitCode, backoffLimit 3. Exit code 3 (1-127) is a
    # permanent error: the job fails at once, without spending its restarts.
    kube.apply(failing_master("crash", exit_code=3, backoff=3))
    failed = eventually(
        lambda: job_condition(kube, "crash", "Failed"), timeout=120, what="the PyTorchJob to fail"
    )
    assert failed["reason"] == "PyTorchJobFailed", failed
    assert not job_condition(kube, "crash", "Restarting")
    pod = kube.get("pod", "crash-master-0")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3


def test_retryable_exit_code_restarts_the_pod(kube: Kube) -> None:
    # Under restartPolicy ExitCode, 128+ (a signal: preemption, OOM kill) is retryable.
    kube.apply(failing_master("retry", exit_code=137, backoff=2))
    restarting = eventually(
        lambda: job_condition(kube, "retry", "Restarting"),
        timeout=120,
        what="the PyTorchJob to restart its pod",
    )
    assert "retry" in restarting["message"]


TEST_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "ranges.test.kubetune.io"},
    "spec": {
        "group": "test.kubetune.io",
        "names": {"kind": "Range", "plural": "ranges", "singular": "range"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "min": {"type": "integer"},
                                    "max": {"type": "integer"},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.min <= self.max",
                                        "message": "spec.min: must not exceed spec.max",
                                    },
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_cel_rule_rejects_a_bad_object(cluster: Kube, kube: Kube) -> None:
    cluster.apply(TEST_CRD, server_side=True)
    eventually(
        lambda: condition(cluster.get("crd", "ranges.test.kubetune.io"), "Established"),
        what="the test CRD to be established",
    )
    good = {
        "apiVersion": "test.kubetune.io/v1",
        "kind": "Range",
        "metadata": {"name": "ok"},
        "spec": {"min": 1, "max": 2},
    }
    eventually(lambda: _applies(kube, good), timeout=30, what="the new API to be served")
    bad = {**good, "metadata": {"name": "bad"}, "spec": {"min": 3, "max": 2}}
    with pytest.raises(KubectlError, match=r"spec\.min: must not exceed spec\.max"):
        kube.apply(bad)
    assert not kube.exists("range", "bad")


def _applies(kube: Kube, obj: dict[str, Any]) -> bool:
    try:
        kube.apply(obj)
        return True
    except KubectlError as err:
        if "no matches for kind" in err.stderr or "the server could not find" in err.stderr:
            return False
        raise
