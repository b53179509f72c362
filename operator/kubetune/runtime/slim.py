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
Every other field stays. It also wraps kopf's `process_resource_event` so that, after each
event, kopf's copy of the object's last body kept for its timers goes where no timer runs
(`release`). tests/runtime/test_slim.py checks that the views and indexes read the same from a
cut body as from the whole one, and that kopf reaches both wrappers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import watching
from kopf._core.reactor import processing

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


def release(memories: Any, raw_body: Any) -> None:
    """Drop the last body kopf keeps of an object for its timers, where none runs.

    kopf keeps, in each object's memory, its last body (`DaemonsMemory.live_fresh_body`) for
    its timers and daemons to read, for as long as the object exists, for every object of a
    kind that has any: every FineTuneJob, for the queue-position timer that runs only while a
    job is `Queued`. That was about 14 KiB a job, finished ones too. After each event, an
    object with no timer running lets it go (kopf does the same when a daemon stops for good);
    the next event sets it again before any timer starts."""
    memory = memories._items.get(memories._build_key(raw_body))
    if memory is not None and not memory.daemons_memory.running_daemons:
        memory.daemons_memory.live_fresh_body = None


_PROCESS: Any = None  # kopf's process_resource_event, as it was when install() ran


async def process_resource_event(*, memories: Any, raw_event: Any, **kwargs: Any) -> Any:
    """kopf's `process_resource_event`, then `release` of the object's body."""
    try:
        return await _PROCESS(memories=memories, raw_event=raw_event, **kwargs)
    finally:
        release(memories, raw_event["object"])


def install() -> None:
    """Make kopf's queueing read its watch streams through `slim_watch`, and process events
    through `process_resource_event` (idempotent)."""
    global _PROCESS
    watching.infinite_watch = slim_watch
    if processing.process_resource_event is not process_resource_event:
        _PROCESS = processing.process_resource_event
        processing.process_resource_event = process_resource_event  # type: ignore[assignment]
