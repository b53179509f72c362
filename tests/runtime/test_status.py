"""The status is a pure function of (spec, observed children, old status, now): a table."""

from __future__ import annotations

from typing import Any

import pytest

from kubetune.api import parse_job
from kubetune.api.job import Problem
from kubetune.runtime.status import Observed, PodState, changed, compute_status
from tests.support.factories import make_job

NOW, LATER = "2026-11-22T10:00:00Z", "2026-11-22T10:05:00Z"
JOB = parse_job(make_job(**{"metadata.generation": 3}))


def pytorchjob(*conditions: tuple[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "job"},
        "status": {
            "conditions": [{"type": t, "status": "True", "message": m} for t, m in conditions]
        },
    }


RUNNING = pytorchjob(("Created", ""), ("Running", "running"))

CASES: list[tuple[str, Observed, str, str, str]] = [
    (
        "invalid",
        Observed(problems=[Problem("spec.x", "bad")]),
        "Failed",
        "InvalidSpec",
        "spec.x: bad",
    ),
    (
        "waiting",
        Observed(waiting_for="starts from FineTuneJob a"),
        "Pending",
        "WaitingForJob",
        "FineTuneJob a",
    ),
    ("creating", Observed(), "Pending", "Creating", "creating"),
    (
        "claim",
        Observed(pytorchjob=pytorchjob(("Created", "")), claim_phase="Pending"),
        "Pending",
        "ClaimPending",
        "not bound",
    ),
    (
        "unschedulable",
        Observed(
            pytorchjob=pytorchjob(("Created", "")),
            pods=[PodState("job-master-0", unschedulable="0/2 nodes: Insufficient nvidia.com/gpu")],
        ),
        "Pending",
        "Unschedulable",
        "job-master-0: 0/2 nodes: Insufficient nvidia.com/gpu",
    ),
    (
        "image",
        Observed(
            pytorchjob=pytorchjob(("Created", "")),
            pods=[PodState("job-master-0", waiting_reason="ImagePullBackOff")],
        ),
        "Pending",
        "ImagePullBackOff",
        "job-master-0",
    ),
    (
        "preparing",
        Observed(pytorchjob=RUNNING, pods=[PodState("job-master-0", preparing=True)]),
        "Preparing",
        "Preparing",
        "preparing the dataset",
    ),
    (
        "training",
        Observed(pytorchjob=RUNNING, pods=[PodState("job-master-0", phase="Running")]),
        "Training",
        "Training",
        "training",
    ),
    (
        "suspended",
        Observed(pytorchjob=pytorchjob(("Suspended", ""))),
        "Suspended",
        "Suspended",
        "resumes",
    ),
    (
        "failed",
        Observed(
            pytorchjob=pytorchjob(("Failed", "backoff")),
            pods=[
                PodState(
                    "job-worker-0",
                    phase="Failed",
                    failure="container pytorch exited with code 3 (Error)",
                )
            ],
        ),
        "Failed",
        "TrainingFailed",
        "pod job-worker-0: container pytorch exited with code 3",
    ),
    (
        "prepare-failed",
        Observed(
            pytorchjob=RUNNING,
            pods=[
                PodState(
                    "job-master-0",
                    phase="Failed",
                    prepare_failure="init container prepare exited with code 1: no usable samples",
                )
            ],
        ),
        "Failed",
        "PrepareFailed",
        "pod job-master-0: init container prepare exited with code 1: no usable samples",
    ),
    (
        "succeeded",
        Observed(pytorchjob=pytorchjob(("Succeeded", "done"))),
        "Succeeded",
        "TrainingSucceeded",
        "done",
    ),
]


@pytest.mark.parametrize(
    ("seen", "phase", "reason", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_phase_reason_and_message(seen: Observed, phase: str, reason: str, message: str) -> None:
    status = compute_status(JOB, seen, None, NOW)
    assert status["phase"] == phase
    by_type = {c["type"]: c for c in status["conditions"]}
    current = by_type[phase]
    assert (current["status"], current["reason"]) == ("True", reason)
    assert message in current["message"]
    assert current["observedGeneration"] == 3 and status["observedGeneration"] == 3
    # the summary conditions, there from the first status on, with the phase's reason
    summary = {t: by_type[t]["status"] for t in ("Succeeded", "Failed", "Suspended", "Ready")}
    assert summary == {
        "Succeeded": {"Succeeded": "True", "Failed": "False"}.get(phase, "Unknown"),
        "Failed": "True" if phase == "Failed" else "False",
        "Suspended": "True" if phase == "Suspended" else "False",
        "Ready": "True" if phase == "Training" else "False",
    }
    assert all(by_type[t]["reason"] == reason for t in summary)
    phases = {"Pending", "Queued", "Preparing", "Training", "Succeeded", "Failed", "Suspended"}
    trues = {c["type"] for c in status["conditions"] if c["status"] == "True"}
    assert trues & phases == {phase}  # one phase at a time


def test_unchanged_world_writes_nothing() -> None:
    seen = Observed(pytorchjob=RUNNING, pods=[PodState("job-master-0", phase="Running")])
    first = compute_status(JOB, seen, None, NOW)
    second = compute_status(JOB, seen, first, LATER)
    assert not changed(first, second)  # no clock churn: same world, same status


def test_transitions_keep_history_and_times() -> None:
    training = compute_status(
        JOB, Observed(pytorchjob=RUNNING, pods=[PodState("p", phase="Running")]), None, NOW
    )
    done = compute_status(
        JOB, Observed(pytorchjob=pytorchjob(("Succeeded", "ok"))), training, LATER
    )
    conditions = {c["type"]: c for c in done["conditions"]}
    assert (
        conditions["Training"]["status"] == "False"
        and conditions["Training"]["lastTransitionTime"] == LATER
    )
    assert conditions["Succeeded"]["lastTransitionTime"] == LATER
    assert done["startTime"] == NOW and done["completionTime"] == LATER


def test_trainer_progress_is_carried_not_owned() -> None:
    old = {
        "phase": "Training",
        "progress": {"step": 40, "loss": 1.2},
        "checkpoints": {"latestStep": 40},
        "evaluation": {"step": 40, "loss": 1.5, "toolCalls": {"toolNameAccuracy": 0.9}},
    }
    new = compute_status(
        JOB, Observed(pytorchjob=RUNNING, pods=[PodState("p", phase="Running")]), old, NOW
    )
    assert new["progress"] == {"step": 40, "loss": 1.2} and new["checkpoints"] == {"latestStep": 40}
    assert new["evaluation"] == old["evaluation"]


def test_a_degraded_network_is_a_condition_of_its_own() -> None:
    """The trainer's preflight writes status.network; a verdict below the fabric becomes the
    NetworkDegraded condition with its message, beside the phase, until a later run is fine."""
    running = Observed(pytorchjob=RUNNING, pods=[PodState("p", phase="Running")])
    below = {"verdict": "belowFabric", "message": "NCCL is on TCP sockets", "busBandwidthGBps": 1.1}
    status = compute_status(JOB, running, {"phase": "Training", "network": below}, NOW)
    assert status["network"] == below and status["phase"] == "Training"
    conditions = {c["type"]: c for c in status["conditions"]}
    degraded = conditions["NetworkDegraded"]
    assert degraded["status"] == "True" and degraded["reason"] == "BelowFabric"
    assert degraded["message"] == "NCCL is on TCP sockets"
    assert conditions["Training"]["status"] == "True"
    assert not changed(status, compute_status(JOB, running, status, LATER))
    fine = {**status, "network": {"verdict": "ok", "message": "40 GB/s"}}
    after = {c["type"]: c for c in compute_status(JOB, running, fine, LATER)["conditions"]}
    assert after["NetworkDegraded"]["status"] == "False"
    assert after["NetworkDegraded"]["reason"] == "FabricOK"
    assert after["NetworkDegraded"]["lastTransitionTime"] == LATER
    unchecked = compute_status(JOB, running, {"network": {"verdict": "unchecked"}}, NOW)
    assert "NetworkDegraded" not in {c["type"] for c in unchecked["conditions"]}


def test_training_failures_and_success_are_final() -> None:
    """Once training ran and ended, the stopped pods or a vanished PyTorchJob change nothing."""
    failing = Observed(
        pytorchjob=RUNNING,
        pods=[PodState("p", phase="Failed", prepare_failure="init container prepare exited 1")],
    )
    failed = compute_status(JOB, failing, None, NOW)
    assert failed["phase"] == "Failed"
    for later in (Observed(pytorchjob=pytorchjob(("Suspended", ""))), Observed()):
        again = compute_status(JOB, later, failed, LATER)
        assert not changed(failed, again), again
    done = compute_status(JOB, Observed(pytorchjob=pytorchjob(("Succeeded", "ok"))), None, NOW)
    assert compute_status(JOB, Observed(), done, LATER)["phase"] == "Succeeded"
    # A spec found invalid is not final: fixing the spec runs the job.
    invalid = compute_status(JOB, Observed(problems=[Problem("spec.x", "bad")]), None, NOW)
    assert compute_status(JOB, Observed(), invalid, LATER)["phase"] == "Pending"


def test_refused_change_is_a_condition_of_its_own() -> None:
    seen = Observed(pytorchjob=RUNNING, pods=[PodState("p", phase="Running")], refused_change="no")
    status = compute_status(JOB, seen, None, NOW)
    refused = next(c for c in status["conditions"] if c["type"] == "SpecChangeRefused")
    assert refused["status"] == "True" and refused["reason"] == "TrainingStarted"
    assert status["phase"] == "Training"


def test_summary_conditions_follow_a_job_from_pending_to_success() -> None:
    """Ready, Succeeded, Failed and Suspended through a whole run: what `kubectl wait
    --for=condition=...` reads. Each `lastTransitionTime` moves only when its status flips."""
    times = iter(f"2026-11-22T10:0{i}:00Z" for i in range(10))
    running = Observed(pytorchjob=RUNNING, pods=[PodState("p", phase="Running")])
    steps = [
        (Observed(), "Creating"),
        (Observed(pytorchjob=RUNNING, claim_phase="Pending"), "ClaimPending"),
        (running, "Training"),
        (Observed(pytorchjob=pytorchjob(("Suspended", ""))), "Suspended"),
        (running, "Training"),
        (Observed(pytorchjob=pytorchjob(("Succeeded", "ok"))), "TrainingSucceeded"),
    ]
    status: dict[str, Any] | None = None
    seen: list[dict[str, tuple[str, str]]] = []
    for observed, reason in steps:
        status = compute_status(JOB, observed, status, next(times))
        by_type = {c["type"]: c for c in status["conditions"]}
        assert by_type[status["phase"]]["reason"] == reason
        seen.append({t: (c["status"], c["lastTransitionTime"]) for t, c in by_type.items()})
    ready = [s["Ready"][0] for s in seen]
    assert ready == ["False", "False", "True", "False", "True", "False"]
    assert [s["Succeeded"][0] for s in seen] == ["Unknown"] * 5 + ["True"]
    assert [s["Suspended"][0] for s in seen] == ["False"] * 3 + ["True"] + ["False"] * 2
    assert {s["Failed"] for s in seen} == {("False", seen[0]["Failed"][1])}  # never flipped
    assert seen[1]["Ready"][1] == seen[0]["Ready"][1]  # False → False keeps its time
    assert seen[5]["Succeeded"][1] != seen[4]["Succeeded"][1]
    assert status is not None and status["phase"] == "Succeeded"
    assert {c["reason"] for c in status["conditions"]} >= {"TrainingSucceeded", "Training"}
    assert all(c["reason"] for c in status["conditions"])  # metav1.Condition: never empty


def test_a_resumed_suspension_keeps_its_reason_even_within_one_second() -> None:
    """Suspended goes False with reason Resumed after a resume, and keeps it as the job moves
    on; timestamps have one-second resolution, so a suspension and its resume can share one."""
    running = Observed(pytorchjob=RUNNING, pods=[PodState("p", phase="Running")])
    paused = Observed(pytorchjob=pytorchjob(("Suspended", "")))
    status = compute_status(JOB, running, None, NOW)
    assert next(c for c in status["conditions"] if c["type"] == "Suspended")["reason"] == "Training"
    status = compute_status(JOB, paused, status, NOW)
    status = compute_status(JOB, Observed(pytorchjob=RUNNING), status, NOW)  # the same second
    suspended = next(c for c in status["conditions"] if c["type"] == "Suspended")
    assert (suspended["status"], suspended["reason"]) == ("False", "Resumed")
    status = compute_status(JOB, running, status, LATER)
    suspended = next(c for c in status["conditions"] if c["type"] == "Suspended")
    assert (suspended["status"], suspended["reason"]) == ("False", "Resumed")
    assert suspended["lastTransitionTime"] == NOW
