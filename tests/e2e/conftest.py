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
from pathlib import Path
from typing import Any

import pytest

from tests.support import kind
from tests.support.chain import KIND_DIR, KIND_UP_TIMEOUT_S, Chain, KindCluster
from tests.support.factories import REPO
from tests.support.kube import Kube, eventually
from tests.support.process_node import PLACEMENT, ProcessNode
from tests.support.s3 import LocalS3
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
        s3=LocalS3(
            endpoint=exports["KIND_S3_ENDPOINT"],
            credentials_file=Path(exports["KIND_S3_CREDENTIALS"]),
            job_endpoint=exports["KIND_S3_JOB_ENDPOINT"],
        ),
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
    chain: Chain = request.getfixturevalue(f"{request.param}_chain")
    return chain


@pytest.fixture(params=["local", pytest.param("kind", marks=KIND)])
def chain_s3(request: pytest.FixtureRequest) -> tuple[Chain, LocalS3]:
    """A chain and the S3 server its pods reach: the local control plane's, or kind's."""
    chain: Chain = request.getfixturevalue(f"{request.param}_chain")
    if request.param == "local":
        return chain, request.getfixturevalue("local_s3")
    s3: LocalS3 = request.getfixturevalue("kind_cluster").s3
    eventually(serving(s3), timeout=120, what="kind's S3 server to answer")
    return chain, s3


def serving(s3: LocalS3) -> Any:
    def check() -> bool:
        try:
            return bool(s3.client().list_buckets() is not None)
        except Exception:  # not up yet
            return False

    return check
