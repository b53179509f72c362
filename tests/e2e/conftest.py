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
from typing import Any

import pytest

from tests.support import kind
from tests.support.chain import KIND_DIR, KIND_UP_TIMEOUT_S, Chain, KindCluster
from tests.support.factories import REPO
from tests.support.kube import Kube
from tests.support.process_node import PLACEMENT, ProcessNode
from tests.support.tiers import unavailable


@pytest.fixture
def local_chain(
    kube: Kube,
    operator: Any,
    process_node: ProcessNode,
) -> Chain:
    return Chain(kube=kube, placement=PLACEMENT, node=process_node)


# pytest-timeout counts the session fixture's setup against the first kind test.
KIND = [pytest.mark.kind, pytest.mark.timeout(KIND_UP_TIMEOUT_S + 900)]


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest) -> Iterator[KindCluster]:
    """The kind cluster of tests/e2e/kind/up.sh (created or reused; started in the background
    by the root conftest when earlier tiers ran), deleted at the end of the session unless
    KUBETUNE_KIND_KEEP=1. Skips only when no Docker engine can be had."""
    found = subprocess.run([str(REPO / "hack/docker")], capture_output=True, text=True)
    if found.returncode != 0:
        reason = (found.stderr.strip().splitlines() or ["hack/docker failed"])[-1]
        unavailable("kind", f"it needs a Docker engine: {reason}")
    started = request.config.stash.get(kind.STARTED, None) or kind.KindUp.start()
    request.config.stash[kind.TAKEN] = True  # this fixture deletes the cluster at its end
    exports = started.result()
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
