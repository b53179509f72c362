"""Fixtures for tests against the real local control plane (hack/local-cluster), shared by the
cluster, e2e and faults tiers (tests/conftest.py loads this module as a plugin).

`cluster` brings the control plane up once per session (or reuses a running one) and gives a
kubectl-backed client; `kube` adds a fresh namespace per test. If the cluster cannot start, the
tests error; leave the tiers out with `-m "not (cluster or e2e or faults)"`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune.api.crd import crd
from kubetune.render.rbac import reporter_access
from tests.support.factories import REPO, make_job
from tests.support.kube import Kube, KubectlError, condition, eventually
from tests.support.operator import Operator
from tests.support.process_node import ProcessNode
from tests.support.s3 import LocalS3


@pytest.fixture(scope="session")
def cluster_exports() -> dict[str, str]:
    """`hack/local-cluster up` (once per session): its `export NAME=value` lines."""
    proc = subprocess.run(
        [str(REPO / "hack" / "local-cluster"), "up"], capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/local-cluster up failed:\n{proc.stderr[-4000:]}")
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in proc.stdout.splitlines()
        if line.startswith("export ")
    )


RECYCLE_EVERY_S = 15


@pytest.fixture(scope="session")
def cluster(cluster_exports: dict[str, str]) -> Iterator[Kube]:
    """The control plane, with its volume pool recycled every RECYCLE_EVERY_S seconds while the
    session runs: nothing provisions volumes here, so each test's claims would otherwise keep
    theirs Released once its namespace is gone, and a long session ran the pool dry (jobs of
    a late test waited forever on `ClaimPending`)."""
    clients = cluster_exports["PATH"].split(":")[0]
    stop = threading.Event()

    def recycle() -> None:
        while not stop.wait(RECYCLE_EVERY_S):
            subprocess.run(
                [sys.executable, str(REPO / "hack" / "cluster" / "local_cluster.py"), "recycle"],
                capture_output=True,
                timeout=120,
            )

    recycler = threading.Thread(target=recycle, name="volume-recycler", daemon=True)
    recycler.start()
    yield Kube(kubeconfig=cluster_exports["KUBECONFIG"], kubectl_path=f"{clients}/kubectl")
    stop.set()
    recycler.join(timeout=130)


@pytest.fixture(scope="session")
def local_s3(request: pytest.FixtureRequest) -> LocalS3:
    """The control plane's S3 server (SeaweedFS), started by `hack/local-cluster up`; or, when
    KUBETUNE_LOCAL_S3_ENDPOINT and KUBETUNE_LOCAL_S3_CREDENTIALS are set (the exports of `up`),
    that server, with no control plane started for tests that need only S3."""
    exports = {k: v for k, v in os.environ.items() if k.startswith("KUBETUNE_LOCAL_S3_")}
    if len(exports) < 2:
        exports = request.getfixturevalue("cluster_exports")
    return LocalS3(
        endpoint=exports["KUBETUNE_LOCAL_S3_ENDPOINT"],
        credentials_file=Path(exports["KUBETUNE_LOCAL_S3_CREDENTIALS"]),
    )


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
    """The FineTuneJob CRD and the reporters' cluster-wide access (ClusterRole and admission
    policy), as the chart installs them."""
    cluster.apply(crd(), *reporter_access(), server_side=True)
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


def local_cluster(*args: str) -> None:
    proc = subprocess.run(
        [str(REPO / "hack" / "local-cluster"), *args], capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/local-cluster {' '.join(args)} failed:\n{proc.stderr[-4000:]}")


@pytest.fixture(scope="session")
def kueue(cluster: Kube) -> Kube:
    """Real Kueue on the local control plane (`hack/local-cluster up --kueue`: reuses the
    running cluster, builds Kueue on first use); only the tests that ask for it pay."""
    local_cluster("up", "--kueue")
    return cluster


@pytest.fixture
def without_kueue(cluster: Kube) -> Iterator[Kube]:
    """The local control plane as a cluster that never had Kueue: its API server serves no
    kueue.x-k8s.io. In a test run this holds before the first test that asks for `kueue`
    (tests/cluster/test_kueue.py starts with the one that asks for this); on a cluster that
    an earlier run left Kueue on, `hack/local-cluster kueue-down` removes it, and `up --kueue`
    puts it back afterwards."""
    had = "kueue.x-k8s.io/v1beta2" in cluster.run("api-versions", namespaced=False).split()
    if had:
        local_cluster("kueue-down")
    yield cluster
    if had:
        local_cluster("up", "--kueue")


@pytest.fixture(scope="session")
def process_node(cluster: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessNode]:
    """The node whose pods run for real on this machine (hack/cluster/process_node.py)."""
    node = ProcessNode(cluster, tmp_path_factory.mktemp("process-node"))
    yield node
    node.stop()
