"""What Kueue says about a queued FineTuneJob, as a pure function (docs/kueue.md).

A job with `spec.scheduling.queue` gets a PyTorchJob created suspended with Kueue's queue
label. Kueue's PyTorchJob integration makes a Workload for it (owned by the PyTorchJob), and
admits it when its ClusterQueue has quota: it unsuspends the PyTorchJob then, and suspends it
again when it evicts (preempts) it. The operator never flips that `suspend` itself; a user's
`spec.runPolicy.suspend` deactivates the Workload instead (`spec.active: false`, Kueue's own
stop switch), so the two never fight.

    queued(queue, pytorchjob, state) -> (reason, message) while Kueue holds the job, else None

The job's place in the queue comes from Kueue's visibility API (`visibility.kueue.x-k8s.io`,
an aggregated API server inside Kueue's manager): the pending Workloads of its LocalQueue, in
the order Kueue will consider them. Where that API is not served, the job is Queued all the
same, without a position.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetune.render.metadata import Obj

KUEUE_API = "kueue.x-k8s.io/v1beta2"
WORKLOAD = (KUEUE_API, "Workload")
LOCAL_QUEUE = (KUEUE_API, "LocalQueue")
VISIBILITY_API = "visibility.kueue.x-k8s.io/v1beta2"


@dataclass(frozen=True)
class QueuePosition:
    """Where Kueue's visibility API puts a pending Workload, counted from 1 (1: considered
    next); Kueue's own `positionInClusterQueue` and `positionInLocalQueue` count from 0."""

    cluster_queue: int
    local_queue: int

    def as_status(self) -> Obj:
        return {"clusterQueue": self.cluster_queue, "localQueue": self.local_queue}

    def text(self) -> str:
        return (
            f"position {self.cluster_queue} in the ClusterQueue, "
            f"{self.local_queue} in the LocalQueue"
        )


def position_of(pending: list[Obj] | None, workload: str) -> QueuePosition | None:
    """The Workload's position among a LocalQueue's pending Workloads (the `items` of the
    visibility API's `pendingworkloads`), None when it is not among them (admitted, not
    considered yet) or the API gave nothing."""
    for item in pending or []:
        if (item.get("metadata") or {}).get("name") == workload:
            return QueuePosition(
                cluster_queue=int(item.get("positionInClusterQueue", 0)) + 1,
                local_queue=int(item.get("positionInLocalQueue", 0)) + 1,
            )
    return None


@dataclass(frozen=True)
class QueueState:
    """What the cluster holds about a queued job's Kueue objects."""

    installed: bool = True
    """Kueue's API (`kueue.x-k8s.io/v1beta2`) is served."""
    cluster_queue: str | None = None
    """The LocalQueue's ClusterQueue; None when the LocalQueue does not exist."""
    local_queue_found: bool = True
    workload: Obj | None = None
    """The PyTorchJob's Workload (metadata.name, spec.active, status.conditions, admission)."""
    position: QueuePosition | None = None
    """Its place among the LocalQueue's pending Workloads (Kueue's visibility API), if known."""


def condition(obj: Obj | None, kind: str) -> Obj | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def holds(pytorchjob: Obj | None) -> bool:
    """Kueue holds the PyTorchJob: it is suspended (created so, or suspended again on
    eviction) and Kueue has not let it run."""
    return bool(((pytorchjob or {}).get("spec") or {}).get("runPolicy", {}).get("suspend"))


def queued(queue: str, pytorchjob: Obj | None, state: QueueState) -> tuple[str, str] | None:
    """(reason, message) for phase `Queued` while Kueue holds the job, None once it runs.

    The message names the ClusterQueue and gives Kueue's own reason and message (from the
    Workload's QuotaReserved or Evicted condition); a missing Kueue, LocalQueue or Workload is
    named as such, never left as a silent Pending."""
    if pytorchjob is None or not holds(pytorchjob):
        return None
    if not state.installed:
        return (
            "KueueNotInstalled",
            f"spec.scheduling.queue names LocalQueue {queue}, but Kueue is not installed (the "
            f"API {KUEUE_API} is not served): install Kueue with its kubeflow.org/pytorchjob "
            "integration, or remove spec.scheduling.queue; the PyTorchJob waits suspended",
        )
    if not state.local_queue_found:
        return (
            "LocalQueueNotFound",
            f"spec.scheduling.queue: LocalQueue {queue} does not exist in this namespace: "
            "create it (pointing at a ClusterQueue) or name an existing one",
        )
    where = f"ClusterQueue {state.cluster_queue} (LocalQueue {queue})"
    wl = state.workload
    if wl is None:
        return (
            "WaitingForWorkload",
            f"{where}: waiting for Kueue to create the Workload of PyTorchJob "
            f"{pytorchjob['metadata']['name']} (Kueue's kubeflow.org/pytorchjob integration "
            "must be enabled)",
        )
    if state.position is not None:
        where += f", {state.position.text()}"
    evicted = condition(wl, "Evicted")
    if evicted and evicted.get("status") == "True":
        return (
            f"Evicted{evicted.get('reason', '')}",
            f"{where}: evicted by Kueue ({evicted.get('reason')}): {evicted.get('message', '')}; "
            "it resumes from its latest checkpoint when admitted again",
        )
    reserved = condition(wl, "QuotaReserved")
    if reserved and reserved.get("status") == "True":
        return ("Admitting", f"{where}: quota reserved, waiting for Kueue to start the job")
    if reserved:
        return (
            reserved.get("reason") or "Pending",
            f"{where}: {reserved.get('message') or 'waiting for quota'}",
        )
    return ("Pending", f"{where}: waiting for Kueue to consider the Workload {name_of(wl)}")


def scheduling(state: QueueState | None, old: Obj | None) -> Obj | None:
    """`status.scheduling`: the ClusterQueue, the job's position while it is pending, and how
    often Kueue evicted the job (the Workload's `status.schedulingStats.evictions`, summed over
    reasons) with the latest eviction's reason. Read while Kueue holds the job; kept from `old`
    while it runs, but for the position."""
    if state is None or state.workload is None:
        kept = {k: v for k, v in (old or {}).items() if k != "position"}
        return kept or None
    wl = state.workload
    stats = ((wl.get("status") or {}).get("schedulingStats") or {}).get("evictions") or []
    count = sum(int(e.get("count", 0)) for e in stats)
    out = {k: v for k, v in (old or {}).items() if k != "position"}
    if state.position is not None:
        out["position"] = state.position.as_status()
    if state.cluster_queue:
        out["clusterQueue"] = state.cluster_queue
    if count:
        out["evictions"] = max(count, int(out.get("evictions", 0)))
    evicted = condition(wl, "Evicted")
    if evicted and evicted.get("status") == "True" and evicted.get("reason"):
        out["lastEvictionReason"] = evicted["reason"]
    return out or None


def name_of(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def workload_active(workload: Obj | None) -> bool:
    """A Workload without `spec.active` is active (Kueue's default)."""
    return ((workload or {}).get("spec") or {}).get("active", True) is not False
