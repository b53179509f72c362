"""kopf's readiness gate, made linear in the number of indexed objects.

At start-up kopf holds every handler until every index is filled. It tracks that with one
`aiotoggles.ToggleSet` (`operator_indexed`) holding a toggle per resource kind still listing
and one per listed object not yet indexed. Each object's worker indexes its object, drops its
toggle, and waits for the whole set to be on; and kopf's `ToggleSet.wait_for` waits on an
`asyncio.Condition` that every `make_toggle` and `drop_toggle` notifies. So every object that
arrives wakes every worker already waiting, each of which takes the condition's lock in turn to
re-check the set: n objects cost about n²/2 wake-ups before the first handler runs. Measured
with kopf 1.45.2's own class (objects arriving one by one, as a listing streams them): 1,000
objects 5.7 s, 2,000 21.5 s, 4,000 94 s of one core, before any reconcile; an operator over
2,000 settled jobs (6,000 indexed objects: the jobs, their PyTorchJobs and their claims) had
reconciled none after 212 s.

`ToggleSet` here keeps kopf's class and its meaning (the set is on when its function, `all`
or `any`, says so over its toggles' states) but wakes its waiters only when the set's own
state changes: each change evaluates the set once, and `wait_for` waits on one event per
state. `install()` puts it in kopf's place before the operator starts; kopf creates both of
its sets (`operator_indexed`, and `operator_paused` for peering) through the module's name.
tests/runtime/test_readiness.py checks it against kopf's own class, step by step, and counts
the evaluations at scale.

`install()` also makes kopf's workers wait at the gate only where a handler could run on the
indexes (`waits`): claims and listed PyTorchJobs go through at once (see below).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from kopf._cogs.aiokits import aiotoggles
from kopf._core.reactor import processing


class Toggle(aiotoggles.Toggle):
    """A toggle of a `ToggleSet` below: turning it re-evaluates its set."""

    def __init__(self, state: bool, *, name: str | None, owner: ToggleSet) -> None:
        super().__init__(state, name=name, condition=owner.condition)
        self._owner = owner

    async def turn_to(self, state: bool, /) -> None:
        await super().turn_to(state)
        self._owner.changed()


class ToggleSet(aiotoggles.ToggleSet):
    """kopf's `ToggleSet`, with waiters woken once per change of the set's state."""

    def __init__(self, fn: Callable[[Iterable[bool]], bool]) -> None:
        super().__init__(fn)
        self._reached = {True: asyncio.Event(), False: asyncio.Event()}
        self.changed()

    @property
    def condition(self) -> asyncio.Condition:
        return self._condition

    def changed(self) -> None:
        """Evaluate the set once, and wake whoever waits for the state it is in."""
        state = self.is_on()
        self._reached[state].set()
        self._reached[not state].clear()

    async def wait_for(self, state: bool, /) -> None:
        while self.is_on() != bool(state):
            if self._reached[bool(state)].is_set():  # never stale, but never a busy loop either
                self.changed()
            await self._reached[bool(state)].wait()

    async def make_toggle(self, val: bool = False, /, *, name: str | None = None) -> Toggle:
        toggle = Toggle(val, name=name, owner=self)
        async with self._condition:
            self._toggles.add(toggle)
            self._condition.notify_all()  # for any waiter on one toggle: none wait on the set
        self.changed()
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await super().drop_toggle(toggle)
        self.changed()

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        await super().drop_toggles(toggles)
        self.changed()


# Which objects wait at the gate. kopf holds each object's worker there, with the object's body,
# until the gate opens, so that no handler runs on half-filled indexes: at a restart over 10,000
# jobs, 30,000 workers and bodies at once. Two kinds of object have no handler to hold back, so
# their workers index the object, drop its toggle and go on (and end) at once:
# - an object of a kind that only index handlers watch (claims): nothing runs after indexing;
# - a PyTorchJob seen at a listing: `event_filters.pytorchjob_news` drops it whatever the
#   indexes hold (its FineTuneJob's own listing reconciles it).
DROPPED_AT_LISTING = frozenset({("kubeflow.org", "pytorchjobs")})


def waits(registry: Any, resource: Any, raw_event: Any) -> bool:
    """Whether this object's worker must wait at the start-up gate (see above)."""
    kinds = (registry._watching, registry._changing, registry._spawning)
    if not any(handlers.has_handlers(resource=resource) for handlers in kinds):
        return False
    listed = raw_event.get("type") is None
    return not (listed and (resource.group, resource.plural) in DROPPED_AT_LISTING)


class _DropsOnly:
    """The gate as a worker that need not wait sees it: its toggle is dropped from the gate,
    and waiting returns at once."""

    def __init__(self, gate: Any) -> None:
        self._gate = gate

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await self._gate.drop_toggle(toggle)

    async def wait_for(self, state: bool, /) -> None:
        return None


_PROCESS: Any = None  # kopf's process_resource_event, as it was when install() ran


async def process_resource_event(
    *, registry: Any, resource: Any, raw_event: Any, operator_indexed: Any = None, **kwargs: Any
) -> Any:
    """kopf's `process_resource_event`, with the gate waited for only where `waits` says so."""
    if operator_indexed is not None and not waits(registry, resource, raw_event):
        operator_indexed = _DropsOnly(operator_indexed)
    return await _PROCESS(
        registry=registry,
        resource=resource,
        raw_event=raw_event,
        operator_indexed=operator_indexed,
        **kwargs,
    )


def install() -> None:
    """Make kopf create its toggle sets from the class above, and process events through
    `process_resource_event` (idempotent)."""
    global _PROCESS
    aiotoggles.ToggleSet = ToggleSet  # type: ignore[misc]
    if processing.process_resource_event is not process_resource_event:
        _PROCESS = processing.process_resource_event
        processing.process_resource_event = process_resource_event  # type: ignore[assignment]
