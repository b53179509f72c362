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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from kopf._cogs.aiokits import aiotoggles


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


def install() -> None:
    """Make kopf create its toggle sets from the class above (idempotent)."""
    aiotoggles.ToggleSet = ToggleSet  # type: ignore[misc]
