"""The operator against a real API server, the real training-operator and kwok GPU nodes:
FineTuneJob → PVC, ConfigMap, RBAC, PyTorchJob → pods → status, and back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.kube import Kube, condition, eventually
from tests.factories import EXAMPLES, example_docs

FAIL = "pod-container-running-failed.stage.kwok.x-k8s.io"
COMPLETE_DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    def __init__(self, kubeconfig: str, log_path: str) -> None:
        self.health = free_port()
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        self.log = open(log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubetune.runtime",
                "--standalone",
                "--metrics-port",
                "0",
                "--health-port",
                str(self.health),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        eventually(self.healthy, timeout=60, what="the operator's health endpoint")

    def healthy(self) -> bool:
        assert self.proc.poll() is None, "the operator exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self, kill: bool = False) -> None:
        (self.proc.kill if kill else self.proc.terminate)()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def operator(ftj_crd: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    running = Operator(
        ftj_crd.kubeconfig, str(tmp_path_factory.mktemp("operator") / "operator.log")
    )
    yield running
    running.stop()


def tiny(name: str, **paths: Any) -> dict[str, Any]:
    """tiny.yaml's job with a fresh name; kwok plays the pods."""
    doc = example_docs(next(p for p in EXAMPLES if p.name == "tiny.yaml"))[0]
    doc["metadata"] = {"name": name}
    from tests.factories import set_path

    for dotted, value in paths.items():
        set_path(doc, dotted, value)
    return doc


def status(kube: Kube, name: str) -> dict[str, Any]:
    return dict(kube.get("finetunejob", name).get("status") or {})


def phase_is(kube: Kube, name: str, phase: str) -> dict[str, Any] | None:
    current = status(kube, name)
    return current if current.get("phase") == phase else None


@pytest.mark.usefixtures("operator")
def test_job_runs_to_success_with_status(kube: Kube) -> None:
    kube.apply(tiny("tiny-ok"))
    done = eventually(
        lambda: phase_is(kube, "tiny-ok", "Succeeded"),
        timeout=120,
        what="the FineTuneJob to succeed",
    )
    assert done["pytorchJobName"] == "tiny-ok"
    assert done["startTime"] <= done["completionTime"]
    assert done["outputs"]["adapter"] == "/workspace/jobs/tiny-ok/output/adapter"
    assert done["outputs"]["claimName"] == "tiny-ok-workspace"
    assert done["effectiveBatchSize"] == 8
    succeeded = next(c for c in done["conditions"] if c["type"] == "Succeeded")
    assert succeeded["status"] == "True" and succeeded["reason"] == "TrainingSucceeded"
    assert kube.get("pvc", "tiny-ok-workspace")["status"]["phase"] == "Bound"
    pytorchjob = kube.get("pytorchjob", "tiny-ok")
    assert pytorchjob["metadata"]["ownerReferences"][0]["kind"] == "FineTuneJob"
    assert kube.get("configmap", "tiny-ok-trainer-config")["data"]["trainer.yaml"]
    events = kube.get("events", selector=None)
    reasons = {e["reason"] for e in events if e["involvedObject"].get("name") == "tiny-ok"}
    assert "Succeeded" in reasons


@pytest.mark.usefixtures("operator")
def test_failing_pod_names_the_pod_and_exit_code(kube: Kube) -> None:
    kube.apply(
        tiny(
            "tiny-crash",
            **{
                "spec.podMetadata": {
                    "labels": {FAIL: "true"},
                    "annotations": {f"{FAIL}/exit-code": "3"},
                }
            },
        )
    )
    failed = eventually(
        lambda: phase_is(kube, "tiny-crash", "Failed"), timeout=120, what="the FineTuneJob to fail"
    )
    cond = next(c for c in failed["conditions"] if c["type"] == "Failed")
    assert cond["reason"] == "TrainingFailed"
    assert "pod tiny-crash-master-0" in cond["message"] and "exited with code 3" in cond["message"]


@pytest.mark.usefixtures("operator")
def test_suspend_and_resume(kube: Kube) -> None:
    # kwok honours the grace period before deleting a pod, as a kubelet would: keep it short
    kube.apply(
        tiny(
            "tiny-pause",
            **{
                "spec.podMetadata": {"annotations": {COMPLETE_DELAY: "10m"}},
                "spec.terminationGracePeriodSeconds": 30,
            },
        )
    )
    eventually(lambda: phase_is(kube, "tiny-pause", "Training"), timeout=120, what="training")
    kube.run(
        "patch",
        "finetunejob",
        "tiny-pause",
        "--type=merge",
        "-p",
        '{"spec": {"runPolicy": {"suspend": true}}}',
    )
    eventually(lambda: phase_is(kube, "tiny-pause", "Suspended"), timeout=90, what="suspension")
    assert kube.get("pytorchjob", "tiny-pause")["spec"]["runPolicy"]["suspend"] is True
    eventually(
        lambda: not kube.get("pods", selector="kubetune.io/job=tiny-pause"),
        timeout=90,
        what="the pods to go",
    )
    kube.run(
        "patch",
        "finetunejob",
        "tiny-pause",
        "--type=merge",
        "-p",
        '{"spec": {"runPolicy": {"suspend": false}}}',
    )
    eventually(lambda: phase_is(kube, "tiny-pause", "Training"), timeout=120, what="training again")


@pytest.mark.usefixtures("operator")
def test_spec_change_after_start_is_refused_not_applied(kube: Kube) -> None:
    kube.apply(tiny("tiny-edit", **{"spec.podMetadata": {"annotations": {COMPLETE_DELAY: "10m"}}}))
    eventually(lambda: phase_is(kube, "tiny-edit", "Training"), timeout=120, what="training")
    before = kube.get("configmap", "tiny-edit-trainer-config")["data"]
    kube.run(
        "patch",
        "finetunejob",
        "tiny-edit",
        "--type=merge",
        "-p",
        '{"spec": {"training": {"learningRate": 0.5}}}',
    )
    refused = eventually(
        lambda: condition(kube.get("finetunejob", "tiny-edit"), "SpecChangeRefused"),
        timeout=60,
        what="the refusal",
    )
    assert "only spec.runPolicy.suspend can change" in refused["message"]
    assert kube.get("configmap", "tiny-edit-trainer-config")["data"] == before


@pytest.mark.usefixtures("operator")
def test_waiting_on_a_missing_stage_creates_nothing(kube: Kube) -> None:
    kube.apply(tiny("tiny-stage2", **{"spec.model": {"fromJob": {"name": "no-such-stage"}}}))
    pending = eventually(
        lambda: (s := status(kube, "tiny-stage2")).get("conditions") and s,
        timeout=60,
        what="a status",
    )
    cond = next(c for c in pending["conditions"] if c["type"] == "Pending")
    assert (
        cond["reason"] == "WaitingForJob"
        and "no-such-stage, which does not exist" in cond["message"]
    )
    time.sleep(2)
    assert not kube.exists("pytorchjob", "tiny-stage2")


@pytest.mark.usefixtures("operator")
def test_deletion_collects_children_and_keeps_kept_storage(kube: Kube) -> None:
    kube.apply(tiny("tiny-gone"), tiny("tiny-kept", **{"spec.storage.keepOnDelete": True}))
    for name in ("tiny-gone", "tiny-kept"):
        eventually(lambda n=name: kube.exists("pytorchjob", n), timeout=60, what="children")
    kube.run("delete", "finetunejob", "tiny-gone", "tiny-kept")
    for kind, name in (
        ("pytorchjob", "tiny-gone"),
        ("configmap", "tiny-gone-trainer-config"),
        ("pvc", "tiny-gone-workspace"),
        ("pytorchjob", "tiny-kept"),
    ):
        eventually(
            lambda k=kind, n=name: not kube.exists(k, n),
            timeout=90,
            what=f"garbage collection of {kind}/{name}",
        )
    assert kube.exists("pvc", "tiny-kept-workspace")


def test_restarted_operator_creates_exactly_one_pytorchjob(
    ftj_crd: Kube, kube: Kube, tmp_path: Any
) -> None:
    first = Operator(ftj_crd.kubeconfig, str(tmp_path / "first.log"))
    kube.apply(
        tiny("tiny-restart", **{"spec.podMetadata": {"annotations": {COMPLETE_DELAY: "5s"}}})
    )
    eventually(
        lambda: kube.exists("configmap", "tiny-restart-trainer-config"),
        timeout=60,
        what="creation to begin",
    )
    first.stop(kill=True)  # mid-creation, no goodbye
    second = Operator(ftj_crd.kubeconfig, str(tmp_path / "second.log"))
    try:
        eventually(
            lambda: phase_is(kube, "tiny-restart", "Succeeded"),
            timeout=120,
            what="the job to converge",
        )
        assert [p["metadata"]["name"] for p in kube.get("pytorchjobs")] == ["tiny-restart"]
    finally:
        second.stop()


SEEDS = [p for p in EXAMPLES if p.name.startswith("seed")]


def fit_to_fake_nodes(doc: dict[str, Any]) -> dict[str, Any]:
    """The example as written, with per-node CPU/memory and volume sizes the kwok nodes have."""
    spec = doc["spec"]
    spec["resources"] = {**spec.get("resources", {}), "cpu": 8, "memory": "32Gi"}
    if "existingClaim" not in spec.get("storage", {}):
        spec["storage"] = {**spec.get("storage", {}), "size": "10Gi"}
        spec["storage"].pop("storageClassName", None)
    spec.setdefault("podMetadata", {})["annotations"] = {COMPLETE_DELAY: "1s"}
    return doc


def claims_read(docs: list[dict[str, Any]]) -> set[str]:
    """Claims the examples expect to exist: shared workspaces and pvc:// data sources."""
    claims = {
        d["spec"]["storage"]["existingClaim"]
        for d in docs
        if "existingClaim" in d["spec"].get("storage", {})
    }
    for doc in docs:
        for source in doc["spec"].get("dataset", {}).get("sources", []):
            if source["source"].startswith("pvc://"):
                claims.add(source["source"].removeprefix("pvc://").split("/")[0])
    return claims


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize("example", SEEDS, ids=[p.stem for p in SEEDS])
def test_seed_examples_run_on_the_fake_gpu_nodes(kube: Kube, example: Any) -> None:
    docs = [fit_to_fake_nodes(d) for d in example_docs(example)]
    for claim in claims_read(docs):
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "resources": {"requests": {"storage": "10Gi"}},
                },
            }
        )
    kube.apply(*docs)  # chained stages wait for the stage before them
    for doc in docs:
        name = doc["metadata"]["name"]
        done = eventually(
            lambda n=name: phase_is(kube, n, "Succeeded"), timeout=240, what=f"{name} to succeed"
        )
        nodes, gpus = (
            doc["spec"]["distributed"].get("nodes", 1),
            doc["spec"]["distributed"]["gpusPerNode"],
        )
        pods = kube.get("pods", selector=f"kubetune.io/job={name}")
        assert len(pods) == nodes and {p["spec"]["nodeName"] for p in pods} <= {
            "kwok-gpu-0",
            "kwok-gpu-1",
        }
        limits = pods[0]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == str(gpus)
        assert done["conditions"] and done["completionTime"]


@pytest.mark.usefixtures("operator")
def test_trainer_progress_reaches_the_status_with_least_privilege(kube: Kube) -> None:
    import yaml

    from kubetune_trainer.reporter import StatusSink

    slow = {
        "spec.podMetadata": {"annotations": {COMPLETE_DELAY: "10m"}},
        "spec.terminationGracePeriodSeconds": 30,
    }
    kube.apply(tiny("tiny-progress", **slow), tiny("tiny-other", **slow))
    eventually(lambda: phase_is(kube, "tiny-progress", "Training"), timeout=120, what="training")
    # What the trainer's pod has: a token of the per-job ServiceAccount the operator created.
    token = kube.run("create", "token", "tiny-progress-trainer").strip()
    cluster = yaml.safe_load(open(kube.kubeconfig))["clusters"][0]["cluster"]  # noqa: SIM115
    progress = {
        "step": 40,
        "totalSteps": 150,
        "loss": 2.5,
        "tokensPerSecond": 1234.5,
        "etaSeconds": 60,
        "percent": 26,
        "latestCheckpoint": "/workspace/jobs/x/checkpoint-40",
    }
    sink = StatusSink(
        cluster["server"],
        token,
        cluster["certificate-authority"],
        "tiny-progress",
        kube.namespace,
        min_interval=0,
    )
    assert sink.report(progress)
    reported = eventually(lambda: status(kube, "tiny-progress").get("progress"), what="progress")
    assert reported == {
        k: progress[k]
        for k in ("step", "totalSteps", "loss", "tokensPerSecond", "etaSeconds", "percent")
    }
    row = kube.run("get", "finetunejob", "tiny-progress", "--no-headers").split()
    assert row[:4] == ["tiny-progress", "Training", "lora", "26"] and row[4] == "2.5"
    # The operator's own status writes leave the trainer's fields alone.
    kube.run(
        "patch",
        "finetunejob",
        "tiny-progress",
        "--type=merge",
        "-p",
        '{"spec": {"runPolicy": {"suspend": true}}}',
    )
    eventually(lambda: phase_is(kube, "tiny-progress", "Suspended"), timeout=90, what="suspension")
    assert status(kube, "tiny-progress")["progress"]["step"] == 40
    # Least privilege: the same token may not touch another job, nor read Secrets.
    other = StatusSink(
        cluster["server"],
        token,
        cluster["certificate-authority"],
        "tiny-other",
        kube.namespace,
        min_interval=0,
    )
    assert not other.report(progress)
    account = f"system:serviceaccount:{kube.namespace}:tiny-progress-trainer"
    for verb, resource in (
        ("get", "secrets"),
        ("patch", "finetunejobs/status"),
        ("create", "pods"),
    ):
        allowed = subprocess.run(
            [
                kube.kubectl_path,
                "--kubeconfig",
                kube.kubeconfig,
                "auth",
                "can-i",
                verb,
                resource,
                "-n",
                kube.namespace,
                f"--as={account}",
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert allowed == "no", (verb, resource)  # patch is allowed only with its resourceName
    named = subprocess.run(
        [
            kube.kubectl_path,
            "--kubeconfig",
            kube.kubeconfig,
            "auth",
            "can-i",
            "patch",
            "finetunejobs/tiny-progress",
            "--subresource=status",
            "-n",
            kube.namespace,
            f"--as={account}",
        ],
        capture_output=True,
        text=True,
    )
    assert named.stdout.strip() == "yes"
