"""The cluster side of bench/operator_burst.py: applying manifests (the CRD, the reporters'
ClusterRole and admission policy as the chart installs them), a namespace per burst, and waiting
for the training-operator to settle a burst's PyTorchJobs."""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any


def apply(kubeconfig: str, kubectl: str, manifests: str) -> None:
    """`kubectl apply --server-side` of YAML documents."""
    command = [kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "--force-conflicts"]
    subprocess.run(
        [*command, "-f", "-"],
        input=manifests,
        text=True,
        check=True,
        capture_output=True,
    )


def reporter_access_yaml() -> str:
    from kubetune.render.rbac import reporter_access
    from kubetune.yamlio import dump_all

    return dump_all(reporter_access())


def fresh_namespace(core: Any, prefix: str) -> str:
    namespace = f"{prefix}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": namespace}})
    return namespace


def drop_namespace(core: Any, namespace: str) -> None:
    """Delete and wait until it is gone, so that one burst's clean-up never slows the next."""
    from kubernetes.client.exceptions import ApiException

    core.delete_namespace(namespace)
    for _ in range(300):
        try:
            core.read_namespace(namespace)
        except ApiException:
            return
        time.sleep(1)


def settle(custom: Any, namespace: str, n: int, timeout: float = 480) -> float:
    """Wait until the training-operator has caught up with the burst (every PyTorchJob shows
    its Suspended condition), so that the restart meets settled jobs; returns the wait."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if suspended_pytorchjobs(custom, namespace) >= n:
            break
        time.sleep(2)
    return time.monotonic() - started


def suspended_pytorchjobs(custom: Any, namespace: str) -> int:
    """PyTorchJobs showing their Suspended condition, listed in pages of 500 (one response
    with 10,000 bodies was cut off by a busy API server)."""
    count, token = 0, None
    while True:
        page = custom.list_namespaced_custom_object(
            "kubeflow.org", "v1", namespace, "pytorchjobs", limit=500, _continue=token
        )
        count += sum(
            any(
                c.get("type") == "Suspended" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
            for p in page["items"]
        )
        token = page["metadata"].get("continue")
        if not token:
            return count
