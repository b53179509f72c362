"""The watch cache's bookkeeping: watch events and the API's own writes applied in order, an
older state never replacing a newer one. (The watch itself runs against the real API server in
tests/cluster/test_openai_api.py.)"""

from __future__ import annotations

from typing import Any

from kubetune.openai_api.cache import apply_event


def job(name: str, version: str, phase: str = "Pending") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "team-a", "name": name, "resourceVersion": version},
        "status": {"phase": phase},
    }


def test_events_add_update_and_delete() -> None:
    jobs: dict[tuple[str, str], dict[str, Any]] = {}
    apply_event(jobs, "ADDED", job("a", "5"))
    apply_event(jobs, "MODIFIED", job("a", "7", "Training"))
    apply_event(jobs, "ADDED", job("b", "8"))
    apply_event(jobs, "BOOKMARK", {"metadata": {"resourceVersion": "9"}})
    assert jobs[("team-a", "a")]["status"]["phase"] == "Training"
    apply_event(jobs, "DELETED", job("b", "10"))
    assert set(jobs) == {("team-a", "a")}


def test_a_late_event_never_rolls_back_a_remembered_write() -> None:
    jobs: dict[tuple[str, str], dict[str, Any]] = {}
    apply_event(jobs, "MODIFIED", job("a", "12", "Suspended"))  # the patch's own answer
    apply_event(jobs, "MODIFIED", job("a", "11", "Training"))  # the watch, behind it
    assert jobs[("team-a", "a")]["status"]["phase"] == "Suspended"
    apply_event(
        jobs, "MODIFIED", job("a", "100", "Training")
    )  # resourceVersions compare as numbers
    assert jobs[("team-a", "a")]["status"]["phase"] == "Training"
