"""Real Kueue (v0.17, its PyTorchJob integration) queues FineTuneJobs on the local control plane:
a ClusterQueue with a quota of one GPU admits one tiny job; the second waits `Queued` with
Kueue's own reason and starts when the first finishes. A LocalQueue that does not exist is
named within seconds, and so is a queue on a cluster with no Kueue at all. kwok plays the pods;
the operator, Kueue and the training-operator are the real processes."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.kube import Kube, eventually
from tests.support.kueue import cluster_queue, flavor, local_queue
from tests.support.operator import COMPLETE_DELAY, Operator, phase_is, status, tiny


def queued(queue: str, name: str, delay: str) -> dict[str, object]:
    return tiny(
        name,
        **{
            "spec.distributed.gpusPerNode": 1,
            "spec.scheduling.queue": queue,
            "spec.podMetadata": {"annotations": {COMPLETE_DELAY: delay}},
            "spec.terminationGracePeriodSeconds": 30,
        },
    )


def condition_of(kube: Kube, name: str, kind: str) -> dict[str, str]:
    return next(c for c in status(kube, name)["conditions"] if c["type"] == kind)


def test_a_queue_where_kueue_is_not_installed_is_named_within_seconds(
    without_kueue: Kube, ftj_crd: Kube, kube: Kube, tmp_path: Path
) -> None:
    """No Kueue at all (its API group is not served): the job is `Queued` with reason
    KueueNotInstalled and a message saying what to do, its PyTorchJob waits suspended, and
    nothing is left silently Pending. It runs first (before the `kueue` fixture installs
    Kueue), with an operator of its own: the module's starts once Kueue is installed, as
    docs/kueue.md asks."""
    alone = Operator(ftj_crd.kubeconfig, str(tmp_path / "operator.log"))
    applied = time.monotonic()
    kube.apply(queued("team", "unqueued", "1s"))
    try:
        cond = eventually(
            lambda: (
                (lambda c: c if c["reason"] == "KueueNotInstalled" else None)(
                    condition_of(kube, "unqueued", "Queued")
                )
                if phase_is(kube, "unqueued", "Queued")
                else None
            ),
            timeout=30,
            what="KueueNotInstalled on the job",
        )
        named = time.monotonic() - applied
        print(f"Kueue not installed: named {named:.1f}s after the apply")
        assert named < 15, named
        assert cond["status"] == "True", cond
        assert "LocalQueue team, but Kueue is not installed" in cond["message"], cond
        assert "remove spec.scheduling.queue" in cond["message"], cond
        assert kube.get("pytorchjob", "unqueued")["spec"]["runPolicy"]["suspend"] is True
        row = kube.run("get", "ftj", "unqueued", "--no-headers").split()
        assert row[1] == "Queued", row
    finally:
        kube.run("delete", "ftj", "unqueued", "--wait=true")
        alone.stop()


def test_quota_queues_then_admits_and_a_missing_queue_is_named(
    kueue: Kube, operator: Operator, kube: Kube
) -> None:
    cq = f"kubetune-{kube.namespace}"
    kube.apply(flavor(), cluster_queue(cq, gpus=1), server_side=True)
    kube.apply(local_queue("team", cq))
    try:
        # The first job holds the only GPU for 25 s (then kwok completes its pod): time for the
        # second to be seen Queued on a busy machine.
        kube.apply(queued("team", "first", "25s"))
        eventually(lambda: phase_is(kube, "first", "Training"), timeout=60, what="first to train")
        kube.apply(queued("team", "second", "1s"), queued("no-such-queue", "lost", "1s"))

        waiting = eventually(
            lambda: phase_is(kube, "second", "Queued"), timeout=30, what="second to be Queued"
        )
        # Queued at once (the PyTorchJob is created suspended); Kueue's own reason follows
        # once it has created the Workload and tried it against the quota.
        cond = eventually(
            lambda: (lambda c: c if "quota" in c["message"] else None)(
                condition_of(kube, "second", "Queued")
            ),
            timeout=30,
            what="Kueue's reason on second",
        )
        assert cond["reason"] == "Pending", cond
        assert f"ClusterQueue {cq} (LocalQueue team)" in cond["message"]
        assert "insufficient unused quota for nvidia.com/gpu" in cond["message"], cond["message"]
        assert waiting["phase"] == "Queued"
        assert kube.get("pytorchjob", "second")["spec"]["runPolicy"]["suspend"] is True
        # kubectl shows it (the Phase printer column).
        row = kube.run("get", "ftj", "second", "--no-headers").split()
        assert row[1] == "Queued", row

        eventually(lambda: phase_is(kube, "lost", "Queued"), timeout=30, what="lost to be Queued")
        lost = eventually(
            lambda: (lambda c: c if c["reason"] != "WaitingForWorkload" else None)(
                condition_of(kube, "lost", "Queued")
            ),
            timeout=30,
            what="the missing LocalQueue named on lost",
        )
        assert lost["reason"] == "LocalQueueNotFound", lost
        assert "LocalQueue no-such-queue does not exist" in lost["message"]

        # Quota frees when the first succeeds; Kueue admits the second and unsuspends it.
        eventually(lambda: phase_is(kube, "first", "Succeeded"), timeout=90, what="first done")
        freed = time.monotonic()
        eventually(
            lambda: kube.get("pytorchjob", "second")["spec"]["runPolicy"]["suspend"] is False,
            timeout=60,
            what="Kueue to admit the second job",
        )
        latency = time.monotonic() - freed
        print(f"admission latency once quota freed: {latency:.1f}s")
        eventually(lambda: phase_is(kube, "second", "Succeeded"), timeout=90, what="second done")
        workloads = kube.get("workloads.kueue.x-k8s.io")
        assert {w["metadata"]["ownerReferences"][0]["name"] for w in workloads} >= {
            "first",
            "second",
        }
    finally:
        kube.run("delete", "ftj", "--all", "--wait=false")
        kube.run("delete", "clusterqueue", cq, "--wait=false", namespaced=False)
