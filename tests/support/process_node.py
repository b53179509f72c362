"""The process node (hack/cluster/process_node.py) as a test fixture, and volume helpers.

Pods that select `kubetune.io/process-node=true` (and tolerate its taint) run for real on this
machine; everything else stays on kwok's fake GPU nodes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.factories import REPO
from tests.support.kube import Kube, eventually

NODE = "kubetune-local"
LABEL = "kubetune.io/process-node"
PLACEMENT: dict[str, Any] = {
    "nodeSelector": {LABEL: "true"},
    "tolerations": [{"key": LABEL, "operator": "Exists", "effect": "NoSchedule"}],
}


class ProcessNode:
    def __init__(self, cluster: Kube, state: Path) -> None:
        self.state = state
        self.log_path = state / "process-node.log"
        state.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,  # the test venv stands in for the trainer image
                str(REPO / "hack" / "cluster" / "process_node.py"),
                "--kubeconfig",
                cluster.kubeconfig,
                "--name",
                NODE,
                "--state",
                str(state),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        eventually(lambda: self.ready(cluster), timeout=60, what=f"node {NODE} to be Ready")

    def ready(self, cluster: Kube) -> bool:
        assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
        if b"watching its pods" not in self.log_path.read_bytes():
            return False
        node = cluster.get("node", NODE)
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node.get("status", {}).get("conditions", [])
        )

    def logs(self, namespace: str, pod: str, container: str) -> str:
        path = self.state / "pods" / f"{namespace}_{pod}" / f"{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def all_logs(self, namespace: str, tail: int = 60) -> str:
        """Every container log of a namespace's pods (for failure messages)."""
        parts = []
        for path in sorted(self.state.glob(f"pods/{namespace}_*/*.log")):
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"--- {path.parent.name}/{path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def make_claim(kube: Kube, name: str, access: str = "ReadWriteMany", size: str = "1Gi") -> None:
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": {"accessModes": [access], "resources": {"requests": {"storage": size}}},
        }
    )


def bound_volume(kube: Kube, name: str, timeout: float = 60) -> str:
    """The PersistentVolume a claim is bound to, once it is."""
    pvc = eventually(
        lambda: (lambda c: c if c.get("status", {}).get("phase") == "Bound" else None)(
            kube.get("pvc", name)
        ),
        timeout=timeout,
        what=f"claim {name} to be bound",
    )
    return str(pvc["spec"]["volumeName"])


def claim_dir(kube: Kube, name: str) -> Path:
    """The folder behind a bound claim (the local cluster's PersistentVolumes are hostPath)."""
    pv = kube.get("pv", bound_volume(kube, name))
    return Path(pv["spec"]["hostPath"]["path"])
