"""Network opt-ins and fabric presets, rendered: a golden file per case (the pod template's
network-relevant parts) plus the promises each one makes.

Regenerate with `KUBETUNE_UPDATE_GOLDEN=1 pytest tests/render`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetune.api import parse_job
from kubetune.render import render, to_yaml
from kubetune.render.fabric import FABRIC_ENV
from kubetune.render.pod import CONTAINER
from tests.support.factories import make_job
from tests.support.golden import GOLDEN, assert_golden, by_kind

NETWORK_GOLDEN = GOLDEN / "network"
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}
MULTI_GPU: dict[str, Any] = {"gpus": 8, "nodes": 2}

# (case, job factory arguments)
CASES: list[tuple[str, dict[str, Any]]] = [
    ("defaults", MULTI_GPU),
    *[(f"fabric-{f}", {**MULTI_GPU, "spec.distributed.fabric": f}) for f in FABRIC_ENV],
    (
        "fabric-infiniband-explicit-wins",
        {
            **MULTI_GPU,
            "spec.distributed.fabric": "infiniband",
            "spec.distributed.nccl": {"ibDisable": True, "extraEnv": {"NCCL_NET": "Socket"}},
        },
    ),
    (
        "fabric-efa-env-wins",
        {
            **MULTI_GPU,
            "spec.distributed.fabric": "efa",
            "spec.env": [{"name": "FI_EFA_USE_DEVICE_RDMA", "value": "0"}],
        },
    ),
    (
        "extended-resources",
        {
            **MULTI_GPU,
            "spec.resources.extendedResources": [
                {"name": "rdma/ib", "count": 1},
                {"name": "nvidia.com/hostdev", "count": 8},
            ],
        },
    ),
    ("ipc-lock", {**MULTI_GPU, "spec.security.ipcLock": True}),
    ("host-network", {**MULTI_GPU, "spec.network.hostNetwork": True}),
    (
        "secondary-networks",
        {
            **MULTI_GPU,
            "spec.network.secondaryNetworks": [
                {"name": "ib-rail-0", "interface": "net1"},
                {"name": "ib-rail-1", "namespace": "network-operator", "interface": "net2"},
            ],
            "spec.podMetadata.annotations": {"team": "ml"},
        },
    ),
    (
        "efa-everything",
        {
            **MULTI_GPU,
            "spec.distributed.fabric": "efa",
            "spec.resources.extendedResources": [{"name": "vpc.amazonaws.com/efa", "count": 32}],
            "spec.security.ipcLock": True,
        },
    ),
]
NCCL_PREFIXES = ("NCCL_", "TORCH_NCCL_", "FI_")


def master(**kw: Any) -> dict[str, Any]:
    job = by_kind(render(parse_job(make_job(**kw))), "PyTorchJob")[0]
    template: dict[str, Any] = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    return template


def containers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = template["spec"]
    return {c["name"]: c for c in spec["initContainers"] + spec["containers"]}


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def network_view(template: dict[str, Any]) -> dict[str, Any]:
    """What the golden file shows: the pod's network settings and each container's security
    context, resources and NCCL/libfabric environment (in rendered order)."""
    spec = template["spec"]
    pod = {k: spec[k] for k in ("hostNetwork", "dnsPolicy") if k in spec}
    if annotations := template["metadata"].get("annotations"):
        pod["annotations"] = annotations
    view: dict[str, Any] = {"pod": pod}
    for name, container in containers(template).items():
        view[name] = {
            "securityContext": container["securityContext"],
            "resources": container.get("resources", {}),
            "env": [
                f"{e['name']}={e['value']}"
                for e in container["env"]
                if e["name"].startswith(NCCL_PREFIXES)
            ],
        }
    return view


@pytest.mark.parametrize(("case", "kw"), CASES, ids=[c for c, _ in CASES])
def test_network_golden(case: str, kw: dict[str, Any]) -> None:
    assert_golden(NETWORK_GOLDEN / f"{case}.yaml", to_yaml([network_view(master(**kw))]), case)


def test_every_network_golden_file_has_a_case() -> None:
    assert {p.stem for p in NETWORK_GOLDEN.glob("*.yaml")} == {c for c, _ in CASES}


def test_nothing_opted_in_keeps_the_restricted_security_context() -> None:
    template = master(**MULTI_GPU)
    spec = template["spec"]
    assert "hostNetwork" not in spec and "dnsPolicy" not in spec
    assert "annotations" not in template["metadata"]
    for container in containers(template).values():
        assert container["securityContext"] == RESTRICTED


@pytest.mark.parametrize(("fabric", "variables"), FABRIC_ENV.items(), ids=list(FABRIC_ENV))
def test_every_preset_sets_its_variables_and_nothing_else_changes(
    fabric: str, variables: dict[str, str]
) -> None:
    plain = master(**MULTI_GPU)
    preset = master(**MULTI_GPU, **{"spec.distributed.fabric": fabric})
    train = env_of(containers(preset)[CONTAINER])
    assert {k: train[k] for k in variables} == variables
    assert train.keys() - env_of(containers(plain)[CONTAINER]).keys() == set(variables)
    for container in containers(preset).values():
        assert container["securityContext"] == RESTRICTED


def test_explicit_nccl_settings_win_over_the_preset_and_appear_once() -> None:
    kw = dict(CASES)["fabric-infiniband-explicit-wins"]
    container = containers(master(**kw))[CONTAINER]
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names))
    env = env_of(container)
    assert env["NCCL_IB_DISABLE"] == "1" and env["NCCL_NET"] == "Socket"


def test_spec_env_wins_over_the_preset() -> None:
    container = containers(master(**dict(CASES)["fabric-efa-env-wins"]))[CONTAINER]
    assert [e["value"] for e in container["env"] if e["name"] == "FI_EFA_USE_DEVICE_RDMA"] == ["0"]
    assert env_of(container)["FI_PROVIDER"] == "efa"


def test_extended_resources_go_to_the_training_container_only() -> None:
    parts = containers(master(**dict(CASES)["extended-resources"]))
    train = parts[CONTAINER]["resources"]
    for amounts in (train["requests"], train["limits"]):
        assert amounts["rdma/ib"] == "1" and amounts["nvidia.com/hostdev"] == "8"
        assert amounts["nvidia.com/gpu"] == "8"
    assert "rdma/ib" not in json.dumps(parts["prepare"])


def test_ipc_lock_adds_only_that_capability_to_the_training_container() -> None:
    parts = containers(master(**{**MULTI_GPU, "spec.security.ipcLock": True}))
    assert parts[CONTAINER]["securityContext"] == {
        **RESTRICTED,
        "capabilities": {"drop": ["ALL"], "add": ["IPC_LOCK"]},
    }
    assert parts["prepare"]["securityContext"] == RESTRICTED


def test_host_network_resolves_cluster_names() -> None:
    spec = master(**{**MULTI_GPU, "spec.network.hostNetwork": True})["spec"]
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert spec["securityContext"]["runAsNonRoot"] is True  # nothing else loosens


def test_secondary_networks_become_the_multus_annotation() -> None:
    template = master(**dict(CASES)["secondary-networks"])
    annotations = template["metadata"]["annotations"]
    assert annotations["team"] == "ml"
    assert json.loads(annotations["k8s.v1.cni.cncf.io/networks"]) == [
        {"name": "ib-rail-0", "interface": "net1"},
        {"name": "ib-rail-1", "namespace": "network-operator", "interface": "net2"},
    ]


def test_every_replica_gets_the_same_network_settings() -> None:
    job = by_kind(render(parse_job(make_job(**dict(CASES)["efa-everything"]))), "PyTorchJob")[0]
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert network_view(replicas["Master"]["template"]) == network_view(
        replicas["Worker"]["template"]
    )
