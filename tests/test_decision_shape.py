"""The exact shape of the built-in decisions (CONTRACT.md "Decisions"): an invalid line and a
failed lookup. Consumers read every field; a mutant that blanks one must fail here."""

from __future__ import annotations

import orjson

from tests.world import FIXED_CLOCK, World, address
from triage.models.events import parse_event


def world() -> World:
    w = World()
    w.person("modtager", address("home"))
    w.case("C1", "kontanthjaelp", "modtager")
    return w


def test_an_invalid_line_gets_a_complete_invalid_decision() -> None:
    w = world()
    triage = w.triage()
    out = triage.process(b'{"event_id": "x1", "source": "skat"}')
    decision = orjson.loads(out.decisions[0].to_json())
    error = decision.pop("error")
    assert error and "source" in error
    assert decision == {
        "event_id": "x1", "outcome": "invalid", "score": 0.0, "rule": "invalid",
        "reason": "Hændelsen er ugyldig og er lagt i dead-letter.", "cases": [],
        "correlation_id": None, "ruleset": triage.ruleset.version,
        "decided_at": FIXED_CLOCK.isoformat(),
        # additive fields (docs/dashboard.md): null for a line that is not an event
        "event_source": None, "event_type": None, "registered_at": None}
    assert out.kinds == ["invalid"] and len(out.deadletters) == 1 and out.tasks == []


def test_a_failed_lookup_raises_with_score_one_for_the_case_and_for_nobody() -> None:
    w = world()
    w.atp("modtager", "income_reported", at=0, amount=1.0, income_type="wage", period="2025-01")
    w.person("fremmed", address("elsewhere"))
    w.atp("fremmed", "income_reported", at=1, amount=1.0, income_type="wage", period="2025-01")
    triage = w.triage()
    lines = w.lines()
    known = triage.decide(parse_event(lines[0]), unavailable="timeout").decisions[0]
    assert (known.outcome, known.rule, known.score) == ("raised", "could-not-check", 1.0)
    assert [(v.case_id, v.rule, v.score, v.outcome) for v in known.cases] == [
        ("C1", "could-not-check", 1.0, "raised")]
    nobody = triage.decide(parse_event(lines[1]), unavailable="timeout").decisions[0]
    assert (nobody.outcome, nobody.rule, nobody.score, nobody.cases) == (
        "raised", "could-not-check", 1.0, [])
