"""examples/tiny.yaml on 2 nodes through the whole chain, for real.

kubectl apply → operator → PyTorchJob → training-operator → master and worker pods → both
`prepare` init containers coordinate through the lock on the shared volume → torchrun across
the two nodes (gloo) trains → adapter and run manifest on the volume → Succeeded, with the
trainer's progress in status along the way, the network preflight's bandwidth
(`status.network`) and the outputs at the end.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.chain import (
    KIND_UP_TIMEOUT_S,
    TINY,
    TINY_DATA,
    TINY_STEPS,
    Chain,
    tiny_on_two_nodes,
    wait_for,
)
from tests.support.factories import example_docs
from tests.support.kube import KubectlError, eventually
from tests.support.kueue import cluster_queue, flavor, local_queue


def test_tiny_trains_on_two_nodes_through_the_operator(chain: Chain) -> None:
    started = time.monotonic()
    claim = chain.claim("tiny-workspace")
    chain.put(claim, "data/tiny-chat.jsonl", TINY_DATA.read_bytes())  # relative to workspace
    chain.kube.apply(tiny_on_two_nodes(chain, claim))

    phases: list[str] = []
    progress_seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 900
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            status = chain.kube.get("finetunejob", "tiny").get("status") or {}
        except KubectlError:
            status = {}
        phase = status.get("phase")
        if phase and (not phases or phases[-1] != phase):
            phases.append(phase)
        if (p := status.get("progress")) and p.get("step"):
            progress_seen.append(p)
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    wall = time.monotonic() - started
    assert status.get("phase") == "Succeeded", (
        f"phases {phases}; status {json.dumps(status, indent=1)}\n{chain.debug()}"
    )
    print(f"\ne2e tiny on 2 nodes: {wall:.1f}s wall, final loss {status['progress'].get('loss')}")

    # The way there: preparing, then training with the trainer's progress reported live.
    assert "Training" in phases and phases.index("Training") < phases.index("Succeeded")
    assert "Pending" in phases or "Preparing" in phases
    midway = [p for p in progress_seen if 0 < p["step"] < TINY_STEPS]
    assert midway, f"no progress reported before the end: {progress_seen[-3:]}"
    assert all(p["totalSteps"] == TINY_STEPS for p in progress_seen), progress_seen
    assert isinstance(midway[0].get("loss"), float) and midway[0].get("etaSeconds") is not None
    final = status["progress"]
    assert final.get("tokensPerSecond", 0) > 0, final
    assert final["step"] == TINY_STEPS and final["percent"] == 100
    assert final["loss"] < midway[0]["loss"], "the loss did not fall"
    # The real tokens of every step on both ranks (each packs microBatchSize rows of at most
    # maxLength tokens), kept on the volume for a resumed run to go on from.
    training = example_docs(TINY)[0]["spec"]["training"]
    capacity = TINY_STEPS * 2 * training["microBatchSize"] * training["maxLength"]
    assert 0.8 * capacity <= final["tokensTrained"] <= capacity, (final, capacity)

    # The network preflight ran across the two pods (gloo) before the first step, and its
    # bandwidth reached the status; on CPU there is no fabric to judge, so no condition.
    network = status["network"]
    assert network["busBandwidthGBps"] > 0 and network["algBandwidthGBps"] > 0, network
    assert network["backend"] == "gloo" and network["transport"] == "TCP (gloo)", network
    assert network["ranks"] == 2 and network["nodes"] == 2, network
    assert network["verdict"] == "unchecked", network
    assert "NetworkDegraded" not in {c["type"] for c in status["conditions"]}
    print(f"e2e preflight over gloo across 2 pods: {network['busBandwidthGBps']} GB/s bus")

    # Two pods (master + worker), both really ran; the two prepares shared one build.
    # The PyTorchJob succeeds when its master does; the worker may still be exiting then.
    def both_done() -> list[dict[str, Any]] | None:
        pods = chain.kube.get("pods", selector="kubetune.io/job=tiny")
        return pods if all(p["status"]["phase"] == "Succeeded" for p in pods) else None

    pods = wait_for(both_done, timeout=120, what="both pods Succeeded")
    assert sorted(p["metadata"]["labels"]["training.kubeflow.org/replica-type"] for p in pods) == [
        "master",
        "worker",
    ]
    prepares = [chain.logs(p["metadata"]["name"], "prepare") for p in pods]
    built = [log for log in prepares if "preparing dataset" in log]
    assert len(built) == 1, prepares
    other = prepares[1 - prepares.index(built[0])]
    assert "prepared by another replica" in other or "already prepared" in other, other

    # Outputs in status, and on the volume.
    outputs = status["outputs"]
    assert outputs["claimName"] == claim
    workspace = "/workspace/"
    adapter = outputs["adapter"].removeprefix(workspace)
    manifest_path = outputs["manifest"].removeprefix(workspace)
    assert chain.exists(claim, f"{adapter}/adapter_model.safetensors")
    manifest = json.loads(chain.read(claim, manifest_path) or "{}")
    assert manifest["job"] == "tiny" and manifest["metrics"]["globalStep"] == TINY_STEPS, manifest
    assert status["checkpoints"]["latestStep"] == TINY_STEPS
    assert chain.read(claim, "jobs/tiny/tokens-trained") == str(final["tokensTrained"])
    assert {c["type"] for c in status["conditions"]} >= {"Succeeded"}


def test_a_failing_prepare_fails_the_job_and_stops_its_pods(chain: Chain) -> None:
    """Data missing from the volume: `prepare` exits 1 in a real pod. The training-operator
    would recreate the pod forever; the job turns Failed, naming the pod and the error, and
    its PyTorchJob is stopped. The claim (with any completed work) stays."""
    claim = chain.claim("empty-workspace")  # no data/tiny-chat.jsonl on it
    doc = tiny_on_two_nodes(chain, claim)
    doc["metadata"]["name"] = "no-data"
    chain.kube.apply(doc)
    status = eventually(
        lambda: (lambda s: s if s.get("phase") == "Failed" else None)(
            chain.kube.get("finetunejob", "no-data").get("status") or {}
        ),
        timeout=180,
        what="the job to fail",
    )
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PrepareFailed", failed
    assert "pod no-data-" in failed["message"] and "prepare exited with code 1" in failed["message"]
    assert "tiny-chat.jsonl" in failed["message"], failed["message"]  # the trainer's own words
    pytorchjob = chain.kube.get("pytorchjob", status["pytorchJobName"])
    assert pytorchjob["spec"]["runPolicy"]["suspend"] is True
    eventually(
        lambda: not chain.kube.get("pods", selector="kubetune.io/job=no-data"),
        timeout=60,
        what="the failed job's pods to be gone",
    )
    time.sleep(3)  # and they stay gone, the status stays Failed
    assert not chain.kube.get("pods", selector="kubetune.io/job=no-data")
    assert chain.kube.get("finetunejob", "no-data")["status"]["phase"] == "Failed"
    assert chain.kube.exists("pvc", claim)


@pytest.mark.kind
@pytest.mark.timeout(KIND_UP_TIMEOUT_S + 600)
def test_kueue_in_kind_queues_a_job_with_its_position_then_runs_it(kind_chain: Chain) -> None:
    """Real Kueue in kind (its own install, with its visibility API), a ClusterQueue with room
    for one job: the first trains; the second and third are `Queued` with Kueue's reason and
    their positions (1 and 2) from the visibility API, on the status and in the message; when
    the first succeeds the one ahead is admitted and its pod starts, and the other moves up to
    1 (the operator's refresh: Kueue changes none of its objects then)."""
    kube = kind_chain.kube
    cq = f"kind-{kube.namespace}"
    kube.apply(flavor(), cluster_queue(cq, gpus=0, others={"cpu": "500m"}), server_side=True)
    kube.apply(local_queue("team", cq))
    claim = kind_chain.claim("queue-workspace")
    kind_chain.put(claim, "data/tiny-chat.jsonl", TINY_DATA.read_bytes())

    def queued_job(name: str) -> dict[str, Any]:
        doc = tiny_on_two_nodes(kind_chain, claim)
        doc["metadata"]["name"] = name
        doc["spec"]["distributed"]["nodes"] = 1
        doc["spec"]["training"].update({"maxSteps": 4, "saveSteps": 4})
        doc["spec"]["scheduling"] = {"queue": "team"}
        doc["spec"]["resources"] = {"cpu": "500m"}
        return doc

    def status(name: str) -> dict[str, Any]:
        return kube.get("finetunejob", name).get("status") or {}

    def place(name: str) -> dict[str, Any] | None:
        now = status(name)
        return (
            now
            if now.get("phase") == "Queued" and (now.get("scheduling") or {}).get("position")
            else None
        )

    try:
        kube.apply(queued_job("first"))
        wait_for(
            lambda: status("first").get("phase") in ("Preparing", "Training", "Succeeded"),
            timeout=120,
            what="Kueue to admit the first job",
        )
        kube.apply(queued_job("second"))
        kube.apply(queued_job("third"))

        def both_placed() -> dict[str, dict[str, Any]] | None:
            now = {n: place(n) for n in ("second", "third")}
            at = sorted(s["scheduling"]["position"]["clusterQueue"] for s in now.values() if s)
            return now if at == [1, 2] else None  # type: ignore[return-value]

        held = wait_for(both_placed, timeout=90, what="the second and third jobs at 1 and 2")
        # Kueue orders equal priorities by creation time, to the second: whichever it put first
        ahead, behind = sorted(
            held, key=lambda n: held[n]["scheduling"]["position"]["clusterQueue"]
        )
        for name, at in ((ahead, 1), (behind, 2)):
            assert held[name]["scheduling"] == {
                "clusterQueue": cq,
                "position": {"clusterQueue": at, "localQueue": at},
            }, held[name]["scheduling"]
            cond = next(c for c in held[name]["conditions"] if c["type"] == "Queued")
            assert cond["reason"] == "Pending", cond  # Kueue's own reason, then its message
            where = f"ClusterQueue {cq} (LocalQueue team), position {at} in the ClusterQueue"
            assert f"{where}, {at} in the LocalQueue: " in cond["message"], cond
            assert "insufficient unused quota for cpu" in cond["message"], cond

        wait_for(lambda: status("first").get("phase") == "Succeeded", timeout=300, what="first")
        finished = time.monotonic()
        wait_for(
            lambda: status(ahead).get("phase") in ("Preparing", "Training", "Succeeded"),
            timeout=60,
            what="Kueue to admit the job ahead once the first finished",
        )  # and its pod starts: training it to the end would prove no more, in a minute or two
        admitted_after = time.monotonic() - finished
        assert "position" not in (status(ahead).get("scheduling") or {})
        moved = wait_for(
            lambda: (
                lambda s: s if s and s["scheduling"]["position"]["clusterQueue"] == 1 else None
            )(place(behind)),
            timeout=60,
            what="the job behind to move up to position 1",
        )
        assert moved["scheduling"]["position"] == {"clusterQueue": 1, "localQueue": 1}
        print(f"\nkind: Kueue admitted {ahead} {admitted_after:.1f}s after the first ended")
    except AssertionError:
        print(kind_chain.debug())
        raise
    finally:
        kube.run("delete", "ftj", "--all", "--wait=false")
        kube.run("delete", "clusterqueue", cq, "--wait=false", namespaced=False)
