"""Where the stage a FineTuneJob starts from (`spec.model.fromJob`) stands: still to succeed,
or in a cycle of stages that start from each other (`kubetune validate` refuses cycles among the
files it is given; across separately applied jobs only the cluster shows them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubetune.api.job import FineTuneJob
from kubetune.runtime.interfaces import Cluster
from kubetune_api.resource import API_VERSION, KIND
from kubetune_api.s3_spec import S3Connection, UpstreamOutputs

MAX_CHAIN = 32
"""How far up a chain of stages the cycle check reads."""


@dataclass(frozen=True)
class Upstream:
    """Where the stage this job starts from stands: still to succeed, or in a cycle."""

    waiting_for: str | None = None
    cycle: str | None = None
    outputs: UpstreamOutputs | None = None
    """Where the succeeded stage uploaded its outputs (`final` artifact only), for the trainer
    to read when they are not on this job's volume."""

    @property
    def blocked(self) -> bool:
        return self.waiting_for is not None or self.cycle is not None


def upstream_of(cluster: Cluster, job: FineTuneJob) -> Upstream:
    """The stage this job waits for; if the stages it waits on lead back to it, the cycle."""
    ref = job.spec.model.fromJob
    if ref is None:
        return Upstream()
    other = cluster.get(API_VERSION, KIND, ref.name, job.namespace)
    phase = ((other or {}).get("status") or {}).get("phase")
    if phase == "Succeeded":
        return Upstream(outputs=uploaded_outputs(other) if ref.artifact == "final" else None)
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
        behind = cluster.get(API_VERSION, KIND, following["name"], job.namespace)
    state = "does not exist" if other is None else f"is {phase or 'Pending'}"
    return Upstream(
        waiting_for=f"starts from FineTuneJob {ref.name}, which {state}; waiting for it to succeed"
    )


def uploaded_outputs(stage: Any) -> UpstreamOutputs | None:
    """A succeeded stage's `status.outputs.uri` with the connection it uploaded with (its
    `output.s3`, else its `s3`), or None when it uploaded nothing."""
    uri = ((stage.get("status") or {}).get("outputs") or {}).get("uri")
    if not uri:
        return None
    spec = stage.get("spec") or {}
    conn = (spec.get("output") or {}).get("s3") or spec.get("s3") or {}
    return UpstreamOutputs(uri=uri, s3=S3Connection.model_validate(conn))
