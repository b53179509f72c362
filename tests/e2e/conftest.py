"""Two clusters for one end-to-end test body.

`local`: the real local control plane (kube-apiserver, training-operator, kwok), the operator
as a process, and the process node running the pods as local processes. Runs everywhere.

`kind`: a kind cluster built offline (hack/kind/node-image.sh) with the training-operator, both
images built and loaded, kubetune installed with Helm (tests/e2e/kind/up.sh): real kubelet,
containerd, pod network, Services and DNS. Needs a Docker engine (hack/docker); skips without
one. docs/kind.md.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.cluster.conftest import cluster, ftj_crd, kube, operator, process_node  # noqa: F401
from tests.cluster.kube import Kube, KubectlError, eventually, in_ci
from tests.cluster.process_node_support import PLACEMENT, ProcessNode, claim_dir, make_claim
from tests.factories import REPO

KIND_DIR = REPO / "tests" / "e2e" / "kind"


@dataclass
class Chain:
    """What a test needs from a cluster that really trains: where pods go, how to put files on
    a claim and read them back, and a container's log."""

    kube: Kube
    placement: dict[str, Any] = field(default_factory=dict)
    access_mode: str = "ReadWriteMany"
    node: ProcessNode | None = None
    image: str | None = None  # the trainer image the cluster has (None: the process node's)

    @property
    def where(self) -> str:
        return "kind" if self.image else "process node"

    def fit(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A FineTuneJob placed where this cluster trains, with the image it has."""
        spec = doc["spec"]
        if self.placement:
            spec["placement"] = self.placement
        else:  # kind's one node: a job's own placement (GPU nodes) would leave it Pending
            spec.pop("placement", None)
        if self.image:
            spec["image"], spec["imagePullPolicy"] = self.image, "Never"
        return doc

    def claim(self, name: str) -> str:
        make_claim(self.kube, name, self.access_mode)
        return name

    def put(self, claim: str, path: str, content: bytes) -> None:
        if self.node:
            target = claim_dir(self.kube, claim) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        else:
            helper = self._helper(claim)
            self.kube.run(
                "exec",
                "-i",
                helper,
                "--",
                "sh",
                "-c",
                f'mkdir -p "$(dirname /claim/{path})" && cat > /claim/{path}',
                stdin=content.decode(),
            )

    def read(self, claim: str, path: str) -> str | None:
        if self.node:
            target = claim_dir(self.kube, claim) / path
            return target.read_text() if target.is_file() else None
        try:
            return self.kube.run("exec", self._helper(claim), "--", "cat", f"/claim/{path}")
        except Exception:
            return None

    def exists(self, claim: str, path: str) -> bool:
        if self.node:
            return (claim_dir(self.kube, claim) / path).exists()
        try:  # (reading it would not do: a binary file is no text)
            self.kube.run("exec", self._helper(claim), "--", "test", "-e", f"/claim/{path}")
            return True
        except KubectlError:
            return False

    def logs(self, pod: str, container: str) -> str:
        if self.node:
            return self.node.logs(self.kube.namespace, pod, container)
        return self.kube.run("logs", pod, "-c", container)

    def debug(self) -> str:
        """Every training pod's container logs (their ends, in kind), for a failed test."""
        if self.node:
            return self.node.all_logs(self.kube.namespace)
        parts = [self.kube.run("get", "pods,pytorchjobs,finetunejobs", "-o", "wide")]
        for pod in self.kube.get("pods", selector="kubetune.io/job"):
            name = pod["metadata"]["name"]
            for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
                try:
                    text = self.kube.run("logs", name, "-c", container["name"], "--tail=60")
                except KubectlError as err:
                    text = str(err)
                parts.append(f"--- {name}/{container['name']}\n{text}")
        return "\n".join(parts)

    def _helper(self, claim: str) -> str:
        """A pod mounting the claim, to copy files in and out (kind has no host folder)."""
        name = f"files-{claim}"[:63]
        if not self.kube.exists("pod", name):
            self.kube.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name},
                    "spec": {
                        "containers": [
                            {
                                "name": "files",
                                "image": self.image,
                                "imagePullPolicy": "Never",
                                "command": ["sleep", "infinity"],
                                "volumeMounts": [{"name": "claim", "mountPath": "/claim"}],
                            }
                        ],
                        "volumes": [
                            {"name": "claim", "persistentVolumeClaim": {"claimName": claim}}
                        ],
                    },
                }
            )
            self.kube.run("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=120s")
        return name


@pytest.fixture
def local_chain(
    kube: Kube,  # noqa: F811
    operator: Any,  # noqa: F811
    process_node: ProcessNode,  # noqa: F811
) -> Chain:
    return Chain(kube=kube, placement=PLACEMENT, node=process_node)


# A cold kind cluster builds the node image (Kubernetes node binaries, CoreDNS), and both
# kubetune images: far beyond the default timeout (docs/kind.md has the figures).
KIND_UP_TIMEOUT_S = 5400
# pytest-timeout counts the session fixture's setup against the first kind test.
KIND = [pytest.mark.kind, pytest.mark.timeout(KIND_UP_TIMEOUT_S + 900)]


@dataclass
class KindCluster:
    kube: Kube
    trainer_image: str  # the tag up.sh built and loaded


@pytest.fixture(scope="session")
def kind_cluster() -> Iterator[KindCluster]:
    """The kind cluster of tests/e2e/kind/up.sh (created or reused), deleted at the end of the
    session unless KUBETUNE_KIND_KEEP=1. Skips only when no Docker engine can be had."""
    if os.environ.get("KUBETUNE_SKIP_KIND") == "1" and not in_ci():
        pytest.skip("KUBETUNE_SKIP_KIND=1")
    found = subprocess.run([str(REPO / "hack/docker")], capture_output=True, text=True)
    if found.returncode != 0:
        reason = (found.stderr.strip().splitlines() or ["hack/docker failed"])[-1]
        pytest.skip(f"kind end-to-end needs a Docker engine: {reason}")
    proc = subprocess.run(
        ["bash", str(KIND_DIR / "up.sh")],
        stdout=subprocess.PIPE,
        text=True,
        timeout=KIND_UP_TIMEOUT_S,
    )  # its progress goes to stderr, shown with the test's output
    assert proc.returncode == 0, "tests/e2e/kind/up.sh failed (its output is above)"
    exports = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    clients = (
        subprocess.run(
            ["bash", str(REPO / "hack/cluster/build-binaries.sh"), "--paths", "clients"],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .split("=", 1)[1]
    )
    yield KindCluster(
        kube=Kube(kubeconfig=exports["KUBECONFIG"], kubectl_path=f"{clients}/kubectl"),
        trainer_image=exports["TRAINER_IMAGE"],
    )
    if os.environ.get("KUBETUNE_KIND_KEEP") != "1":
        subprocess.run(["bash", str(KIND_DIR / "up.sh"), "down"], capture_output=True)


@pytest.fixture
def kind_chain(kind_cluster: KindCluster) -> Iterator[Chain]:
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    kind_cluster.kube.run("create", "namespace", namespace, namespaced=False)
    # One node: its hostPath volumes serve ReadWriteMany claims (up.sh makes them).
    yield Chain(
        kube=kind_cluster.kube.with_namespace(namespace),
        image=kind_cluster.trainer_image,
    )
    kind_cluster.kube.run("delete", "namespace", namespace, "--wait=false", namespaced=False)


@pytest.fixture(params=["local", pytest.param("kind", marks=KIND)])
def chain(request: pytest.FixtureRequest) -> Chain:
    return request.getfixturevalue(f"{request.param}_chain")  # type: ignore[no-any-return]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    return eventually(check, timeout=timeout, interval=1.0, what=what)
