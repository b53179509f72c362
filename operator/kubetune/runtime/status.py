"""The FineTuneJob status as a pure function of what was observed.

    compute_status(job, observed, old, now) -> new status (wire form)

No I/O, no clock (`now` is passed in): the same inputs give the same status, and the operator
writes it only when it differs from the old one. Progress, checkpoints, evaluation and the
network preflight's report belong to the trainer (it patches them); they are carried over
untouched, and a report below the declared fabric becomes the NetworkDegraded condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import get_args

from kubetune.api.job import FineTuneJob, Problem
from kubetune.render.metadata import Obj
from kubetune.runtime.conditions import Status, find_condition, set_condition
from kubetune.runtime.kueue import QueueState, queued, scheduling
from kubetune_api.conditions import (
    FAILED,
    NETWORK_DEGRADED,
    READY,
    SPEC_CHANGE_REFUSED,
    SUCCEEDED,
    SUMMARY,
    SUSPENDED,
    Reason,
)
from kubetune_api.status import Phase

TRAINER_OWNED = ("progress", "checkpoints", "network", "evaluation", "metrics")
PHASES = get_args(Phase)


@dataclass(frozen=True)
class PodState:
    """What matters about one training pod."""

    name: str
    phase: str = "Pending"
    preparing: bool = False
    """An init container (`prepare`) is running or waiting."""
    waiting_reason: str | None = None
    """Why a container is waiting (ImagePullBackOff, CrashLoopBackOff, …)."""
    failure: str | None = None
    """`container <name> exited with code N (Reason)` for a failed container."""
    prepare_failure: str | None = None
    """An init container that exited 1-127: retrying cannot help (bad data, missing file)."""
    unschedulable: str | None = None
    """The scheduler's message when the pod cannot be placed."""


# What the API server says when retrying the same object cannot help: it is invalid, or an
# admission rule (a webhook, a ValidatingAdmissionPolicy, Pod Security) denied it. Anything else
# (an exceeded quota, a conflict) may pass later.
FINAL_REFUSALS = (" is invalid", "denied the request", "denied request", "violates PodSecurity")


@dataclass(frozen=True)
class Refusal:
    """The API server refused an object the job needs: one of its children (`ChildRejected`) or,
    as the training-operator reports in FailedCreate* events, a training pod or Service
    (`PodsRejected`)."""

    reason: str
    message: str

    @property
    def final(self) -> bool:
        return any(marker in self.message for marker in FINAL_REFUSALS)


@dataclass(frozen=True)
class Observed:
    problems: list[Problem] = field(default_factory=list)
    """Why the spec cannot run (nothing is created then)."""
    refused_change: str | None = None
    """A spec change refused because training already started."""
    waiting_for: str | None = None
    """A FineTuneJob this one starts from, not finished yet."""
    cycle: str | None = None
    """The stages that start from each other in a circle, this one among them."""
    refusal: Refusal | None = None
    claim_phase: str | None = None
    pytorchjob: Obj | None = None
    pods: list[PodState] = field(default_factory=list)
    queue: QueueState | None = None
    """Kueue's objects for a job with spec.scheduling.queue (runtime/kueue.py)."""


def pytorchjob_condition(pytorchjob: Obj | None, kind: str) -> Obj | None:
    for cond in ((pytorchjob or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _phase_and_reason(job: FineTuneJob, seen: Observed) -> tuple[str, str, str]:
    """(phase, reason, message) — the first matching rule wins."""
    if seen.problems:
        return "Failed", Reason.INVALID_SPEC, "; ".join(str(p) for p in seen.problems)
    if seen.cycle:
        return "Failed", Reason.DEPENDENCY_CYCLE, seen.cycle
    if seen.waiting_for:
        return "Pending", Reason.WAITING_FOR_JOB, seen.waiting_for
    pj = seen.pytorchjob
    refused = seen.refusal
    if pj is None and refused is None:
        return "Pending", Reason.CREATING, "creating the PyTorchJob"
    if done := pytorchjob_condition(pj, "Succeeded"):
        return "Succeeded", Reason.TRAINING_SUCCEEDED, done.get("message", "training finished")
    if failed := pytorchjob_condition(pj, "Failed"):
        culprit = next((p for p in seen.pods if p.failure), None)
        detail = f"pod {culprit.name}: {culprit.failure}" if culprit else failed.get("message", "")
        return "Failed", Reason.TRAINING_FAILED, detail
    if refused is not None:
        # Final: nothing is retried (the PyTorchJob, if any, is stopped). Otherwise the wait
        # is named until a later try succeeds.
        return ("Failed" if refused.final else "Pending"), refused.reason, refused.message
    if culprit := next((p for p in seen.pods if p.prepare_failure), None):
        # The training-operator would recreate the pod forever (its ExitCode policy reads only
        # the training container); the operator stops the PyTorchJob instead.
        return "Failed", Reason.PREPARE_FAILED, f"pod {culprit.name}: {culprit.prepare_failure}"
    queue = job.spec.scheduling.queue
    held = queue and seen.queue and not job.spec.runPolicy.suspend and queued(queue, pj, seen.queue)
    if held:
        return "Queued", *held
    if pytorchjob_condition(pj, "Suspended") or job.spec.runPolicy.suspend:
        return (
            "Suspended",
            Reason.SUSPENDED,
            "suspended: pods are stopped, training resumes from the latest checkpoint",
        )
    if seen.claim_phase == "Pending":
        unbound = "the workspace PersistentVolumeClaim is not bound yet"
        return "Pending", Reason.CLAIM_PENDING, unbound
    stuck = next((p for p in seen.pods if p.unschedulable), None)
    if stuck:
        return "Pending", Reason.UNSCHEDULABLE, f"pod {stuck.name}: {stuck.unschedulable}"
    waiting = next((p for p in seen.pods if p.waiting_reason), None)
    if waiting and waiting.waiting_reason in (
        "ImagePullBackOff",
        "ErrImagePull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
    ):
        return "Pending", waiting.waiting_reason, f"pod {waiting.name}: {waiting.waiting_reason}"
    if any(p.preparing for p in seen.pods):
        return "Preparing", Reason.PREPARING, "fetching the model and preparing the dataset"
    if (seen.pods and all(p.phase == "Running" for p in seen.pods)) or pytorchjob_condition(
        pj, "Running"
    ):
        return "Training", Reason.TRAINING, "training"
    return "Pending", Reason.STARTING, "waiting for the training pods to start"


def _conditions(
    old: list[Obj],
    phase: str,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
    refused: str | None,
    network: Obj | None = None,
) -> list[Obj]:
    """The summary conditions (`api/conditions.py`): Succeeded, Failed, Suspended and Ready,
    with the phase's reason and message when not True. One condition per other phase the job
    has been in, the current one True, earlier ones False with their last reason. Beside them:
    SpecChangeRefused, and NetworkDegraded from the trainer's preflight
    (`status.network.verdict` belowFabric). Sorted by type."""
    out = [dict(c) for c in old]

    def put(kind: str, state: Status, why: str, text: str) -> None:
        nonlocal out
        out = set_condition(out, kind, state, why, text, now, generation)

    for cond in old:  # earlier phases, with their own last reason
        if cond["type"] in PHASES and cond["type"] not in SUMMARY and cond["type"] != phase:
            put(cond["type"], "False", cond.get("reason") or cond["type"], cond.get("message", ""))
    if phase not in SUMMARY:
        put(phase, "True", reason, message)
    done: Status = "True" if phase == "Succeeded" else "False" if phase == "Failed" else "Unknown"
    put(SUCCEEDED, done, reason, message)
    put(FAILED, "True" if phase == "Failed" else "False", reason, message)
    if phase == "Suspended":
        put(SUSPENDED, "True", reason, message)
    elif (held := find_condition(old, SUSPENDED)) and (
        held.get("status") == "True" or held.get("reason") == Reason.RESUMED
    ):
        put(SUSPENDED, "False", Reason.RESUMED, "resumed after a suspension")
    else:
        put(SUSPENDED, "False", reason, message)
    put(READY, "True" if phase == "Training" else "False", reason, message)
    if refused:
        put(SPEC_CHANGE_REFUSED, "True", Reason.TRAINING_STARTED, refused)
    elif previous := find_condition(old, SPEC_CHANGE_REFUSED):
        put(SPEC_CHANGE_REFUSED, "False", previous["reason"], previous.get("message", ""))
    degraded = network_degraded(network)
    if network is not None and (degraded or find_condition(old, NETWORK_DEGRADED)):
        found = Reason.BELOW_FABRIC if degraded else Reason.FABRIC_OK
        put(NETWORK_DEGRADED, "True" if degraded else "False", found, network.get("message") or "")
    return sorted(out, key=lambda c: c["type"])


def network_degraded(network: Obj | None) -> bool:
    """The trainer's preflight found the network far below the declared fabric."""
    return network is not None and network.get("verdict") == "belowFabric"


# Failures decided from the specs alone: each reconcile decides them again, so fixing the spec
# (or the other stage in a cycle) lets the job run.
RECONSIDERED = (Reason.INVALID_SPEC, Reason.DEPENDENCY_CYCLE)


def finished(old: Obj | None) -> bool:
    """Training ran, or was refused, and ended: Succeeded, or Failed for a reason other than
    the specs. Final — neither a vanished PyTorchJob nor its stopped pods change it, and nothing
    is recreated."""
    phase = (old or {}).get("phase")
    if phase == "Succeeded":
        return True
    conditions: list[Obj] = (old or {}).get("conditions") or []
    failed: Obj = find_condition(conditions, FAILED) or {}
    return phase == "Failed" and failed.get("reason") not in (None, "", *RECONSIDERED)


def compute_status(job: FineTuneJob, seen: Observed, old: Obj | None, now: str) -> Obj:
    old = old or {}
    if finished(old) and not seen.problems:
        current = next(c for c in old["conditions"] if c["type"] == old["phase"])
        phase, reason, message = old["phase"], current["reason"], current["message"]
    else:
        phase, reason, message = _phase_and_reason(job, seen)
    spec = job.spec
    status: Obj = {k: old[k] for k in TRAINER_OWNED if k in old}
    status.update(
        phase=phase,
        conditions=_conditions(
            old.get("conditions") or [],
            phase,
            reason,
            message,
            job.metadata.generation,
            now,
            seen.refused_change,
            old.get("network"),
        ),
        observedGeneration=job.metadata.generation,
    )
    if not seen.problems:
        status["effectiveBatchSize"] = spec.effective_batch_size
    if seen.pytorchjob is not None:
        status["pytorchJobName"] = seen.pytorchjob["metadata"]["name"]
    elif "pytorchJobName" in old:
        status["pytorchJobName"] = old["pytorchJobName"]
    started = old.get("startTime") or (now if phase in ("Preparing", "Training") else None)
    if started:
        status["startTime"] = started
    if phase in ("Succeeded", "Failed"):
        status["completionTime"] = old.get("completionTime") or now
    if "outputs" in old:
        status["outputs"] = old["outputs"]
    if kueue := scheduling(seen.queue, old.get("scheduling")):
        status["scheduling"] = kueue
    return status


def changed(old: Obj | None, new: Obj) -> bool:
    """Whether a status write is needed (time stamps alone never trigger one)."""
    return (old or {}) != new
