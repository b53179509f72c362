"""Every seed example, fitted to the kwok GPU nodes, runs to Succeeded through the operator
(chained stages wait for the stage before them). A seed that names a Kueue queue (seed 5) is
admitted by real Kueue, from a LocalQueue of that name whose ClusterQueue covers what it asks."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

from tests.support.factories import EXAMPLES, claims_read, example_docs
from tests.support.kube import Kube, eventually
from tests.support.kueue import cluster_queue, flavor, local_queue
from tests.support.operator import COMPLETE_DELAY, phase_is
from tests.support.process_node import make_claim

SEEDS = [p for p in EXAMPLES if p.name.startswith("seed")]
GPU_NODES = ("kwok-gpu-0", "kwok-gpu-1")
RDMA_RESOURCE = ("rdma/ib", "8")  # as hack/cluster/cluster_objects.py advertises it


def fit_to_fake_nodes(doc: dict[str, Any]) -> dict[str, Any]:
    """The example as written, with per-node CPU/memory and volume sizes the kwok nodes have."""
    spec = doc["spec"]
    spec["resources"] = {**spec.get("resources", {}), "cpu": 8, "memory": "32Gi"}
    if "existingClaim" not in spec.get("storage", {}):
        spec["storage"] = {**spec.get("storage", {}), "size": "10Gi"}
        spec["storage"].pop("storageClassName", None)
    spec.setdefault("podMetadata", {})["annotations"] = {COMPLETE_DELAY: "1s"}
    return doc


def advertise_rdma(kube: Kube) -> None:
    """The kwok GPU nodes advertise the RDMA device seed 5 asks for (cluster_objects.gpu_node
    has it; a cluster brought up before it gets it here, through the status subresource)."""
    name, count = RDMA_RESOURCE
    for node in GPU_NODES:
        if name not in kube.get("node", node)["status"].get("allocatable", {}):
            amounts = {name: count}
            patch = json.dumps({"status": {"capacity": amounts, "allocatable": amounts}})
            kube.run(
                "patch", "node", node, "--subresource=status", "--type=merge", "-p", patch,
                namespaced=False,
            )  # fmt: skip


def open_queues(request: pytest.FixtureRequest, kube: Kube, docs: list[dict[str, Any]]) -> None:
    """The LocalQueues the seeds name, on a ClusterQueue with room for two whole kwok nodes."""
    queues = {q for d in docs if (q := d["spec"].get("scheduling", {}).get("queue"))}
    if not queues:
        return
    request.getfixturevalue("kueue")  # real Kueue, started once for the session
    name = f"kubetune-{kube.namespace}"
    room: dict[str, int | str] = {"cpu": 16, "memory": "64Gi", RDMA_RESOURCE[0]: 16}
    kube.apply(flavor(), cluster_queue(name, gpus=16, others=room), server_side=True)
    request.addfinalizer(lambda: kube.run("delete", "clusterqueue", name, namespaced=False))
    kube.apply(*(local_queue(q, name) for q in queues))


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize("example", SEEDS, ids=[p.stem for p in SEEDS])
def test_seed_examples_run_on_the_fake_gpu_nodes(
    request: pytest.FixtureRequest, kube: Kube, example: Any
) -> None:
    advertise_rdma(kube)
    docs = [fit_to_fake_nodes(d) for d in example_docs(example)]
    open_queues(request, kube, docs)
    for claim in claims_read(docs):
        make_claim(kube, claim, size="10Gi")
    kube.apply(*docs)  # chained stages wait for the stage before them
    for doc in docs:
        name = doc["metadata"]["name"]
        done = eventually(
            partial(phase_is, kube, name, "Succeeded"), timeout=240, what=f"{name} to succeed"
        )
        nodes, gpus = (
            doc["spec"]["distributed"].get("nodes", 1),
            doc["spec"]["distributed"]["gpusPerNode"],
        )
        pods = kube.get("pods", selector=f"kubetune.io/job={name}")
        assert len(pods) == nodes and {p["spec"]["nodeName"] for p in pods} <= set(GPU_NODES)
        training = pods[0]["spec"]["containers"][0]
        limits = training["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == str(gpus)
        # the RDMA devices and IPC_LOCK the example asks for (seed 5), and nothing more
        for extra in doc["spec"]["resources"].get("extendedResources", []):
            assert limits[extra["name"]] == str(extra["count"])
        added = training["securityContext"]["capabilities"].get("add", [])
        ipc_lock = doc["spec"].get("security", {}).get("ipcLock", False)
        assert added == (["IPC_LOCK"] if ipc_lock else [])
        assert done["conditions"] and done["completionTime"]
