"""Two clusters for one end-to-end test body.

`local`: the real local control plane (kube-apiserver, training-operator, kwok), the operator
as a process, and the process node running the pods as local processes. Runs everywhere.

`kind`: a kind cluster with the training-operator, both images built and loaded, kubetune
installed with Helm (tests/e2e/kind/up.sh). Needs Docker; skips without it.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.cluster.conftest import cluster, ftj_crd, kube, operator, process_node  # noqa: F401
from tests.cluster.kube import Kube, eventually
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

    def fit(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A FineTuneJob placed where this cluster trains, with the image it has."""
        spec = doc["spec"]
        if self.placement:
            spec["placement"] = self.placement
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
        return self.read(claim, path) is not None or self._is_dir(claim, path)

    def _is_dir(self, claim: str, path: str) -> bool:
        try:
            self.kube.run("exec", self._helper(claim), "--", "test", "-d", f"/claim/{path}")
            return True
        except Exception:
            return False

    def logs(self, pod: str, container: str) -> str:
        if self.node:
            return self.node.logs(self.kube.namespace, pod, container)
        return self.kube.run("logs", pod, "-c", container)

    def debug(self) -> str:
        if self.node:
            return self.node.all_logs(self.kube.namespace)
        return self.kube.run("get", "pods,pytorchjobs,finetunejobs", "-o", "wide")

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
                                "image": "busybox:1.37",
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


def docker_available() -> str | None:
    """None when Docker answers, else why not."""
    if not shutil.which("docker"):
        return "docker is not installed"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "docker is installed but its engine does not answer"
    if not shutil.which("kind"):
        return "kind is not installed (go install sigs.k8s.io/kind@latest)"
    return None


@pytest.fixture(scope="session")
def kind_cluster() -> Kube:
    if why := docker_available():
        pytest.skip(f"kind end-to-end needs Docker: {why}")
    out = subprocess.run(
        ["bash", str(KIND_DIR / "up.sh")], check=True, capture_output=True, text=True
    ).stdout
    kubeconfig = next(
        line.split("=", 1)[1] for line in out.splitlines() if line.startswith("KUBECONFIG=")
    )
    return Kube(kubeconfig=kubeconfig, kubectl_path=shutil.which("kubectl") or "kubectl")


@pytest.fixture
def kind_chain(kind_cluster: Kube) -> Iterator[Chain]:
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    kind_cluster.run("create", "namespace", namespace, namespaced=False)
    # kind: one node with local-path volumes (ReadWriteOnce), images loaded by up.sh
    yield Chain(
        kube=kind_cluster.with_namespace(namespace),
        access_mode="ReadWriteOnce",
        image="kubetune/trainer:e2e",
    )
    kind_cluster.run("delete", "namespace", namespace, "--wait=false", namespaced=False)


@pytest.fixture(params=["local", pytest.param("kind", marks=pytest.mark.kind)])
def chain(request: pytest.FixtureRequest) -> Chain:
    return request.getfixturevalue(f"{request.param}_chain")  # type: ignore[no-any-return]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    return eventually(check, timeout=timeout, interval=1.0, what=what)
