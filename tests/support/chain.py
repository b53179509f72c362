"""What an end-to-end test needs from a cluster that really trains (the local control plane with
its process node, or kind), and the tiny job they share. The fixtures are in tests/e2e/conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.factories import EXAMPLES, REPO, example_docs
from tests.support.kube import Kube, KubectlError, eventually
from tests.support.process_node import ProcessNode, bound_volume, claim_dir, make_claim
from tests.support.s3 import LocalS3


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

    def remove(self, claim: str, path: str) -> None:
        if self.node:
            (claim_dir(self.kube, claim) / path).unlink()
        else:
            self.kube.run("exec", self._helper(claim), "--", "rm", f"/claim/{path}")

    def release(self, claim: str) -> None:
        """Stop using the claim here (kind: delete the pod that mounts it for the helpers
        above), so that it can be deleted."""
        if not self.node:
            self.kube.run("delete", "pod", self._helper_name(claim), "--ignore-not-found")

    def volume(self, claim: str) -> str:
        """The PersistentVolume the claim is bound to."""
        return bound_volume(self.kube, claim, timeout=120)

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

    def _helper_name(self, claim: str) -> str:
        return f"files-{claim}"[:63]

    def _helper(self, claim: str) -> str:
        """A pod mounting the claim, to copy files in and out (kind has no host folder)."""
        name = self._helper_name(claim)
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


KIND_DIR = REPO / "tests" / "e2e" / "kind"
# A cold kind cluster builds the node image (Kubernetes node binaries, CoreDNS), and both
# kubetune images: far beyond the default timeout (docs/kind.md has the figures).
KIND_UP_TIMEOUT_S = 5400


@dataclass
class KindCluster:
    kube: Kube
    trainer_image: str  # the tag up.sh built and loaded
    s3: LocalS3  # the S3 server up.sh runs in the cluster


def wait_for(check: Any, timeout: float, what: str) -> Any:
    return eventually(check, timeout=timeout, interval=1.0, what=what)


TINY = next(p for p in EXAMPLES if p.name == "tiny.yaml")
TINY_DATA = TINY.parent / "data" / "tiny-chat.jsonl"
TINY_STEPS = 60


def tiny_on_two_nodes(chain: Chain, claim: str) -> dict[str, Any]:
    """tiny.yaml as written, on 2 nodes, with its workspace on a claim that holds its data."""
    doc = example_docs(TINY)[0]
    spec = doc["spec"]
    spec["distributed"]["nodes"] = 2
    spec["storage"] = {"existingClaim": claim}
    spec["training"].update({"maxSteps": TINY_STEPS, "saveSteps": 20})
    return chain.fit(doc)
