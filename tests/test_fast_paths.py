"""The lean per-event path (issue 13): an event that touches no case is decided by the core's
named fast path, and decisions are encoded by orjson alone — with exactly the output the general
path gives."""

from __future__ import annotations

from typing import Any

import orjson

from tests.world import FIXED_CLOCK, World, address
from triage.models.outputs import CaseVerdict, Decision


def dict_encoding(decision: Decision) -> bytes:
    """The wire form spelled out field by field (what ``to_json`` did before issue 13)."""
    data: dict[str, Any] = {
        "event_id": decision.event_id, "outcome": decision.outcome, "score": decision.score,
        "rule": decision.rule, "reason": decision.reason, "cases": decision.cases,
        "correlation_id": decision.correlation_id, "ruleset": decision.ruleset,
        "decided_at": decision.decided_at, "event_source": decision.event_source,
        "event_type": decision.event_type, "registered_at": decision.registered_at}
    if decision.error is not None:
        data["error"] = decision.error
    return orjson.dumps(data)


def test_to_json_is_the_field_by_field_wire_form_with_and_without_error() -> None:
    verdict = CaseVerdict("C1", "raised", 0.9, "r", "why", "jobcenter", "t", True, "hm-1",
                          "task-1", {"event.type": "died", "n": 1.5})
    plain = Decision("e1", "raised", 0.9, "r", "why", [verdict], "hm-1", "v@1", "now",
                     "cpr", "died", "2025-01-01T00:00:00+00:00")
    invalid = Decision(None, "invalid", 0.0, "invalid", "bad", [], None, "v@1", "now",
                       error='source: missing "x"')
    for decision in (plain, invalid):
        assert decision.to_json() == dict_encoding(decision)
    assert b'"error"' not in plain.to_json()
    assert orjson.loads(invalid.to_json())["error"] == 'source: missing "x"'


def world() -> World:
    w = World()
    w.person("modtager", address("home"))
    w.case("C1", "kontanthjaelp", "modtager")
    w.person("fremmed", address("elsewhere"))
    return w


def test_an_event_touching_no_case_is_suppressed_by_the_fast_path() -> None:
    w = world()
    w.atp("fremmed", "income_reported", at=0, amount=1.0, income_type="wage", period="2025-01")
    triage = w.triage()
    calls: list[str] = []
    fast = triage._settle_caseless

    def spy(event: Any, fallback: Any, out: Any) -> None:
        calls.append(event.event_id)
        fast(event, fallback, out)

    triage._settle_caseless = spy  # type: ignore[method-assign]
    out = triage.process(w.lines()[0])
    assert calls == ["e1"]
    assert orjson.loads(out.decisions[0].to_json()) == {
        "event_id": "e1", "outcome": "suppressed", "score": 0.0, "rule": "no-affected-case",
        "reason": "Hændelsen berører ingen aktiv sag.", "cases": [], "correlation_id": None,
        "ruleset": triage.ruleset.version, "decided_at": FIXED_CLOCK.isoformat(),
        "event_source": "atp", "event_type": "income_reported",
        "registered_at": w.events[0]["registered_at"]}
    assert out.kinds == ["atp/income_reported"] and out.tasks == []


def test_an_unknown_type_touching_no_case_is_raised_with_a_task_for_the_fallback_unit() -> None:
    w = world()
    w.event("cpr", "something_new", at=0, cpr=w.cpr("fremmed"))
    out = w.triage().process(w.lines()[0])
    (decision,) = out.decisions
    assert (decision.outcome, decision.rule, decision.cases) == ("raised", "unclassified", [])
    (task,) = out.tasks
    assert task.rule == "unclassified" and task.event_ids == ["e1"]
    assert task.facts["person"] == w.cpr("fremmed")[:6] + "-****"


def test_an_event_touching_a_case_takes_the_general_path() -> None:
    w = world()
    w.atp("modtager", "income_reported", at=0, amount=1.0, income_type="wage", period="2025-01")
    triage = w.triage()
    triage._settle_caseless = None  # type: ignore[assignment,method-assign]
    (decision,) = triage.process(w.lines()[0]).decisions
    assert [v.case_id for v in decision.cases] == ["C1"]
