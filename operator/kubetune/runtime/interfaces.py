"""The two interfaces a reconcile works through: `Cluster`, the API calls it makes
(`runtime.kube.Kube` in the operator, an in-memory cluster in tests/runtime/test_reconcile.py),
and `Watched`, what the operator's own watches hold (`indexes.Indexed`). Through them the
reconciler runs against memory in tests and against the API server in the operator."""

from __future__ import annotations

from typing import Protocol

from kubetune.render.metadata import Obj
from kubetune.runtime.views import PodView


class Watched(Protocol):
    """What the operator's own watches hold (kopf indexes, `indexes.Indexed`): read from
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

    def pending_workloads(self, namespace: str, local_queue: str) -> list[Obj] | None:
        """The pending Workloads of a LocalQueue in Kueue's order, from its visibility API
        (each with `metadata.name`, `positionInClusterQueue`, `positionInLocalQueue`); None
        when that API does not answer (not served, forbidden, the queue unknown to Kueue)."""
