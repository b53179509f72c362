"""What the local cluster holds: kwok stages, fake GPU nodes, storage (pure builders)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

GPU_NODES = 2
GPUS_PER_NODE = 8
# What an InfiniBand GPU node's RDMA shared device plugin advertises (seed 5 asks for one).
RDMA_RESOURCE = ("rdma/ib", "8")
PV_POOL = {"ReadWriteMany": 40, "ReadWriteOnce": 40}
STORAGE_CLASS = "standard"
FAKE_NODES = "kwok.x-k8s.io/node=fake"  # the annotation kwok selects the nodes it fakes by


def go_module_dir(module: str, version: str) -> Path:
    """Where `go` unpacked a module (build-binaries.sh downloaded it)."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(json.loads(out)["Dir"])


def kwok_stages(kwok_version: str) -> list[dict[str, Any]]:
    """kwok's stock stages, with pod completion extended to pods owned by a PyTorchJob.

    Naming any Stage drops kwok's defaults, so the full set is supplied: node initialise and
    heartbeat (with lease), the general pod lifecycle (init containers included), and the
    chaos stage that fails a pod's container with a chosen exit code.
    """
    stage_dir = go_module_dir("sigs.k8s.io/kwok", kwok_version) / "kustomize" / "stage"
    files = [
        "node/fast/node-initialize.yaml",
        "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        *(
            f"pod/general/{n}.yaml"
            for n in (
                "pod-create",
                "pod-init-container-running",
                "pod-init-container-completed",
                "pod-ready",
                "pod-complete",
                "pod-delete",
            )
        ),
        "pod/chaos/pod-container-running-failed.yaml",
    ]
    stages = [yaml.safe_load((stage_dir / f).read_text()) for f in files]
    for stage in stages:
        if stage["metadata"]["name"] == "pod-complete":
            for expr in stage["spec"]["selector"]["matchExpressions"]:
                if expr["key"] == ".metadata.ownerReferences.[].kind":
                    expr["values"] = ["Job", "PyTorchJob"]
    return stages


def gpu_node(index: int) -> dict[str, Any]:
    capacity = {
        "cpu": "64",
        "memory": "512Gi",
        "pods": "110",
        "nvidia.com/gpu": str(GPUS_PER_NODE),
        RDMA_RESOURCE[0]: RDMA_RESOURCE[1],
        "ephemeral-storage": "2Ti",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": f"kwok-gpu-{index}",
            "annotations": {
                FAKE_NODES.split("=")[0]: FAKE_NODES.split("=")[1],
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": f"kwok-gpu-{index}",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                "nvidia.com/gpu.count": str(GPUS_PER_NODE),
            },
        },
        "status": {"allocatable": capacity, "capacity": capacity},
    }


def storage_objects(volumes: Path) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
            "reclaimPolicy": "Retain",
        }
    ]
    for mode, count in PV_POOL.items():
        objects += [persistent_volume(volumes, mode, i) for i in range(count)]
    return objects


def persistent_volume(volumes: Path, mode: str, index: int) -> dict[str, Any]:
    short = "rwx" if mode == "ReadWriteMany" else "rwo"
    name = f"local-{short}-{index:03d}"
    path = volumes / name
    path.mkdir(parents=True, exist_ok=True)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"kubetune.io/local-volume": short}},
        "spec": {
            "capacity": {"storage": "10Ti"},
            "accessModes": [mode],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
        },
    }


def kwok_config(kubernetes: Path, etcd: Path, kwok: Path, versions: dict[str, str]) -> str:
    """kwokctl's configuration: the binary runtime on 127.0.0.1 with our binaries, the full
    stage set, and kwok faking only the annotated nodes."""
    config = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": {
            "runtime": "binary",
            "bindAddress": "127.0.0.1",
            "kubeVersion": versions["KUBERNETES_VERSION"],
            "kubeApiserverBinary": str(kubernetes / "kube-apiserver"),
            "kubeControllerManagerBinary": str(kubernetes / "kube-controller-manager"),
            "kubeSchedulerBinary": str(kubernetes / "kube-scheduler"),
            "etcdBinary": str(etcd / "etcd"),
            "kwokControllerBinary": str(kwok / "kwok"),
            "disableQPSLimits": True,
        },
        # kwok fakes only the annotated GPU nodes; the process node (process_node.py) runs its
        # pods for real. kwokctl's binary runtime passes --manage-all-nodes=true, so override.
        "componentsPatches": [
            {
                "name": "kwok-controller",
                "extraArgs": [
                    {"key": "manage-all-nodes", "value": "false", "override": True},
                    {"key": "manage-nodes-with-annotation-selector", "value": FAKE_NODES},
                ],
            }
        ],
    }
    return yaml.safe_dump_all([config, *kwok_stages(versions["KWOK_VERSION"])])
