"""kubetune.runtime.readiness against kopf's own `ToggleSet`: the same states and the same
waiters released after every step of random scripts, for `all` and for `any`; and the cost of
kopf's start-up gate as objects arrive one by one, counted in evaluations of the set (the
measure that does not depend on the machine's speed)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from kopf._cogs.aiokits import aiotoggles

from kubetune.runtime import readiness

KOPFS = readiness.ToggleSet.__mro__[1]  # kopf's own class, whatever install() did


async def settle() -> None:
    for _ in range(20):  # a released waiter of kopf's takes the condition's lock in turn
        await asyncio.sleep(0)


Trace = list[tuple[str, bool, list[bool]]]


async def script(
    cls: type[aiotoggles.ToggleSet], fn: Callable[[Iterable[bool]], bool], seed: int
) -> Trace:
    """Random steps (make, turn, drop one, drop several, start a waiter); after each, the
    set's state and which waiters have returned."""
    rng = random.Random(seed)
    toggles = cls(fn)
    made: list[aiotoggles.Toggle] = []
    waiters: list[asyncio.Task[None]] = []
    trace: Trace = []
    for _ in range(60):
        step = rng.choice(["make", "make", "turn", "drop", "drops", "wait", "wait"])
        if step == "make":
            made.append(await toggles.make_toggle(rng.random() < 0.5, name=str(len(made))))
        elif step == "turn" and made:
            await rng.choice(made).turn_to(rng.random() < 0.5)
        elif step == "drop" and made:
            await toggles.drop_toggle(made.pop(rng.randrange(len(made))))
        elif step == "drops" and made:
            gone = rng.sample(made, k=min(len(made), rng.randint(1, 3)))
            await toggles.drop_toggles(gone)
            made = [t for t in made if t not in gone]
        elif step == "wait":
            waiters.append(asyncio.create_task(toggles.wait_for(rng.random() < 0.5)))
        await settle()
        trace.append((step, toggles.is_on(), [w.done() for w in waiters]))
    for w in waiters:
        w.cancel()
    return trace


@pytest.mark.parametrize("fn", [all, any])
@pytest.mark.parametrize("seed", range(20))
def test_states_and_released_waiters_match_kopfs_own_class(
    fn: Callable[[Iterable[bool]], bool], seed: int
) -> None:
    ours = asyncio.run(script(readiness.ToggleSet, fn, seed))
    kopfs = asyncio.run(script(KOPFS, fn, seed))
    assert ours == kopfs


def counted(cls: type[aiotoggles.ToggleSet]) -> tuple[type[aiotoggles.ToggleSet], list[int]]:
    """The class, counting the evaluations of its sets' state (in the list's one item)."""
    evaluations = [0]

    class Counted(cls):  # type: ignore[valid-type, misc]
        def is_on(self) -> bool:
            evaluations[0] += 1
            return bool(super().is_on())

    return Counted, evaluations


async def start_up(cls: type[aiotoggles.ToggleSet], objects: int) -> None:
    """kopf's start-up with `objects` indexed objects, as queueing.py and processing.py drive
    the set: a toggle while a kind is still listing; each object arriving gets a toggle, and
    its worker drops it once indexed and waits for the whole set."""
    gate = cls(all)
    listing = await gate.make_toggle(name="a kind still listing")

    async def worker(toggle: aiotoggles.Toggle) -> None:
        await gate.drop_toggle(toggle)
        await gate.wait_for(True)

    workers = []
    for i in range(objects):
        toggle = await gate.make_toggle(name=str(i))
        workers.append(asyncio.create_task(worker(toggle)))
        await asyncio.sleep(0)
    await gate.drop_toggle(listing)
    await asyncio.wait_for(asyncio.gather(*workers), timeout=60)


def test_the_start_up_gate_costs_a_few_evaluations_per_object_not_one_per_waiter() -> None:
    kopfs, evaluations = counted(KOPFS)
    asyncio.run(start_up(kopfs, 200))
    # every arrival re-evaluated once per worker already waiting: ~n²/2
    assert evaluations[0] > 200 * 199 / 2, evaluations
    for n in (200, 5000):
        ours, evaluations = counted(readiness.ToggleSet)
        asyncio.run(start_up(ours, n))
        assert evaluations[0] <= 6 * n, (n, evaluations)


def test_install_puts_it_where_kopf_creates_its_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    from kopf._core.reactor import orchestration, processing, running

    monkeypatch.setattr(aiotoggles, "ToggleSet", aiotoggles.ToggleSet)  # undone after the test
    monkeypatch.setattr(processing, "process_resource_event", processing.process_resource_event)
    monkeypatch.setattr(readiness, "_PROCESS", readiness._PROCESS)
    readiness.install()
    for module in (orchestration, running):  # they create their sets as aiotoggles.ToggleSet
        assert vars(module)["aiotoggles"].ToggleSet is readiness.ToggleSet


def test_only_objects_with_a_handler_to_hold_back_wait_at_the_gate() -> None:
    import kopf
    from kopf._cogs.structs import references

    import kubetune.runtime.handlers  # noqa: F401  (registers the handlers and indexes)

    registry = kopf.get_default_registry()

    def kind(group: str, plural: str) -> references.Resource:
        return references.Resource(group, "v1", plural, namespaced=True)

    ftj = references.Resource("kubetune.io", "v1alpha1", "finetunejobs", namespaced=True)
    pytorchjobs, claims, pods = (
        kind("kubeflow.org", "pytorchjobs"),
        kind("", "persistentvolumeclaims"),
        kind("", "pods"),
    )
    for resource, listed, modified in (
        (ftj, True, True),  # a job's reconcile reads every index
        (pytorchjobs, False, True),  # dropped at a listing by pytorchjob_news, whatever the indexes
        (claims, False, False),  # index handlers only
        (pods, True, True),
    ):
        assert readiness.waits(registry, resource, {"type": None}) is listed, resource
        assert readiness.waits(registry, resource, {"type": "MODIFIED"}) is modified, resource


def test_a_worker_that_need_not_wait_drops_its_toggle_and_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through kopf's own call: the claim's worker gets past the gate while it is still off,
    its toggle dropped from it; the job's worker waits until the gate opens."""
    import kopf
    from kopf._cogs.structs import references
    from kopf._core.reactor import processing, running

    import kubetune.runtime.handlers  # noqa: F401

    monkeypatch.setattr(aiotoggles, "ToggleSet", aiotoggles.ToggleSet)
    monkeypatch.setattr(readiness, "_PROCESS", readiness._PROCESS)
    passed: list[str] = []

    async def kopfs(
        *, resource: Any, resource_indexed: Any, operator_indexed: Any, **_: Any
    ) -> None:
        await operator_indexed.drop_toggle(resource_indexed)  # kopf's order: drop, then wait
        await operator_indexed.wait_for(True)
        passed.append(resource.plural)

    monkeypatch.setattr(processing, "process_resource_event", kopfs)  # kopf's, as install finds it
    readiness.install()
    readiness.install()  # idempotent: still one wrapper around kopf's
    assert vars(running)["processing"].process_resource_event is readiness.process_resource_event

    async def start() -> None:
        gate = readiness.ToggleSet(all)
        listing = await gate.make_toggle(False, name="another kind still listing")
        registry = kopf.get_default_registry()
        workers = []
        for resource in (
            references.Resource("", "v1", "persistentvolumeclaims", namespaced=True),
            references.Resource("kubetune.io", "v1alpha1", "finetunejobs", namespaced=True),
        ):
            toggle = await gate.make_toggle(False, name=resource.plural)
            process: Any = processing.process_resource_event  # readiness's, after install()
            call = process(
                registry=registry,
                resource=resource,
                raw_event={"type": None, "object": {}},
                resource_indexed=toggle,
                operator_indexed=gate,
            )
            workers.append(asyncio.create_task(call))
        await settle()
        assert passed == ["persistentvolumeclaims"]
        assert not gate.is_on() and list(gate) == [listing]  # both workers' toggles dropped
        await gate.drop_toggle(listing)
        await asyncio.gather(*workers)
        assert passed == ["persistentvolumeclaims", "finetunejobs"]

    asyncio.run(start())
