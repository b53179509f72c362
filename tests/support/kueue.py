"""Kueue objects for the tests that run real Kueue on the local control plane
(`hack/local-cluster up --kueue`): a ResourceFlavor, a ClusterQueue with a tiny GPU quota and
the LocalQueue that points at it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

API = "kueue.x-k8s.io/v1beta2"
FLAVOR = "kubetune-test-gpu"


def flavor() -> dict[str, Any]:
    return {"apiVersion": API, "kind": "ResourceFlavor", "metadata": {"name": FLAVOR}, "spec": {}}


def cluster_queue(
    name: str, gpus: int, preempt: bool = False, others: Mapping[str, int | str] | None = None
) -> dict[str, Any]:
    """A ClusterQueue for every namespace with `gpus` nvidia.com/gpu of nominal quota, and the
    quota of each resource in `others` (`{"cpu": 16}`): Kueue admits a workload only when the
    queue covers every resource its pods request (the tiny jobs request GPUs only). `preempt`:
    a workload of a higher priority evicts lower ones in the same queue."""
    quotas = {"nvidia.com/gpu": gpus, **(others or {})}
    preemption = {"preemption": {"withinClusterQueue": "LowerPriority"}} if preempt else {}
    return {
        "apiVersion": API,
        "kind": "ClusterQueue",
        "metadata": {"name": name},
        "spec": {
            **preemption,
            "namespaceSelector": {},
            "resourceGroups": [
                {
                    "coveredResources": list(quotas),
                    "flavors": [
                        {
                            "name": FLAVOR,
                            "resources": [
                                {"name": r, "nominalQuota": q} for r, q in quotas.items()
                            ],
                        }
                    ],
                }
            ],
        },
    }


def priority_class(name: str, value: int) -> dict[str, Any]:
    """A WorkloadPriorityClass (what `spec.scheduling.priorityClass` names)."""
    return {
        "apiVersion": API,
        "kind": "WorkloadPriorityClass",
        "metadata": {"name": name},
        "value": value,
        "description": f"kubetune tests: {name}",
    }


def local_queue(name: str, cluster_queue: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "LocalQueue",
        "metadata": {"name": name},
        "spec": {"clusterQueue": cluster_queue},
    }
