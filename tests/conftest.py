"""Every test gets the marker of its tier, chosen by the folder it lives in
(tests/support/tiers.py), and a run goes fastest tier first.

`pytest -m unit` is the everyday loop (`make check`); `make test` runs every tier. The fixtures of
the local control plane are shared by the cluster, e2e and faults tiers through a plugin.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _pytest.mark.expression import Expression

if TYPE_CHECKING:  # pytest 9's name for the matcher's type; 8 takes the same callable
    from _pytest.mark.expression import ExpressionMatcher

from tests.support import kind
from tests.support.tiers import DESCRIPTIONS, ORDER, tier_of

pytest_plugins = ["tests.support.cluster_fixtures"]
TESTS = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    for tier, what in DESCRIPTIONS.items():
        config.addinivalue_line("markers", f"{tier}: {what}")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A `-m` expression of tiers leaves out whole files of the other tiers before they are
    imported, so `pytest -m unit` runs without torch installed and starts in seconds. (Files only
    prune: the markers on the items still decide.)"""
    expression = config.getoption("markexpr")
    if (
        not expression
        or collection_path.suffix != ".py"
        or not collection_path.name.startswith("test_")
    ):
        return None
    relative = collection_path.resolve().relative_to(TESTS).as_posix()
    tiers = {tier_of(relative)} | ({"kind"} if relative.startswith("e2e/") else set())
    try:
        wanted = Expression.compile(expression)
    except SyntaxError:
        return None  # pytest reports the bad expression itself
    return not any(wanted.evaluate(is_marker(tier)) for tier in tiers)


def is_marker(tier: str) -> ExpressionMatcher:
    """Whether a name in a `-m` expression is this tier's marker."""

    def matches(name: str, /, **_: str | int | bool | None) -> bool:
        return name == tier

    return matches


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # A kind parameter of an end-to-end test is of the kind tier, not e2e.
        tier = "kind" if item.get_closest_marker("kind") else tier_of(_relative(item))
        if tier != "kind":
            item.add_marker(getattr(pytest.mark, tier))
        item.user_properties.append(("tier", tier))
    items.sort(key=lambda item: ORDER.index(dict(item.user_properties)["tier"]))


# Tiers that run before the kind tier and mostly wait (on API servers, training processes): the
# kind cluster comes up beside them (tests/support/kind.py).
KIND_BESIDE = ("cluster", "e2e", "faults", "images", "kind")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if dict(item.user_properties).get("tier") in KIND_BESIDE:
        kind.start_in_background(item.config)


def pytest_collection_finish(session: pytest.Session) -> None:
    tiers = {dict(i.user_properties).get("tier") for i in session.items}
    session.config.stash[kind.WANTED] = "kind" in tiers and not session.config.option.collectonly


def pytest_sessionfinish(session: pytest.Session) -> None:
    kind.stop_untaken(session.config)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """With KUBETUNE_TEST_REPORT set (.ci/run sets it), every phase of every test is appended to
    tests.jsonl there: hack/test-report.py sums the tiers' times and lists the slowest tests."""
    folder = os.environ.get("KUBETUNE_TEST_REPORT")
    if not folder:
        return
    record = {
        "test": report.nodeid,
        "tier": dict(report.user_properties).get("tier", "unit"),
        "when": report.when,
        "seconds": round(report.duration, 3),
        "outcome": report.outcome,
        "start": round(report.start, 3),
        "stop": round(report.stop, 3),
    }
    with open(Path(folder) / "tests.jsonl", "a") as out:
        out.write(json.dumps(record) + "\n")


def _relative(item: pytest.Item) -> str:
    return Path(str(item.fspath)).resolve().relative_to(TESTS).as_posix()
