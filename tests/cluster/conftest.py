"""Fixtures for tests against the real local control plane (hack/local-cluster).

`cluster` brings the control plane up once per session (or reuses a running one) and gives a
kubectl-backed client; `kube` adds a fresh namespace per test. If the cluster cannot start the
tests error — in CI they never skip. Set KUBETUNE_SKIP_CLUSTER=1 to skip them locally.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.cluster.kube import Kube, in_ci
from tests.factories import REPO


@pytest.fixture(scope="session")
def cluster() -> Kube:
    if os.environ.get("KUBETUNE_SKIP_CLUSTER") and not in_ci():
        pytest.skip("KUBETUNE_SKIP_CLUSTER is set")
    proc = subprocess.run(
        [str(REPO / "hack" / "local-cluster"), "up"], capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/local-cluster up failed:\n{proc.stderr[-4000:]}")
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in proc.stdout.splitlines()
        if line.startswith("export ")
    )
    clients = exports["PATH"].split(":")[0]
    return Kube(kubeconfig=exports["KUBECONFIG"], kubectl_path=f"{clients}/kubectl")


@pytest.fixture
def kube(cluster: Kube) -> Iterator[Kube]:
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    cluster.run("create", "namespace", namespace, namespaced=False)
    yield cluster.with_namespace(namespace)
    cluster.run("delete", "namespace", namespace, "--wait=false", namespaced=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
