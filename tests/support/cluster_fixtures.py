"""Fixtures for tests against the real local control plane (hack/local-cluster), shared by the
cluster, e2e and faults tiers (tests/conftest.py loads this module as a plugin).

`cluster` brings the control plane up once per session (or reuses a running one) and gives a
kubectl-backed client; `kube` adds a fresh namespace per test. If the cluster cannot start, the
tests error; leave the tiers out with `-m "not (cluster or e2e or faults)"`.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kubetune.api.crd import crd
from tests.support.factories import REPO, make_job
from tests.support.kube import Kube, KubectlError, condition, eventually
from tests.support.operator import Operator
from tests.support.process_node import ProcessNode


@pytest.fixture(scope="session")
def cluster() -> Kube:
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


@pytest.fixture(scope="module")
def dry_run_kube(cluster: Kube) -> Iterator[Kube]:
    """One namespace for a whole module of server-side dry runs (they store nothing, so the
    tests cannot disturb each other): a namespace per test would cost two more API calls each."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    cluster.run("create", "namespace", namespace, namespaced=False)
    yield cluster.with_namespace(namespace)
    cluster.run("delete", "namespace", namespace, "--wait=false", namespaced=False)


@pytest.fixture(scope="session")
def ftj_crd(cluster: Kube) -> Kube:
    cluster.apply(crd(), server_side=True)
    eventually(
        lambda: condition(cluster.get("crd", "finetunejobs.kubetune.io"), "Established"),
        what="the FineTuneJob CRD to be established",
    )
    eventually(
        lambda: _admits(cluster, make_job(**{"metadata": {"name": "probe"}})),
        timeout=30,
        what="the FineTuneJob API to be served",
    )
    return cluster


def _admits(kube: Kube, doc: dict[str, Any]) -> bool:
    try:
        kube.apply(doc, dry_run=True)
        return True
    except KubectlError as err:
        if "no matches for kind" in err.stderr:  # discovery not refreshed yet
            return False
        raise


@pytest.fixture(scope="module")
def operator(ftj_crd: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    running = Operator(
        ftj_crd.kubeconfig, str(tmp_path_factory.mktemp("operator") / "operator.log")
    )
    yield running
    running.stop()


@pytest.fixture(scope="session")
def kueue(cluster: Kube) -> Kube:
    """Real Kueue on the local control plane (`hack/local-cluster up --kueue`: reuses the
    running cluster, builds Kueue on first use); only the tests that ask for it pay."""
    proc = subprocess.run(
        [str(REPO / "hack" / "local-cluster"), "up", "--kueue"],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/local-cluster up --kueue failed:\n{proc.stderr[-4000:]}")
    return cluster


@pytest.fixture(scope="session")
def process_node(cluster: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessNode]:
    """The node whose pods run for real on this machine (hack/cluster/process_node.py)."""
    node = ProcessNode(cluster, tmp_path_factory.mktemp("process-node"))
    yield node
    node.stop()
