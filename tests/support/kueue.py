"""Kueue objects for the tests that run real Kueue on the local control plane
(`hack/local-cluster up --kueue`): a ResourceFlavor, a ClusterQueue with a tiny GPU quota and
the LocalQueue that points at it."""

from __future__ import annotations

from typing import Any

API = "kueue.x-k8s.io/v1beta2"
FLAVOR = "kubetune-test-gpu"


def flavor() -> dict[str, Any]:
    return {"apiVersion": API, "kind": "ResourceFlavor", "metadata": {"name": FLAVOR}, "spec": {}}


def cluster_queue(name: str, gpus: int) -> dict[str, Any]:
    """A ClusterQueue for every namespace with `gpus` nvidia.com/gpu of nominal quota (the
    tiny jobs request nothing else)."""
    return {
        "apiVersion": API,
        "kind": "ClusterQueue",
        "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {},
            "resourceGroups": [
                {
                    "coveredResources": ["nvidia.com/gpu"],
                    "flavors": [
                        {
                            "name": FLAVOR,
                            "resources": [{"name": "nvidia.com/gpu", "nominalQuota": gpus}],
                        }
                    ],
                }
            ],
        },
    }


def local_queue(name: str, cluster_queue: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "LocalQueue",
        "metadata": {"name": name},
        "spec": {"clusterQueue": cluster_queue},
    }
