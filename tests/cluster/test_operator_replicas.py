"""Two operator replicas through kopf peering: one works, the other stands by and takes over.

Real kube-apiserver, real kopf peering objects (the chart's kopf.dev CRDs), two operator
processes with different priorities watching one namespace.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support.factories import REPO
from tests.support.kube import Kube, eventually
from tests.support.operator import Operator, tiny

PEERING_CRDS = "templates/crds/kopf-peering.yaml"


def install_peering_crds(kube: Kube) -> None:
    helm = str(Path(kube.kubectl_path).with_name("helm"))
    rendered = subprocess.run(
        [
            helm,
            "template",
            "kubetune",
            str(REPO / "charts" / "kubetune"),
            "--show-only",
            PEERING_CRDS,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    crds = [d for d in yaml.safe_load_all(rendered) if d]
    assert {c["spec"]["names"]["kind"] for c in crds} == {"ClusterKopfPeering", "KopfPeering"}
    kube.apply(*crds, server_side=True)
    for crd in crds:
        kube.run(
            "wait",
            "--for=condition=Established",
            f"crd/{crd['metadata']['name']}",
            namespaced=False,
        )


def replica(kube: Kube, tmp_path: Path, name: str, priority: int) -> Operator:
    return Operator(
        kube.kubeconfig,
        str(tmp_path / f"{name}.log"),
        args=["--namespace", kube.namespace, "--peering", "replicas", "--priority", str(priority)],
    )


def test_one_replica_works_the_other_takes_over(ftj_crd: Kube, kube: Kube, tmp_path: Path) -> None:
    install_peering_crds(kube)
    first = replica(kube, tmp_path, "first", priority=200)
    second = replica(kube, tmp_path, "second", priority=100)
    try:
        # Both registered in the peering object the operator created; the lower priority
        # starts paused (kopf begins paused and only the highest live peer resumes).
        eventually(
            lambda: len(kube.get("kopfpeering", "replicas").get("status") or {}) == 2,
            timeout=60,
            what="both replicas to register in the peering object",
        )
        eventually(
            lambda: "Resuming operations" in first.output(), timeout=30, what="first to work"
        )
        assert "Resuming operations" not in second.output()
        kube.apply(tiny("job-a"))
        eventually(
            lambda: kube.exists("pytorchjob", "job-a"), timeout=60, what="job-a's PyTorchJob"
        )
        # the PyTorchJob is visible a moment before the operator logs what it created
        eventually(lambda: "job-a" in first.output(), timeout=10, what="first to log job-a")
        assert "job-a" not in second.output()

        first.stop()  # a graceful stop removes its peering entry: the other resumes at once
        eventually(
            lambda: "Resuming operations" in second.output(),
            timeout=60,
            what="the standby replica to take over",
        )
        kube.apply(tiny("job-b"))
        eventually(
            lambda: kube.exists("pytorchjob", "job-b"), timeout=60, what="job-b's PyTorchJob"
        )
        eventually(
            lambda: "created" in second.output() and "job-b" in second.output(),
            timeout=10,
            what="second to log job-b",
        )
        assert len(kube.get("pytorchjobs")) == 2  # nothing done twice
    finally:
        for op in (first, second):
            if op.proc.poll() is None:
                op.stop()
