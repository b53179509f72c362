"""What kopf holds of each watched object, cut before kopf queues it.

At start-up kopf lists every object of every watched kind and gives each its own worker, which
holds the object's decoded body until every index is filled (readiness.py). A restart over
10,000 settled jobs (a job, its PyTorchJob and its claim each) held about 100 KiB of decoded
bodies a job that way, half of it `metadata.managedFields`, a third the PyTorchJob's pod
templates: the operator's RSS reached 1.3 GiB (docs/benchmarks.md).

`install()` wraps kopf's watch stream (`watching.infinite_watch`, which kopf's queueing calls
through the module's name, for listings and watch events alike) so that, before kopf sees it,
every object loses:
- `metadata.managedFields`, every kind: server-side apply's bookkeeping, which neither kopf nor
  kubetune reads;
- a PyTorchJob's spec but its `runPolicy`: the reconcile reads a PyTorchJob only as
  `views.PyTorchJobView` does (name, spec hash, suspend, conditions), from an event or from its
  index alike;
- a PersistentVolumeClaim's spec: `indexes.claim_phases` reads only its phase.
Every other field stays. tests/runtime/test_slim.py checks that the views and indexes read the
same from a cut body as from the whole one, and that kopf's queueing reaches the wrapper.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import watching

_ORIGINAL = watching.infinite_watch


def _pytorchjob(body: dict[str, Any]) -> None:
    spec = body.get("spec")
    if isinstance(spec, dict):
        body["spec"] = {"runPolicy": spec["runPolicy"]} if "runPolicy" in spec else {}


def _claim(body: dict[str, Any]) -> None:
    body.pop("spec", None)


CUTS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("kubeflow.org", "pytorchjobs"): _pytorchjob,
    ("", "persistentvolumeclaims"): _claim,
}


def slim(group: str, plural: str, body: dict[str, Any]) -> None:
    """Cut one object of a watched kind in place, as the stream below does."""
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    cut = CUTS.get((group, plural))
    if cut is not None:
        cut(body)


async def slim_watch(*, resource: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """kopf's `infinite_watch`, each event's object cut by `slim` (Bookmarks pass as they are;
    a watch ERROR's object is a Status, left whole). Closing it closes kopf's stream."""
    group, plural = resource.group, resource.plural
    stream: Any = _ORIGINAL(resource=resource, **kwargs)
    try:
        async for event in stream:
            raw: Any = event
            if isinstance(raw, dict) and raw.get("type") != "ERROR":
                body = raw.get("object")
                if isinstance(body, dict):
                    slim(group, plural, body)
            yield event
    finally:
        await stream.aclose()


def install() -> None:
    """Make kopf's queueing read its watch streams through `slim_watch` (idempotent)."""
    watching.infinite_watch = slim_watch
