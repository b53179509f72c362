"""Faults in a running training, through the whole chain on the process node: the training
container SIGKILLed (not SIGTERMed) mid-run, the workspace volume full while a checkpoint is
saved, and a preemption by real Kueue. Nothing completed is lost in any.

Real kube-apiserver, training-operator, operator and torchrun; the pods run as processes on
this machine (the process node), so the kill and the full volume are real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune_trainer.runtime.checkpoints import MARKER, checkpoints, latest_complete, step_of
from kubetune_trainer.training.callbacks import PauseAtStep
from tests.support.chain import TINY_DATA, Chain, tiny_on_two_nodes, wait_for
from tests.support.kube import Kube, eventually
from tests.support.kueue import cluster_queue, flavor, local_queue, priority_class
from tests.support.tiers import unavailable

SAVE_STEPS = 20
MAX_STEPS = 40
# The trainer holds the run at this step (PauseAtStep): checkpoint-20 complete, 10 steps of work
# past it, so the fault lands at a known point however fast the machine is.
PAUSE_AT = 30


def paused_tiny(chain: Chain, claim: str, name: str) -> dict[str, Any]:
    """tiny.yaml on one node with small steps and frequent saves, held at step PAUSE_AT until
    the test removes the trainer's `paused-at-step-N` file (or kills it)."""
    doc = tiny_on_two_nodes(chain, claim)
    doc["metadata"]["name"] = name
    spec = doc["spec"]
    spec["distributed"]["nodes"] = 1
    spec["training"].update(
        {
            "maxSteps": MAX_STEPS,
            "saveSteps": SAVE_STEPS,
            "microBatchSize": 2,
            "loggingSteps": 10,
            "saveTotalLimit": 2,
        }
    )
    spec["env"] = [{"name": PauseAtStep.VARIABLE, "value": str(PAUSE_AT)}]
    return doc


def phase(chain: Chain, name: str, wanted: str) -> dict[str, Any] | None:
    status = chain.kube.get("finetunejob", name).get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed") and status["phase"] != wanted:
        raise AssertionError(f"{name} ended {status['phase']}: {status}\n{chain.debug()}")
    return status if status.get("phase") == wanted else None


def container_groups(namespace: str, pod: str) -> set[int]:
    """Process groups of the pod's running containers on the process node (found by the
    downward-API variables the trainer's containers carry)."""
    wanted = {f"KUBETUNE_NAMESPACE={namespace}".encode(), f"KUBETUNE_POD_NAME={pod}".encode()}
    groups = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = set((proc / "environ").read_bytes().split(b"\0"))
            if wanted <= env:
                groups.add(os.getpgid(int(proc.name)))
        except (OSError, ProcessLookupError):
            continue
    return groups


def test_a_sigkilled_training_container_resumes_from_its_last_complete_checkpoint(
    local_chain: Chain,
) -> None:
    chain = local_chain
    claim = chain.claim("killed-workspace")
    chain.put(claim, "data/tiny-chat.jsonl", TINY_DATA.read_bytes())
    chain.kube.apply(paused_tiny(chain, claim, "killed"))
    job_dir = "jobs/killed"
    root = chain_path(chain, claim, f"{job_dir}/checkpoints")
    # Held 10 steps past a complete checkpoint: the kill throws that work away.
    eventually(
        lambda: (
            chain.exists(claim, f"{job_dir}/paused-at-step-{PAUSE_AT}")
            or phase(chain, "killed", "x")
        ),
        timeout=600,
        what=f"the run held at step {PAUSE_AT}",
    )
    pod = chain.kube.get("pod", "killed-master-0")
    groups = container_groups(chain.kube.namespace, "killed-master-0")
    assert groups, "no process of the training container found"
    for group in groups:
        os.killpg(group, signal.SIGKILL)  # no SIGTERM first: no chance to checkpoint
    killed_at = time.monotonic()
    reached = PAUSE_AT
    resumable = latest_complete(root)
    assert resumable is not None
    step = step_of(resumable)
    assert step is not None and step == PAUSE_AT - PAUSE_AT % SAVE_STEPS
    # What a kill during a save leaves: a newer checkpoint, never marked complete.
    torn = root / f"checkpoint-{step + SAVE_STEPS // 2}"
    torn.mkdir()
    (torn / "adapter_model.safetensors").write_bytes(b"\0" * 100)

    done = wait_for(
        lambda: phase(chain, "killed", "Succeeded"), timeout=900, what="the job to succeed"
    )
    recovered = time.monotonic() - killed_at
    again = chain.kube.get("pod", "killed-master-0")
    assert again["metadata"]["uid"] != pod["metadata"]["uid"], "the pod was not recreated"
    log = chain.logs("killed-master-0", "pytorch")
    resumed = [line for line in log.splitlines() if "resuming from checkpoint-" in line]
    assert resumed, log[-3000:]
    resumed_step = int(resumed[-1].rsplit("checkpoint-", 1)[1].split()[0])
    assert f"removed incomplete checkpoint {torn.name}" in log
    lost = reached - resumed_step
    assert lost == PAUSE_AT % SAVE_STEPS, (reached, resumed_step)
    assert done["checkpoints"]["latestStep"] == MAX_STEPS
    manifest = json.loads(chain.read(claim, f"{job_dir}/output/manifest.json") or "{}")
    assert manifest["metrics"]["globalStep"] == MAX_STEPS
    # the status and the manifest say what the kill cost: the steps measured above
    assert (done["progress"]["resumes"], done["progress"]["stepsRedone"]) == (1, lost), done
    assert [r["stepsRedone"] for r in manifest["resumes"]] == [lost]
    print(
        f"\nfault: training container SIGKILLed at step ≥{reached}; the training-operator "
        f"recreated the pod; resumed from checkpoint-{resumed_step} ({lost} steps lost, "
        f"saveSteps {SAVE_STEPS}); succeeded {recovered:.0f} s after the kill"
    )


def chain_path(chain: Chain, claim: str, path: str) -> Path:
    from tests.support.process_node import claim_dir

    return claim_dir(chain.kube, claim) / path


@pytest.fixture
def small_volume(local_chain: Chain, tmp_path: Path) -> Iterator[str]:
    """A claim on a 200 MiB tmpfs (a PersistentVolume of its own, hostPath on the mount)."""
    if os.geteuid() != 0:
        unavailable("faults", "the volume-full test mounts a small tmpfs, which needs root")
    mount = tmp_path / "small-volume"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(mount)], check=True)
    kube: Kube = local_chain.kube
    name = f"small-{uuid.uuid4().hex[:8]}"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": "200Mi"},
                "accessModes": ["ReadWriteMany"],
                "storageClassName": name,
                "hostPath": {"path": str(mount)},
                "claimRef": {"namespace": kube.namespace, "name": "small-workspace"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "small-workspace"},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": name,
                "resources": {"requests": {"storage": "200Mi"}},
            },
        },
    )
    yield "small-workspace"
    kube.run("delete", "pv", name, "--wait=false", namespaced=False)
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> int:
    """Write until the volume refuses; returns the bytes written."""
    written = 0
    chunk = b"\0" * 2**20
    with (folder / "filler").open("wb", buffering=0) as out:
        try:
            while True:
                written += out.write(chunk)
        except OSError:
            pass
    return written


def test_a_full_volume_fails_the_job_clearly_and_keeps_the_last_checkpoint(
    local_chain: Chain, small_volume: str
) -> None:
    chain = local_chain
    chain.put(small_volume, "data/tiny-chat.jsonl", TINY_DATA.read_bytes())
    chain.kube.apply(paused_tiny(chain, small_volume, "full"))
    workspace = chain_path(chain, small_volume, "")
    root = workspace / "jobs/full/checkpoints"
    held = workspace / f"jobs/full/paused-at-step-{PAUSE_AT}"
    eventually(
        lambda: held.exists() or phase(chain, "full", "x"),
        timeout=600,
        what=f"the run held at step {PAUSE_AT}, a checkpoint complete",
    )
    filled = fill(workspace)
    held.unlink()  # the run goes on to its next save, on a full volume
    done = wait_for(lambda: phase(chain, "full", "Failed"), timeout=300, what="the job to fail")
    failed = next(c for c in done["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "TrainingFailed", failed
    assert "the workspace volume is full" in failed["message"], failed
    assert "spec.storage.size" in failed["message"], failed
    # The latest complete checkpoint is named, untouched and loadable; nothing newer is complete.
    last = latest_complete(root)
    assert last is not None and f"{last.name}, is kept" in failed["message"], failed
    last_step = step_of(last)
    assert last_step is not None
    assert all(
        (step_of(p) or 0) <= last_step or not (p / MARKER).exists() for p in checkpoints(root)
    )
    (workspace / "filler").unlink()
    from safetensors.torch import load_file

    weights = load_file(str(last / "adapter_model.safetensors"))
    assert weights and all(t.isfinite().all() for t in weights.values())
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["global_step"] == step_of(last)
    print(
        f"\nfault: volume full ({filled / 2**20:.0f} MiB filler) mid-run; the job "
        f"failed naming it; {last.name} kept and loadable"
    )


def test_a_job_preempted_by_kueue_checkpoints_waits_and_resumes(
    kueue: Kube, local_chain: Chain
) -> None:
    """Real Kueue (v0.17, LowerPriority preemption) evicts a low-priority job mid-training for a
    high-priority one: the trainer saves on SIGTERM, the job shows `Queued` (evicted), resumes
    once the other is done, and ends at its full step count, with at most `saveSteps` redone
    and the eviction counted on its status.

    The quota is one CPU, not GPUs: the process node's pods really train (on the CPU), and
    Kueue's preemption is the same whatever resource the ClusterQueue counts."""
    chain = local_chain
    kube = chain.kube
    cq = f"preempt-{kube.namespace}"
    kube.apply(
        flavor(),
        cluster_queue(cq, gpus=0, preempt=True, others={"cpu": 1}),
        priority_class("kubetune-test-low", 10),
        priority_class("kubetune-test-high", 1000),
        server_side=True,
    )
    kube.apply(local_queue("team", cq))
    claim = chain.claim("preempt-workspace")
    chain.put(claim, "data/tiny-chat.jsonl", TINY_DATA.read_bytes())

    def queued(name: str, priority: str, doc: dict[str, Any]) -> dict[str, Any]:
        doc["metadata"]["name"] = name
        doc["spec"]["scheduling"] = {"queue": "team", "priorityClass": priority}
        doc["spec"]["resources"] = {"cpu": 1}
        doc["spec"]["terminationGracePeriodSeconds"] = 60
        return doc

    try:
        kube.apply(queued("low", "kubetune-test-low", paused_tiny(chain, claim, "low")))
        held = chain_path(chain, claim, f"jobs/low/paused-at-step-{PAUSE_AT}")
        eventually(
            lambda: held.exists() or phase(chain, "low", "x"),
            timeout=600,
            what=f"the low-priority run held at step {PAUSE_AT}",
        )
        high = tiny_on_two_nodes(chain, claim)
        high["spec"]["distributed"]["nodes"] = 1
        high["spec"]["training"].update({"maxSteps": 4, "saveSteps": 4})
        kube.apply(queued("high", "kubetune-test-high", high))
        arrived = time.monotonic()
        # Kueue evicts the low job: its PyTorchJob is suspended, its pod deleted (SIGTERM).
        evicted = eventually(
            lambda: (lambda s: s if s.get("phase") == "Queued" else None)(
                kube.get("finetunejob", "low").get("status") or {}
            ),
            timeout=60,
            what="Kueue to evict the low-priority job",
        )
        reason = next(c for c in evicted["conditions"] if c["type"] == "Queued")["reason"]
        assert reason == "EvictedPreempted", evicted["conditions"]
        held.unlink()  # the held step ends; the SIGTERM it got makes it save and stop
        done_high = wait_for(lambda: phase(chain, "high", "Succeeded"), timeout=600, what="high")
        preempted_for = time.monotonic() - arrived
        done = wait_for(lambda: phase(chain, "low", "Succeeded"), timeout=600, what="low")
    finally:
        kube.run("delete", "ftj", "--all", "--wait=false")
        kube.run("delete", "clusterqueue", cq, "--wait=false", namespaced=False)

    manifest = json.loads(chain.read(claim, "jobs/low/output/manifest.json") or "{}")
    assert manifest["metrics"]["globalStep"] == MAX_STEPS
    (resume,) = manifest["resumes"]
    # at most saveSteps could be lost; the save on SIGTERM (a checkpoint past the held step,
    # not a saveSteps multiple) loses none
    assert resume["reachedStep"] > PAUSE_AT and resume["fromStep"] % SAVE_STEPS != 0, resume
    assert resume["stepsRedone"] == 0, resume
    assert done["progress"]["resumes"] == 1, done["progress"]
    assert done["progress"]["stepsRedone"] == resume["stepsRedone"]
    assert done["scheduling"]["evictions"] == 1, done["scheduling"]
    assert done["scheduling"]["lastEvictionReason"] == "Preempted"
    assert done["scheduling"]["clusterQueue"] == cq
    assert done_high["completionTime"] <= done["completionTime"]
    print(
        f"\nfault: preempted by Kueue at step ≥{PAUSE_AT} for a higher priority; saved on "
        f"SIGTERM at step {resume['reachedStep']}, resumed from step {resume['fromStep']} "
        f"({resume['stepsRedone']} steps redone, saveSteps {SAVE_STEPS}); the high-priority "
        f"job succeeded {preempted_for:.0f} s after it was applied"
    )
