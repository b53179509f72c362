"""`set_condition` against apimachinery's own cases for `meta.SetStatusCondition`
(kubernetes/apimachinery, pkg/api/meta/conditions_test.go, TestSetStatusCondition:
should-add, use-supplied-time, update-fields), with its times as `now` and `before`."""

from __future__ import annotations

import pytest

from kubetune.runtime.conditions import find_condition, set_condition

BEFORE, NOW = "2026-12-06T09:00:00Z", "2026-12-06T10:00:00Z"


def test_should_add_appends_with_now_as_its_transition_time() -> None:
    conditions = [{"type": "first"}, {"type": "third"}]
    out = set_condition(conditions, "second", "True", "Reason", "message", NOW, None)
    assert out == [
        {"type": "first"},
        {"type": "third"},
        {
            "type": "second",
            "status": "True",
            "lastTransitionTime": NOW,
            "reason": "Reason",
            "message": "message",
            "observedGeneration": None,
        },
    ]
    assert conditions == [{"type": "first"}, {"type": "third"}]  # the given list is untouched


def test_use_supplied_time_when_the_status_flips() -> None:
    conditions = [{"type": "first"}, {"type": "second", "status": "False"}, {"type": "third"}]
    out = set_condition(conditions, "second", "True", "Reason", "message", NOW, 2)
    assert [c["type"] for c in out] == ["first", "second", "third"]  # in place, not moved
    second = find_condition(out, "second")
    assert second == {
        "type": "second",
        "status": "True",
        "lastTransitionTime": NOW,
        "reason": "Reason",
        "message": "message",
        "observedGeneration": 2,
    }


def test_update_fields_keeps_the_transition_time_when_the_status_holds() -> None:
    conditions = [{"type": "second", "status": "True", "lastTransitionTime": BEFORE}]
    out = set_condition(conditions, "second", "True", "Reason", "message", NOW, 3)
    assert out == [
        {
            "type": "second",
            "status": "True",
            "lastTransitionTime": BEFORE,
            "reason": "Reason",
            "message": "message",
            "observedGeneration": 3,
        }
    ]


def test_a_reason_is_required_as_metav1_condition_requires_one() -> None:
    with pytest.raises(ValueError, match="condition Ready: a reason is required"):
        set_condition([], "Ready", "False", "", "", NOW, None)
    assert find_condition([], "Ready") is None
