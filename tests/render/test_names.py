"""Child names are deterministic DNS-1035 labels, cut with a hash suffix when too long."""

from __future__ import annotations

import re

import pytest

from kubetune.render.names import MAX_PYTORCHJOB, child_name, pytorchjob_name, workspace_claim_name

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize("length", [1, 20, 40, 50, 53, 54, 63])
def test_names_fit_and_stay_valid(length: int) -> None:
    job = ("a" + "b-" * 40)[:length].rstrip("-") or "a"
    for name in (
        workspace_claim_name(job),
        pytorchjob_name(job),
        child_name(job, "trainer-config"),
    ):
        assert DNS1035.match(name) and len(name) <= 63, name
    assert len(pytorchjob_name(job)) <= MAX_PYTORCHJOB
    assert len(f"{pytorchjob_name(job)}-worker-1023") <= 63


def test_short_names_are_kept_as_they_are() -> None:
    assert workspace_claim_name("tiny") == "tiny-workspace"
    assert pytorchjob_name("tiny") == "tiny"


def test_cut_names_are_deterministic_and_distinct() -> None:
    a, b = "x" * 60 + "a", "x" * 60 + "b"
    assert workspace_claim_name(a) == workspace_claim_name(a)
    assert workspace_claim_name(a) != workspace_claim_name(b)
    assert workspace_claim_name(a).endswith("-workspace")
