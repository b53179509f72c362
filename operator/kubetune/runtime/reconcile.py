"""One reconcile, three steps: render the children, create them (once), set the status.

Level-triggered: every event on a FineTuneJob, its PyTorchJob or its pods runs the same
function, which reads the world and converges. Spec changes after the PyTorchJob exists are
refused with a condition (the applied spec is hashed onto the PyTorchJob), except
`runPolicy.suspend`, which suspends and resumes it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubetune.api.job import API_VERSION, KIND, FineTuneJob, InvalidJob, parse_job
from kubetune.render import RenderSettings, render
from kubetune.render.names import pytorchjob_name
from kubetune.render.storage import workspace_claim
from kubetune.runtime.kube import Kube
from kubetune.runtime.observe import expected_outputs, pod_state
from kubetune.runtime.status import (
    TRAINER_OWNED,
    Observed,
    changed,
    compute_status,
    finished,
    pytorchjob_condition,
)

Obj = dict[str, Any]
SPEC_HASH = "kubetune.io/spec-hash"
PYTORCHJOB = ("kubeflow.org/v1", "PyTorchJob")


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

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")


class Watched(Protocol):
    """What the operator's own watches hold (kopf indexes, `handlers.Indexed`): read from
    memory instead of asking the API server on every reconcile. None: the watch has nothing
    (yet); then the API is asked where it matters."""

    def pytorchjob(self, job: str, namespace: str) -> Obj | None: ...

    def pods(self, job: str, namespace: str) -> list[Obj]: ...

    def claim_phase(self, claim: str, namespace: str) -> str | None: ...


@dataclass
class Reconciler:
    kube: Kube
    settings: RenderSettings

    def reconcile(
        self,
        body: Obj,
        watched: Watched,
        event_pod: Obj | None = None,
        event_pytorchjob: Obj | None = None,
    ) -> Outcome:
        """`event_pod` / `event_pytorchjob`: the child whose event triggered this, as the event
        saw it. A failed pod the training-operator deletes right away still counts as evidence
        of the failure."""
        name, namespace = body["metadata"]["name"], body["metadata"].get("namespace", "default")
        old = dict(body.get("status") or {})
        outcome = Outcome(previous_phase=old.get("phase"))
        try:
            job = parse_job(body)
        except InvalidJob as invalid:
            bare = FineTuneJob.model_construct(metadata=_meta(body), spec=None)  # type: ignore[arg-type,call-arg]
            seen = Observed(problems=invalid.problems)
            return self._write(bare, name, namespace, seen, old, outcome)
        waiting = self._dependency(job)
        pytorchjob = event_pytorchjob or watched.pytorchjob(name, namespace)
        if pytorchjob is None and old.get("phase"):
            # Seen before: the watch may lag behind our own create; ask before creating.
            pytorchjob = self.kube.get(*PYTORCHJOB, pytorchjob_name(name), namespace)
        refused = None
        just_created = False
        if waiting is None and pytorchjob is None and not finished(old):
            pytorchjob, just_created = self._create(job, outcome)
        # Just created: no pods yet and the claim cannot be bound; the next event reads them.
        existing = None if just_created else pytorchjob
        if existing is not None:
            refused = self._refused(job, existing)
        pods = watched.pods(name, namespace) if existing is not None else []
        if event_pod is not None and pod_state(event_pod).prepare_failure:
            uids = {p["metadata"].get("uid") for p in pods}
            if event_pod["metadata"].get("uid") not in uids:
                pods = [*pods, event_pod]
        seen = Observed(
            refused_change=refused,
            waiting_for=waiting,
            pytorchjob=pytorchjob,
            pods=[pod_state(p) for p in sorted(pods, key=lambda p: p["metadata"]["name"])],
            claim_phase=None
            if just_created
            else watched.claim_phase(workspace_claim(job), namespace),
        )
        self._write(job, name, namespace, seen, old, outcome)
        if existing is not None:
            # Failed while the PyTorchJob still runs (PrepareFailed): stop its pods.
            stop = outcome.phase == "Failed" and finished(outcome.status) and not _ended(existing)
            self._sync_suspend(job, existing, stop=stop)
        return outcome

    def _create(self, job: FineTuneJob, outcome: Outcome) -> tuple[Obj | None, bool]:
        """Create the children in order, the PyTorchJob last; returns (PyTorchJob, created now).

        A child that already exists means an earlier create was interrupted (the operator
        stopped) or the watch lags: if the PyTorchJob exists, nothing more is touched (a spec
        change is then refused, never half-applied); otherwise the child is converged."""
        for obj in render(job, self.settings):
            is_pytorchjob = obj["kind"] == "PyTorchJob"
            if is_pytorchjob:
                obj["metadata"].setdefault("annotations", {})[SPEC_HASH] = spec_hash(job)
            made = self.kube.create(obj)
            if made is None:
                existing = self.kube.get(*PYTORCHJOB, pytorchjob_name(job.name), job.namespace)
                if existing is not None:
                    return existing, False
                made = self.kube.apply(obj)
            outcome.created.append(f"{obj['kind']}/{obj['metadata']['name']}")
            if is_pytorchjob:
                return made, True
        return None, False

    def _write(
        self,
        job: FineTuneJob,
        name: str,
        namespace: str,
        seen: Observed,
        old: Obj,
        outcome: Outcome,
    ) -> Outcome:
        new = compute_status(job, seen, old, now())
        if new["phase"] == "Succeeded" and job.spec is not None:
            new["outputs"] = expected_outputs(job, self.settings)
        outcome.status = new
        if changed(old, new):
            # Progress and checkpoints are the trainer's: never send them back (stale).
            self.kube.patch_status(
                name, namespace, {k: v for k, v in new.items() if k not in TRAINER_OWNED}
            )
            outcome.status_written = True
        return outcome

    def _dependency(self, job: FineTuneJob) -> str | None:
        ref = job.spec.model.fromJob
        if ref is None:
            return None
        other = self.kube.get(API_VERSION, KIND, ref.name, job.namespace)
        phase = ((other or {}).get("status") or {}).get("phase")
        if phase == "Succeeded":
            return None
        state = "does not exist" if other is None else f"is {phase or 'Pending'}"
        return f"starts from FineTuneJob {ref.name}, which {state}; waiting for it to succeed"

    def _refused(self, job: FineTuneJob, pytorchjob: Obj) -> str | None:
        applied = (pytorchjob["metadata"].get("annotations") or {}).get(SPEC_HASH)
        if applied is None or applied == spec_hash(job):
            return None
        return (
            "the spec changed after training started; only spec.runPolicy.suspend can change "
            "now. The running training keeps its original spec: delete and recreate the "
            "FineTuneJob to train with the new one"
        )

    def _sync_suspend(self, job: FineTuneJob, pytorchjob: Obj, stop: bool) -> None:
        """runPolicy.suspend of the PyTorchJob follows the spec's; a failed job's is stopped
        (suspended) so nothing keeps recreating its pods."""
        wanted = job.spec.runPolicy.suspend or stop
        current = bool(pytorchjob["spec"].get("runPolicy", {}).get("suspend", False))
        if wanted != current:
            self.kube.patch(
                *PYTORCHJOB,
                pytorchjob["metadata"]["name"],
                job.namespace,
                {"spec": {"runPolicy": {"suspend": wanted}}},
            )


def _ended(pytorchjob: Obj) -> bool:
    return any(pytorchjob_condition(pytorchjob, c) for c in ("Succeeded", "Failed"))


def _meta(body: Obj) -> Any:
    from kubetune.api.job import ObjectMeta

    return ObjectMeta.model_validate(body["metadata"])
