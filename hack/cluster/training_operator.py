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
    # Its cert rotator refreshes the webhook certificate twice at start, and when the two
    # writes of the Secret conflict the manager stops right after starting its workers (seen
    # once on this machine): ready means serving its webhook, and a manager that stopped
    # before that is started again.
    for attempt in range(1, ATTEMPTS + 1):
        offset = p["log"].stat().st_size if p["log"].exists() else 0
        pids.start_detached(cmd, p["log"], p["pid"], append=True)
        try:
            wait_for(
                "the training-operator's webhook certificate",
                lambda o=offset: certs_copied(kubectl) or stopped(p, o),
                timeout=60,
            )
            wait_for(
                "the training-operator's PyTorchJob controller and webhook server",
                lambda o=offset: serving(p["log"], o) or stopped(p, o),
                timeout=90,
            )
            return
        except Stopped as err:
            if attempt == ATTEMPTS:
                raise RuntimeError(f"the training-operator stopped at start: {err}") from None


ATTEMPTS = 3
READY = (b'Starting workers\t{"controller": "pytorchjob-controller"', b"Serving webhook server")


class Stopped(Exception):
    """The training-operator's process ended while starting."""


def stopped(p: dict[str, Path], offset: int) -> bool:
    if pids.alive(p["pid"], COMMAND) is None:
        tail = p["log"].read_bytes()[offset:][-1500:].decode(errors="replace")
        raise Stopped(f"{p['log']} ends with:\n{tail}")
    return False


def serving(log: Path, offset: int) -> bool:
    text = log.read_bytes()[offset:]
    return all(line in text for line in READY)


def certs_copied(kubectl: Callable[..., str]) -> bool:
    """Since v1.8 its controllers wait for webhook serving certificates: it generates them
    into the Secret, and controller-runtime reads them from CERT_DIR."""
    secret = ("secret", "-n", "kubeflow", "training-operator-webhook-cert")
    raw = kubectl("get", *secret, "-o", "json")
    data = json.loads(raw).get("data") or {}
    if not data.get("tls.crt"):
        return False
    CERT_DIR.mkdir(parents=True, exist_ok=True)
    for key in ("tls.crt", "tls.key"):
        (CERT_DIR / key).write_bytes(base64.b64decode(data[key]))
    return True
