"""One reconcile of a FineTuneJob, as four named steps (the shape of Kubeflow Trainer's
`Reconcile`: get → build and apply → set conditions → write status only if changed):

    observe             the stage it waits for (or the cycle it is in), and its PyTorchJob
                        (watch first, API if it may lag)
    ensure_children     render and create the children once, the PyTorchJob last; a child the
                        API server refuses fails the job with the API server's message
    decide_status       the status, from what was observed
    enforce_run_policy  the PyTorchJob's suspend follows the spec; a failed job is stopped;
                        under Kueue the Workload's `spec.active` is the switch instead
    write_status        write the status only if it changed; after the run policy, so a job
                        that reads Failed has already been stopped

Level-triggered: every event on a FineTuneJob, its PyTorchJob or its pods runs the same
function, which reads the world and converges. Spec changes after the PyTorchJob exists are
refused with a condition (the applied spec is hashed onto the PyTorchJob), except
`runPolicy.suspend`, which suspends and resumes it. Pods or Services the training-operator
cannot create (its FailedCreatePod / FailedCreateService events, passed in as `event_warning`)
fail the job the same way when retrying cannot help. The cluster is reached only through the
`Cluster` protocol and the watches only through `Watched` (interfaces.py), so tests run it in
memory. The children (creating them, refused changes and refusals) are in children.py, the
stage a job starts from in upstream.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kubetune.api.job import FineTuneJob, InvalidJob, ObjectMeta, parse_job
from kubetune.render import RenderSettings
from kubetune.render.metadata import Obj
from kubetune.render.names import pytorchjob_name
from kubetune.render.storage import workspace_claim
from kubetune.runtime.children import (
    PYTORCHJOB,
    Children,
    create_children,
    pods_refused,
    refused_change,
)
from kubetune.runtime.interfaces import Cluster, Watched
from kubetune.runtime.kueue import (
    KUEUE_API,
    LOCAL_QUEUE,
    WORKLOAD,
    QueuePosition,
    QueueState,
    holds,
    position_of,
)
from kubetune.runtime.kueue import workload_active as _workload_active
from kubetune.runtime.observe import expected_outputs
from kubetune.runtime.status import (
    TRAINER_OWNED,
    Observed,
    changed,
    compute_status,
    finished,
    pytorchjob_condition,
)
from kubetune.runtime.upstream import Upstream, upstream_of
from kubetune.runtime.views import PodView


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Outcome:
    """What a reconcile did, for events, metrics and tests."""

    previous_phase: str | None = None
    created: list[str] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    status_written: bool = False
    pytorchjob: Obj | None = None
    """The PyTorchJob this reconcile's decisions read (None: there was none)."""

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")


@dataclass
class Reconciler:
    cluster: Cluster
    settings: RenderSettings

    def reconcile(
        self,
        body: Obj,
        watched: Watched,
        event_pod: Obj | None = None,
        event_pytorchjob: Obj | None = None,
        event_warning: Obj | None = None,
    ) -> Outcome:
        """observe → ensure children → compute the status → enforce the run policy → write
        the status.

        `event_pod` / `event_pytorchjob`: the child whose event triggered this, as the event
        saw it. A failed pod the training-operator deletes right away still counts as evidence
        of the failure. `event_warning`: the training-operator's FailedCreate* Event on the
        PyTorchJob that triggered this."""
        old = dict(body.get("status") or {})
        outcome = Outcome(previous_phase=old.get("phase"))
        try:
            job = parse_job(body)
        except InvalidJob as invalid:
            self.decide_status(_unparsed(body), Observed(problems=invalid.problems), old, outcome)
            self.write_status(_unparsed(body), old, outcome)
            return outcome
        upstream, pytorchjob = self.observe(job, old, watched, event_pytorchjob)
        children = self.ensure_children(job, upstream, pytorchjob, old, outcome)
        outcome.pytorchjob = children.pytorchjob
        seen = self.observed(job, upstream, children, watched, event_pod, event_warning)
        self.decide_status(job, seen, old, outcome)
        existing = children.existing
        workload = None
        if existing is not None and job.spec.scheduling.queue:
            workload = watched.workload(existing["metadata"]["name"], job.namespace)
        self.enforce_run_policy(job, existing, outcome, workload)
        self.write_status(job, old, outcome)
        return outcome

    # --- the steps ----------------------------------------------------------------------

    def observe(
        self, job: FineTuneJob, old: Obj, watched: Watched, event_pytorchjob: Obj | None
    ) -> tuple[Upstream, Obj | None]:
        """The stage this job still waits for, and its PyTorchJob: from the triggering event or
        the watch; from the API when the job was seen before (the watch may lag behind our own
        create, and creating again must not be tried on a guess)."""
        waiting_for = upstream_of(self.cluster, job)
        pytorchjob = event_pytorchjob or watched.pytorchjob(job.name, job.namespace)
        if pytorchjob is None and old.get("phase"):
            pytorchjob = self.cluster.get(*PYTORCHJOB, pytorchjob_name(job.name), job.namespace)
        return waiting_for, pytorchjob

    def ensure_children(
        self,
        job: FineTuneJob,
        upstream: Upstream,
        pytorchjob: Obj | None,
        old: Obj,
        outcome: Outcome,
    ) -> Children:
        """Create the children once: not while an upstream stage runs, not when the PyTorchJob
        exists, never again for a finished job."""
        if upstream.blocked or pytorchjob is not None or finished(old):
            return Children(pytorchjob)
        return create_children(self.cluster, self.settings, job, outcome.created, upstream.outputs)

    def observed(
        self,
        job: FineTuneJob,
        upstream: Upstream,
        children: Children,
        watched: Watched,
        event_pod: Obj | None,
        event_warning: Obj | None = None,
    ) -> Observed:
        """What the status is computed from: the refused spec change or child, the pods and the
        claim (from the watches)."""
        existing = children.existing
        pods = watched.pods(job.name, job.namespace) if existing is not None else []
        known = {p.uid for p in pods}
        if event_pod is not None and event_pod["metadata"].get("uid") not in known:
            seen_pod = PodView.of(event_pod)
            if seen_pod.state.prepare_failure:
                pods = [*pods, seen_pod]
        claim = workspace_claim(job)
        return Observed(
            refused_change=refused_change(job, existing) if existing is not None else None,
            waiting_for=upstream.waiting_for,
            cycle=upstream.cycle,
            refusal=children.refusal or pods_refused(existing, event_warning),
            pytorchjob=children.pytorchjob,
            pods=sorted((p.state for p in pods), key=lambda state: state.name),
            claim_phase=None
            if children.just_created
            else watched.claim_phase(claim, job.namespace),
            queue=self._queue_state(job, children.pytorchjob, watched),
        )

    def decide_status(self, job: FineTuneJob, seen: Observed, old: Obj, outcome: Outcome) -> None:
        """The status from what was observed, into `outcome.status`."""
        new = compute_status(job, seen, old, now())
        if new["phase"] == "Succeeded" and job.spec is not None:
            new["outputs"] = expected_outputs(job, self.settings)
        outcome.status = new

    def write_status(self, job: FineTuneJob, old: Obj, outcome: Outcome) -> None:
        """Write the computed status only when it changed, never the trainer's fields."""
        new = outcome.status
        if changed(old, new):
            # Progress and checkpoints are the trainer's: never send them back (stale).
            written = {k: v for k, v in new.items() if k not in TRAINER_OWNED}
            self.cluster.patch_status(job.name, job.namespace, _with_removals(old, written))
            outcome.status_written = True

    def enforce_run_policy(
        self, job: FineTuneJob, existing: Obj | None, outcome: Outcome, workload: Obj | None = None
    ) -> None:
        """runPolicy.suspend of the PyTorchJob follows the spec's; a job that failed while its
        PyTorchJob still runs (PrepareFailed) is stopped (suspended), so nothing keeps
        recreating its pods.

        Under Kueue the PyTorchJob's suspend is Kueue's (it would undo ours): the Workload's
        `spec.active` follows the spec instead, which Kueue honours by evicting and holding the
        job, and releases when it is set back."""
        if existing is None:
            return
        stop = outcome.phase == "Failed" and finished(outcome.status) and not _ended(existing)
        wanted = job.spec.runPolicy.suspend or stop
        if job.spec.scheduling.queue:
            if workload is not None and _workload_active(workload) == wanted:
                self.cluster.patch(
                    *WORKLOAD,
                    workload["metadata"]["name"],
                    job.namespace,
                    {"spec": {"active": not wanted}},
                )
            return
        current = bool(existing["spec"].get("runPolicy", {}).get("suspend", False))
        if wanted != current:
            self.cluster.patch(
                *PYTORCHJOB,
                existing["metadata"]["name"],
                job.namespace,
                {"spec": {"runPolicy": {"suspend": wanted}}},
            )

    def queue_position_moved(self, body: Obj, watched: Watched) -> bool:
        """Whether a queued job's position among its LocalQueue's pending Workloads (Kueue's
        visibility API) differs from the one its status shows: one shared read per LocalQueue
        (kube.PENDING_TTL_S), no write. False when that API does not answer and none is shown."""
        status = body.get("status") or {}
        queue = ((body.get("spec") or {}).get("scheduling") or {}).get("queue")
        pytorchjob = status.get("pytorchJobName")
        if not queue or not pytorchjob:
            return False
        namespace = body["metadata"]["namespace"]
        position = self._position(namespace, queue, watched.workload(pytorchjob, namespace))
        shown = (status.get("scheduling") or {}).get("position")
        return (position.as_status() if position else None) != shown

    # --- helpers ------------------------------------------------------------------------

    def _queue_state(
        self, job: FineTuneJob, pytorchjob: Obj | None, watched: Watched
    ) -> QueueState | None:
        """Kueue's view of a queued job, read only while Kueue holds its PyTorchJob: whether
        Kueue is installed, the LocalQueue's ClusterQueue, and the Workload (from the watch)."""
        queue = job.spec.scheduling.queue
        if not queue or pytorchjob is None or not holds(pytorchjob):
            return None
        if not self.cluster.serves(KUEUE_API):
            return QueueState(installed=False)
        local = self.cluster.get(*LOCAL_QUEUE, queue, job.namespace)
        if local is None:
            return QueueState(local_queue_found=False)
        workload = watched.workload(pytorchjob["metadata"]["name"], job.namespace)
        return QueueState(
            cluster_queue=(local.get("spec") or {}).get("clusterQueue"),
            workload=workload,
            position=self._position(job.namespace, queue, workload),
        )

    def _position(self, namespace: str, queue: str, workload: Obj | None) -> QueuePosition | None:
        """An active Workload's place among its LocalQueue's pending ones (Kueue's visibility
        API), None when it is not pending or that API does not answer."""
        if workload is None or not _workload_active(workload):
            return None
        pending = self.cluster.pending_workloads(namespace, queue)
        return position_of(pending, workload["metadata"]["name"])


def _with_removals(old: Obj, new: Obj) -> Obj:
    """The status patch (a JSON merge patch, which keeps what it does not name): a field of a
    nested object that `new` no longer has (`scheduling.position` once Kueue admits the job)
    is sent as null, so it goes."""
    out = dict(new)
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            gone = {k: None for k in before if k not in value}
            if gone:
                out[key] = {**value, **gone}
    return out


def _ended(pytorchjob: Obj) -> bool:
    return any(pytorchjob_condition(pytorchjob, c) for c in ("Succeeded", "Failed"))


def _unparsed(body: Obj) -> FineTuneJob:
    """A job whose spec did not parse: its metadata alone, enough to write the status."""
    meta = ObjectMeta.model_validate(body["metadata"])
    return FineTuneJob.model_construct(metadata=meta, spec=None)  # type: ignore[arg-type,call-arg]
