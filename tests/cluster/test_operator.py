"""The operator against a real API server, the real training-operator and kwok GPU nodes:
FineTuneJob → PVC, ConfigMap, RBAC, PyTorchJob → pods → status, and back."""

from __future__ import annotations

import re
import time
import uuid
from functools import partial
from typing import Any

import pytest

from tests.support.kube import Kube, condition, eventually
from tests.support.operator import (
    COMPLETE_DELAY,
    FAIL,
    Operator,
    phase_is,
    set_suspend,
    status,
    tiny,
)


@pytest.mark.usefixtures("operator")
def test_job_runs_to_success_with_status(kube: Kube) -> None:
    kube.apply(tiny("tiny-ok"))
    # The summary conditions are there from the operator's first status on (kubectl wait errors
    # on an object with no conditions at all); then kubectl itself waits for Succeeded, as a
    # user or a pipeline would.
    first = eventually(lambda: status(kube, "tiny-ok").get("conditions"), what="a first status")
    assert {c["type"] for c in first} >= {"Succeeded", "Failed", "Suspended", "Ready"}
    kube.run("wait", "--for=condition=Succeeded", "finetunejob/tiny-ok", "--timeout=100s")
    done = status(kube, "tiny-ok")
    assert done["phase"] == "Succeeded"
    summary = {c["type"]: (c["status"], c["reason"]) for c in done["conditions"]}
    assert summary["Ready"] == ("False", "TrainingSucceeded")
    assert summary["Failed"] == summary["Suspended"] == ("False", "TrainingSucceeded")
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
    eventually(lambda: status(kube, "tiny-crash").get("conditions"), what="a first status")
    kube.run("wait", "--for=condition=Failed", "finetunejob/tiny-crash", "--timeout=100s")
    failed = status(kube, "tiny-crash")
    assert next(c for c in failed["conditions"] if c["type"] == "Succeeded")["status"] == "False"
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
    eventually(lambda: status(kube, "tiny-pause").get("conditions"), what="a first status")
    kube.run("wait", "--for=condition=Ready", "finetunejob/tiny-pause", "--timeout=100s")
    assert status(kube, "tiny-pause")["phase"] == "Training"
    set_suspend(kube, "tiny-pause", True)
    kube.run("wait", "--for=condition=Suspended", "finetunejob/tiny-pause", "--timeout=90s")
    suspended = {c["type"]: c for c in status(kube, "tiny-pause")["conditions"]}
    assert suspended["Ready"]["status"] == "False" and suspended["Ready"]["reason"] == "Suspended"
    assert kube.get("pytorchjob", "tiny-pause")["spec"]["runPolicy"]["suspend"] is True
    eventually(
        lambda: not kube.get("pods", selector="kubetune.io/job=tiny-pause"),
        timeout=90,
        what="the pods to go",
    )
    set_suspend(kube, "tiny-pause", False)
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
    # The reconcile that wrote this status had already declined to create the children (it
    # writes the status last), and every later one decides the same from the same inputs.
    assert not kube.exists("pytorchjob", "tiny-stage2")


@pytest.mark.usefixtures("operator")
def gone(kube: Kube, kind: str, name: str) -> bool:
    return not kube.exists(kind, name)


def test_deletion_collects_children_and_keeps_kept_storage(kube: Kube) -> None:
    short = {"spec.terminationGracePeriodSeconds": 30}
    kube.apply(
        tiny("tiny-gone", **short),
        tiny("tiny-kept", **short, **{"spec.storage.keepOnDelete": True}),
    )
    # Delete finished jobs: a claim is protected while a pod still uses it, and a running pod
    # takes its grace period to go (kwok honours it, as a kubelet would).
    for name in ("tiny-gone", "tiny-kept"):
        eventually(
            partial(phase_is, kube, name, "Succeeded"), timeout=120, what=f"{name} to finish"
        )
    kube.run("delete", "finetunejob", "tiny-gone", "tiny-kept")
    for kind, name in (
        ("pytorchjob", "tiny-gone"),
        ("configmap", "tiny-gone-trainer-config"),
        ("pvc", "tiny-gone-workspace"),
        ("pytorchjob", "tiny-kept"),
    ):
        eventually(
            partial(gone, kube, kind, name),
            timeout=90,
            what=f"garbage collection of {kind}/{name}",
        )
    assert kube.exists("pvc", "tiny-kept-workspace")


def test_deleting_the_namespace_recreates_nothing(ftj_crd: Kube, operator: Operator) -> None:
    """Namespace deletion may remove the PyTorchJobs before their FineTuneJobs; the operator
    must not try to recreate the children (it did: a 403 per job, logged as a failure)."""
    namespace = f"t-gone-{uuid.uuid4().hex[:8]}"
    ftj_crd.run("create", "namespace", namespace, namespaced=False)
    kube = ftj_crd.with_namespace(namespace)
    names = [f"tiny-ns-{i}" for i in range(6)]
    kube.apply(*(tiny(n, **{"spec.runPolicy.suspend": True}) for n in names))
    eventually(
        lambda: len(kube.get("pytorchjobs")) == len(names), timeout=60, what="the PyTorchJobs"
    )
    failures = operator.output().count("failed with an exception")
    ftj_crd.run("delete", "namespace", namespace, "--wait=true", namespaced=False)
    time.sleep(2)  # events of the last deletions
    log = operator.output()
    assert log.count("failed with an exception") == failures, log[-3000:]


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


@pytest.mark.usefixtures("operator")
def test_trainer_progress_reaches_the_status_with_least_privilege(
    kube: Kube, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reporter's token patches its own job's status and no other: RBAC (the reporters'
    ClusterRole, bound per job) allows `patch` on finetunejobs/status in the namespace, and the
    admission policy (render/rbac.py) refuses every other job's, a job whose name extends this
    one's included."""
    import yaml

    from kubetune_trainer.runtime.reporter import StatusSink

    slow = {
        "spec.podMetadata": {"annotations": {COMPLETE_DELAY: "10m"}},
        "spec.terminationGracePeriodSeconds": 30,
    }
    kube.apply(tiny("tiny-progress", **slow), tiny("tiny-progress-b", **slow))
    eventually(lambda: phase_is(kube, "tiny-progress", "Training"), timeout=120, what="training")
    # What the trainer's pod has: a token of the per-job ServiceAccount the operator created.
    token = kube.run("create", "token", "tiny-progress.kubetune-reporter").strip()
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
    stamp = reported.pop("updatedAt")  # when the trainer reported: an RFC 3339 time, UTC
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp
    assert reported == {
        k: progress[k]
        for k in ("step", "totalSteps", "loss", "tokensPerSecond", "etaSeconds", "percent")
    }
    row = kube.run("get", "finetunejob", "tiny-progress", "--no-headers").split()
    assert row[:4] == ["tiny-progress", "Training", "lora", "26"] and row[4] == "2.5"
    # The operator's own status writes leave the trainer's fields alone.
    set_suspend(kube, "tiny-progress", True)
    eventually(lambda: phase_is(kube, "tiny-progress", "Suspended"), timeout=90, what="suspension")
    assert status(kube, "tiny-progress")["progress"]["step"] == 40
    # Least privilege: the same token may not touch another job (the admission policy's
    # refusal, in the reporter's log), nor read anything.
    other = StatusSink(
        cluster["server"],
        token,
        cluster["certificate-authority"],
        "tiny-progress-b",
        kube.namespace,
        min_interval=0,
    )
    capsys.readouterr()
    assert not other.report(progress)
    refusal = capsys.readouterr().out
    assert "HTTP 403" in refusal and "ValidatingAdmissionPolicy 'kubetune-reporter'" in refusal
    assert (
        f"reports for FineTuneJob {kube.namespace}/tiny-progress and may write no other; "
        f"refused: {kube.namespace}/tiny-progress-b" in refusal
    ), refusal
    assert "progress" not in status(kube, "tiny-progress-b")
    account = f"system:serviceaccount:{kube.namespace}:tiny-progress.kubetune-reporter"
    for verb, resource, extra in (
        ("get", "secrets", ()),
        ("get", "finetunejobs", ()),
        ("get", "finetunejobs/tiny-progress", ("--subresource=status",)),
        ("patch", "finetunejobs/tiny-progress", ()),
        ("create", "pods", ()),
    ):
        assert not kube.can_i(verb, resource, *extra, user=account), (verb, resource)
    assert kube.can_i("patch", "finetunejobs/tiny-progress", "--subresource=status", user=account)


@pytest.mark.usefixtures("operator")
def test_a_network_below_the_fabric_becomes_a_condition(kube: Kube) -> None:
    """The trainer's preflight reports status.network through its least-privilege token; a
    verdict below the declared fabric turns into NetworkDegraded at once (the operator does
    not skip that status-only event), and a later fine report turns it False."""
    import yaml

    from kubetune_trainer.runtime.reporter import StatusSink

    slow = {
        "spec.podMetadata": {"annotations": {COMPLETE_DELAY: "10m"}},
        "spec.terminationGracePeriodSeconds": 30,
    }
    kube.apply(tiny("tiny-network", **slow))
    eventually(lambda: phase_is(kube, "tiny-network", "Training"), timeout=120, what="training")
    token = kube.run("create", "token", "tiny-network.kubetune-reporter").strip()
    cluster = yaml.safe_load(open(kube.kubeconfig))["clusters"][0]["cluster"]  # noqa: SIM115
    sink = StatusSink(
        cluster["server"],
        token,
        cluster["certificate-authority"],
        "tiny-network",
        kube.namespace,
        min_interval=0,
    )
    below = {
        "backend": "nccl",
        "transport": "Socket",
        "transportSource": "devices",
        "busBandwidthGBps": 1.1,
        "algBandwidthGBps": 0.6,
        "messageBytes": 256 << 20,
        "ranks": 16,
        "nodes": 2,
        "fabric": "infiniband",
        "expectedMinGBps": 6.0,
        "memlock": "unlimited",
        "verdict": "belowFabric",
        "message": "NCCL is on TCP sockets although spec.distributed.fabric is infiniband",
        "measuredAt": "2026-11-29T20:00:00Z",
    }
    assert sink.report({"network": below}, force=True)
    degraded = eventually(
        lambda: condition(kube.get("finetunejob", "tiny-network"), "NetworkDegraded"),
        timeout=60,
        what="the NetworkDegraded condition",
    )
    assert degraded["reason"] == "BelowFabric" and degraded["message"] == below["message"]
    current = status(kube, "tiny-network")
    assert current["network"] == below  # the CRD's status schema keeps every field
    assert current["phase"] == "Training"
    assert "NetworkDegraded" in kube.run("describe", "finetunejob", "tiny-network")
    fine = {**below, "transport": "IB", "busBandwidthGBps": 40.0, "verdict": "ok", "message": "ok"}
    assert sink.report({"network": fine}, force=True)
    eventually(
        lambda: next(
            (
                c
                for c in status(kube, "tiny-network")["conditions"]
                if c["type"] == "NetworkDegraded" and c["status"] == "False"
            ),
            None,
        ),
        timeout=60,
        what="NetworkDegraded turning False",
    )
