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
`Cluster` protocol and the watches only through `Watched`, so tests run it in memory.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Protocol

from kubetune.api.job import API_VERSION, KIND, FineTuneJob, InvalidJob, parse_job
from kubetune.render import RenderSettings, render
from kubetune.render.metadata import Obj
from kubetune.render.names import pytorchjob_name
from kubetune.render.storage import workspace_claim
from kubetune.runtime.kube import Rejected
from kubetune.runtime.kueue import KUEUE_API, LOCAL_QUEUE, WORKLOAD, QueueState, holds
from kubetune.runtime.kueue import workload_active as _workload_active
from kubetune.runtime.observe import expected_outputs
from kubetune.runtime.status import (
    TRAINER_OWNED,
    Observed,
    Refusal,
    changed,
    compute_status,
    finished,
    pytorchjob_condition,
)
from kubetune.runtime.views import SPEC_HASH, PodView

__all__ = ["SPEC_HASH", "Reconciler", "Watched"]
PYTORCHJOB = ("kubeflow.org/v1", "PyTorchJob")
# The training-operator's Warning events when the API server refuses what it creates for a
# PyTorchJob (pkg/controller.v1/control/{pod,service}_control.go).
CREATE_FAILURES = ("FailedCreatePod", "FailedCreateService")


def spec_hash(job: FineTuneJob) -> str:
    """Everything that shapes the training; suspend is a run-time switch, not part of it."""
    spec = job.spec.model_dump(mode="json")
    spec["runPolicy"].pop("suspend", None)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


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


class Watched(Protocol):
    """What the operator's own watches hold (kopf indexes, `handlers.Indexed`): read from
    memory instead of asking the API server on every reconcile. None: the watch has nothing
    (yet); then the API is asked where it matters."""

    def pytorchjob(self, job: str, namespace: str) -> Obj | None: ...

    def pods(self, job: str, namespace: str) -> list[PodView]: ...

    def claim_phase(self, claim: str, namespace: str) -> str | None: ...

    def workload(self, pytorchjob: str, namespace: str) -> Obj | None:
        """Kueue's Workload of that PyTorchJob (cut to what runtime/kueue.py reads)."""


class Cluster(Protocol):
    """The API calls a reconcile makes: `runtime.kube.Kube` in the operator, an in-memory
    cluster in tests/runtime/test_reconcile.py."""

    def create(self, obj: Obj) -> Obj | None:
        """None when an object of that name already exists."""

    def apply(self, obj: Obj) -> Obj: ...

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Obj | None: ...

    def patch_status(self, name: str, namespace: str, status: Obj) -> None: ...

    def patch(self, api_version: str, kind: str, name: str, namespace: str, body: Obj) -> None: ...

    def serves(self, api_version: str) -> bool:
        """Whether the API server serves that group/version (Kueue's, for queued jobs)."""


@dataclass(frozen=True)
class Children:
    """The PyTorchJob after `ensure_children`, and whether this reconcile created it."""

    pytorchjob: Obj | None
    just_created: bool = False
    refusal: Refusal | None = None

    @property
    def existing(self) -> Obj | None:
        """The PyTorchJob as it ran before this reconcile (a just-created one has no pods yet,
        no bound claim and nothing to refuse or suspend)."""
        return None if self.just_created else self.pytorchjob


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
        waiting_for = self._dependency(job)
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
        return self._create(job, outcome)

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
            refused_change=self._refused(job, existing) if existing is not None else None,
            waiting_for=upstream.waiting_for,
            cycle=upstream.cycle,
            refusal=children.refusal or _pods_refused(existing, event_warning),
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
            self.cluster.patch_status(job.name, job.namespace, written)
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

    # --- helpers ------------------------------------------------------------------------

    def _create(self, job: FineTuneJob, outcome: Outcome) -> Children:
        """Create the children in order, the PyTorchJob last.

        A child that already exists means an earlier create was interrupted (the operator
        stopped) or the watch lags: if the PyTorchJob exists, nothing more is touched (a spec
        change is then refused, never half-applied); otherwise the child is converged."""
        for obj in render(job, self.settings):
            is_pytorchjob = obj["kind"] == "PyTorchJob"
            if is_pytorchjob:
                obj["metadata"].setdefault("annotations", {})[SPEC_HASH] = spec_hash(job)
            try:
                made = self.cluster.create(obj)
            except Rejected as refused:
                message = f"the API server refused {refused.child}: {refused.message}"
                return Children(None, refusal=Refusal("ChildRejected", message))
            if made is None:
                existing = self.cluster.get(*PYTORCHJOB, pytorchjob_name(job.name), job.namespace)
                if existing is not None:
                    return Children(existing)
                made = self.cluster.apply(obj)
            outcome.created.append(f"{obj['kind']}/{obj['metadata']['name']}")
            if is_pytorchjob:
                return Children(made, just_created=True)
        return Children(None)

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
        return QueueState(
            cluster_queue=(local.get("spec") or {}).get("clusterQueue"),
            workload=watched.workload(pytorchjob["metadata"]["name"], job.namespace),
        )

    def _dependency(self, job: FineTuneJob) -> Upstream:
        """The stage this job waits for; if the stages it waits on lead back to it, the cycle
        (`kubetune validate` refuses cycles among the files it is given; across separately
        applied jobs only the cluster shows them)."""
        ref = job.spec.model.fromJob
        if ref is None:
            return Upstream()
        other = self.cluster.get(API_VERSION, KIND, ref.name, job.namespace)
        phase = ((other or {}).get("status") or {}).get("phase")
        if phase == "Succeeded":
            return Upstream()
        chain = [job.name, ref.name]
        behind = other
        while len(chain) <= MAX_CHAIN:
            if chain[-1] in chain[:-1]:
                stages = " → ".join(chain[chain.index(chain[-1]) :])
                return Upstream(
                    cycle=f"spec.model.fromJob: the stages start from each other in a circle "
                    f"({stages}), so none of them can start; point one of them at a model "
                    f"instead of a job"
                )
            if behind is None:
                break
            following = ((behind.get("spec") or {}).get("model") or {}).get("fromJob") or {}
            behind_phase = (behind.get("status") or {}).get("phase")
            if not following.get("name") or behind_phase == "Succeeded":
                break
            chain.append(following["name"])
            behind = self.cluster.get(API_VERSION, KIND, following["name"], job.namespace)
        state = "does not exist" if other is None else f"is {phase or 'Pending'}"
        return Upstream(
            waiting_for=f"starts from FineTuneJob {ref.name}, which {state}; "
            "waiting for it to succeed"
        )

    def _refused(self, job: FineTuneJob, pytorchjob: Obj) -> str | None:
        applied = (pytorchjob["metadata"].get("annotations") or {}).get(SPEC_HASH)
        if applied is None or applied == spec_hash(job):
            return None
        return (
            "the spec changed after training started; only spec.runPolicy.suspend can change "
            "now. The running training keeps its original spec: delete and recreate the "
            "FineTuneJob to train with the new one"
        )


@dataclass(frozen=True)
class Upstream:
    """Where the stage this job starts from stands: still to succeed, or in a cycle."""

    waiting_for: str | None = None
    cycle: str | None = None

    @property
    def blocked(self) -> bool:
        return self.waiting_for is not None or self.cycle is not None


MAX_CHAIN = 32
"""How far up a chain of stages the cycle check reads."""


def _pods_refused(pytorchjob: Obj | None, warning: Obj | None) -> Refusal | None:
    """The training-operator's FailedCreate* event, if it is about this very PyTorchJob (not an
    earlier one of the same name)."""
    if pytorchjob is None or warning is None or warning.get("reason") not in CREATE_FAILURES:
        return None
    if "already exists" in str(warning.get("message")):
        return (
            None  # the training-operator's cache lags (after an API server outage): not a refusal
        )
    involved = warning.get("involvedObject") or {}
    uid = pytorchjob["metadata"].get("uid")
    if uid is not None and involved.get("uid") not in (None, uid):
        return None
    what = "pod" if warning["reason"] == "FailedCreatePod" else "Service"
    message = str(warning.get("message") or "").removeprefix("Error creating: ")
    return Refusal(
        "PodsRejected", f"the training-operator could not create a training {what}: {message}"
    )


def _ended(pytorchjob: Obj) -> bool:
    return any(pytorchjob_condition(pytorchjob, c) for c in ("Succeeded", "Failed"))


def _unparsed(body: Obj) -> FineTuneJob:
    """A job whose spec did not parse: its metadata alone, enough to write the status."""
    from kubetune.api.job import ObjectMeta

    meta = ObjectMeta.model_validate(body["metadata"])
    return FineTuneJob.model_construct(metadata=meta, spec=None)  # type: ignore[arg-type,call-arg]
