"""No raised event without an owner (issue 9 point 7): a raised decision that touches no known
case becomes one task for the configured fallback unit, in the contract's task shape."""

from __future__ import annotations

import pytest

from tests.world import World, address
from triage.fallback import DEFAULT_FALLBACK_UNIT, NO_CASE, fallback_unit_from_env
from triage.models.events import parse_event
from triage.models.wire import TaskRecord


def world() -> World:
    w = World()
    w.person("modtager", address("home"))
    w.case("C1", "kontanthjaelp", "modtager")
    w.person("nabo", address("next door"))
    return w


def test_could_not_check_without_a_known_case_is_a_task_for_the_fallback_unit():
    w = world()
    event = w.atp("nabo", "income_reported", at=0, amount=10.0, income_type="wage",
                  period="2025-01")
    out = w.triage().decide(parse_event(w.lines()[0]), unavailable="sagssystemet svarede ikke")
    (decision,), (task,) = out.decisions, out.tasks
    assert (decision.outcome, decision.rule, decision.cases) == ("raised", "could-not-check", [])
    assert (task.case_id, task.unit, task.rule, task.event_ids, task.payment_hold) == (
        NO_CASE, "borgerservice", "could-not-check", [event], False)
    assert "kunne ikke kontrolleres" in task.title
    assert task.facts["person"] == f"{w.cpr('nabo')[:6]}-****"
    assert w.cpr("nabo") not in task.to_json().decode()
    TaskRecord.model_validate_json(task.to_json())  # the contract's shape


def test_an_unknown_event_type_about_nobody_known_is_a_task_for_the_fallback_unit():
    w = world()
    w.cpr_event("nabo", "cpr_event_A99", at=0, code="A99", unclassified_reason="unmapped")
    result = w.run()
    assert [(d.outcome, d.rule) for d in result.decisions] == [("raised", "unclassified")]
    assert [(t.case_id, t.unit, t.rule) for t in result.tasks] == [
        (NO_CASE, "borgerservice", "unclassified")]


def test_a_raised_event_with_a_case_goes_to_the_case_not_the_fallback():
    w = world()
    w.atp("modtager", "income_reported", at=0, amount=10.0, income_type="wage",
          period="2025-01")
    out = w.triage().decide(parse_event(w.lines()[0]), unavailable="timeout")
    assert [(t.case_id, t.unit) for t in out.tasks] == [("C1", "jobcenter")]


def test_a_suppressed_event_touching_no_case_makes_no_task():
    w = world()
    w.atp("nabo", "income_reported", at=0, amount=10.0, income_type="wage", period="2025-01")
    result = w.run()
    assert (result.decisions[0].outcome, result.tasks) == ("suppressed", [])


def test_a_redelivered_unowned_event_makes_no_second_task():
    w = world()
    w.cpr_event("nabo", "cpr_event_A99", at=0, code="A99")
    line = w.lines()[0]
    assert len(w.run(lines=[line, line]).tasks) == 1


def test_the_fallback_unit_is_configurable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRIAGE_FALLBACK_UNIT", "ydelseskontoret")
    w = world()
    w.cpr_event("nabo", "cpr_event_A99", at=0, code="A99")
    assert [t.unit for t in w.run().tasks] == ["ydelseskontoret"]
    assert fallback_unit_from_env({"TRIAGE_FALLBACK_UNIT": "  "}) == DEFAULT_FALLBACK_UNIT
