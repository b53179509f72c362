"""The Kubeflow training-operator of the local control plane: run out of cluster as a local
process (its PyTorchJob controller only), with the webhook certificate it generates copied to
where controller-runtime reads it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pids

COMMAND = "training-operator"  # its binary's name, in its command line
CERT_DIR = Path("/tmp/k8s-webhook-server/serving-certs")


def paths(state: Path) -> dict[str, Path]:
    return {"pid": state / "training-operator.pid", "log": state / "training-operator.log"}


def start(
    binary_dir: Path,
    state: Path,
    kubeconfig: Path,
    apply: Callable[[list[dict[str, Any]]], None],
    kubectl: Callable[..., str],
    wait_for: Callable[..., None],
) -> None:
    """Start it unless it runs; wait until its PyTorchJob controller works."""
    p = paths(state)
    if pids.alive(p["pid"], COMMAND):
        return
    apply(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubeflow"}},
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": "training-operator-webhook-cert", "namespace": "kubeflow"},
            },
        ]
    )
    cmd = [
        str(binary_dir / "training-operator.v1"),
        f"--kubeconfig={kubeconfig}",
        "--enable-scheme=pytorchjob",
        "--metrics-bind-address=0",
        "--health-probe-bind-address=0",
    ]
    pids.start_detached(cmd, p["log"], p["pid"])

    # Since v1.8 its controllers wait for webhook serving certificates: it generates them into
    # the Secret, and controller-runtime reads them from CERT_DIR.
    def certs_copied() -> bool:
        secret = ("secret", "-n", "kubeflow", "training-operator-webhook-cert")
        raw = kubectl("get", *secret, "-o", "json")
        data = json.loads(raw).get("data") or {}
        if not data.get("tls.crt"):
            return False
        CERT_DIR.mkdir(parents=True, exist_ok=True)
        for key in ("tls.crt", "tls.key"):
            (CERT_DIR / key).write_bytes(base64.b64decode(data[key]))
        return True

    wait_for("the training-operator's webhook certificate", certs_copied, timeout=60)
    ready = b'Starting workers\t{"controller": "pytorchjob-controller"'
    wait_for(
        "the training-operator's PyTorchJob controller",
        lambda: ready in p["log"].read_bytes(),
        timeout=90,
    )
