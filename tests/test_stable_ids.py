"""Correlation and task ids are a pure function of the group and the case, and stable across
releases: a redelivered or replayed event after an upgrade must find the task it already created
(the case system deduplicates on ``task_id``). Changing how they are derived is a versioned,
documented change; these golden values make it a deliberate one.

Task ids are keyed hashes since issue 9 (``triage/task_ids.py``, ``docs/security.md``): the golden
task ids hold for the fixed key below, as a deployment's ids hold for its ``TRIAGE_TASK_KEY``."""

from __future__ import annotations

from datetime import date

import pytest

from tests.world import World, address

HOME = address("home")
GOLDEN_KEY = "golden-task-key-for-tests-0001"


@pytest.fixture(autouse=True)
def _fixed_task_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_TASK_KEY", GOLDEN_KEY)


def test_a_birth_and_its_derived_copy_share_one_golden_correlation_and_task_id() -> None:
    w = World()
    w.person("mor", HOME)
    w.case("C1", "kontanthjaelp", "mor")
    w.stranger("baby", born=date(2025, 3, 2))
    fields = {"child_cpr": w.cpr("baby"), "parents": [w.cpr("mor")], "address": HOME,
              "date": "2025-03-02"}
    primary = w.cpr_event("baby", "child_added", at=0, **fields)
    copy = w.cpr_event("mor", "child_added", at=0.01, derived="MO", **fields)
    result = w.run()
    for event_id in (primary, copy):
        assert result.by_id(event_id).correlation_id == "cg-c1e83a295d5a15e6"
        assert result.verdict(event_id, "C1").task_id == "task-8ae334fc811cbc17"
    assert [(t.task_id, t.event_ids) for t in result.tasks] == [
        ("task-8ae334fc811cbc17", [primary])]


def test_a_marriage_copy_has_a_golden_correlation_and_task_id() -> None:
    w = World()
    w.person("mor", HOME)
    w.person("ven", address("his place"))
    w.case("C1", "kontanthjaelp", "mor")
    fields = {"code": "A19", "civil_status": "G", "date": "2025-03-01"}
    w.cpr_event("ven", "civil_status_changed", at=0, spouse_cpr=w.cpr("mor"), **fields)
    copy = w.cpr_event("mor", "civil_status_changed", at=0.01, derived="ÆG",
                       spouse_cpr=w.cpr("ven"), **fields)
    result = w.run()
    assert result.by_id(copy).correlation_id == "cg-a44a6d78bdf7d92d"
    assert result.verdict(copy, "C1").task_id == "task-ee1a18a7d8e4cba3"
