"""Idempotency by event id *and* content (issue 9 point 4): a repeated id with the same content
is a redelivery, with other content a conflict that is raised, never dropped; an invalid line
does not use up its id. Core tests here; the same five lines through the real worker at the
end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from tests.world import World, address
from triage.cases import CaseIndex
from triage.core import Triage
from triage.dedup import conflict_id, content_digest
from triage.models.events import InvalidEvent, parse_event
from triage.register import Register
from triage.rules import DEFAULT_RULES, load_ruleset

HOME = address("home")


def world() -> World:
    w = World()
    w.person("modtager", HOME)
    w.case("C1", "kontanthjaelp", "modtager", unit="ydelseskontoret")
    return w


def five_lines(w: World) -> list[bytes]:
    """The issue's reproduction: a harmless name change, then an income event that should
    raise under the *same* id; an income line without registered_at (dead-lettered), then the
    corrected line under its id; then a redelivery of the conflicting income line."""
    w.cpr_event("modtager", "name_changed", at=0, code="A13", event_id="reused")
    w.atp("modtager", "income_reported", at=1, event_id="reused", amount=5200.0,
          income_type="wage", period="2025-02")
    w.atp("modtager", "income_reported", at=2, event_id="fixed", amount=800.0,
          income_type="wage", period="2025-03")
    broken = {k: v for k, v in w.events[-1].items() if k != "registered_at"}
    name, income, corrected = w.lines()
    return [name, income, orjson.dumps(broken), corrected, income]


def test_the_five_lines_give_every_event_a_decision_and_raise_the_income():
    w = world()
    lines = five_lines(w)
    result = w.run(lines=lines)
    income = parse_event(lines[1])
    assert not isinstance(income, InvalidEvent)
    derived = conflict_id("reused", content_digest(income))
    # (an invalid line is decided at once; valid ones in event-time order)
    assert sorted((d.event_id, d.outcome, d.rule) for d in result.decisions) == sorted([
        ("reused", "suppressed", "stamdata"),
        (derived, "raised", "event-id-conflict"),
        ("fixed", "invalid", "invalid"),
        ("fixed", "raised", "atp-indkomst-modtager"),
    ])  # the redelivered conflicting line (the fifth) is recognised: no second decision
    conflict = result.by_id(derived)
    assert [(v.case_id, v.outcome, v.unit) for v in conflict.cases] == [
        ("C1", "raised", "ydelseskontoret")]
    assert "allerede brugt af en anden hændelse" in conflict.reason
    assert sorted((t.rule, t.event_ids[0]) for t in result.tasks) == [
        ("atp-indkomst-modtager", "fixed"), ("event-id-conflict", derived)]
    assert [d.raw for d in result.deadletters] == [lines[2]]


def test_the_rule_names_exist():
    """Guard for the expectation above: the name change is suppressed by a shipped rule."""
    w = world()
    w.cpr_event("modtager", "name_changed", at=0, code="A13")
    assert w.run().decisions[0].rule == "stamdata"


def test_a_conflict_is_counted_and_decided_again_when_its_content_comes_back_different():
    w = world()
    for amount in (1.0, 2.0, 3.0):
        w.atp("modtager", "income_reported", at=amount, event_id="same", amount=amount,
              income_type="wage", period="2025-02")
    triage = w.triage()
    decisions = [d for line in w.lines() + w.lines() for d in triage.process(line).decisions]
    assert len(decisions) == 3  # three contents, each decided once; the repeats are nothing
    assert decisions[0].event_id == "same"
    assert len({d.event_id for d in decisions}) == 3
    assert [d.rule for d in decisions[1:]] == ["event-id-conflict"] * 2
    assert triage.conflicts == 2


def test_the_same_content_written_differently_is_a_redelivery():
    w = world()
    w.atp("modtager", "income_reported", at=0, event_id="x", amount=900.0, income_type="wage",
          period="2025-02")
    original = w.events[0]
    variants = [
        orjson.dumps(dict(reversed(list(original.items())))),       # other key order
        orjson.dumps(original, option=orjson.OPT_INDENT_2),          # other whitespace
        orjson.dumps({**original, "transport_id": "kafka-7"}),       # an unknown extra field
        orjson.dumps({**original, "amount": 900}),                   # 900 for 900.0
    ]
    result = w.run(lines=[orjson.dumps(original), *variants])
    assert [d.event_id for d in result.decisions] == ["x"]
    assert len(result.tasks) == 1


def test_a_conflict_touching_no_case_goes_to_the_fallback_unit():
    w = world()
    w.person("nabo", address("next door"))
    w.cpr_event("nabo", "name_changed", at=0, event_id="n1")
    w.cpr_event("nabo", "guardianship_changed", at=1, event_id="n1")
    result = w.run()
    first, conflict = result.decisions
    assert (first.outcome, conflict.outcome, conflict.rule, conflict.cases) == (
        "suppressed", "raised", "event-id-conflict", [])
    assert [(t.case_id, t.unit, t.rule, t.event_ids) for t in result.tasks] == [
        ("no-case", "borgerservice", "event-id-conflict", [conflict.event_id])]


def test_an_identical_invalid_line_is_decided_once_and_another_invalid_one_again():
    w = world()
    bad = {"event_id": "b", "source": "atp", "type": "income_reported", "cpr": w.cpr("modtager")}
    first, other = orjson.dumps(bad), orjson.dumps({**bad, "amount": "lots"})
    result = w.run(lines=[first, first, other, other])
    assert [(d.event_id, d.outcome) for d in result.decisions] == [
        ("b", "invalid"), ("b", "invalid")]
    assert [d.raw for d in result.deadletters] == [first, other]


def test_a_flood_of_conflicts_gives_every_one_a_decision():
    """The issue's flood: 2,450 reused ids produced no decision, no dead letter, no metric."""
    w = world()
    for i in range(2450):
        w.cpr_event("modtager", "name_changed", at=i / 100, event_id=f"id-{i}")
    for i in range(2450):
        w.atp("modtager", "income_reported", at=30 + i / 100, event_id=f"id-{i}",
              amount=100.0 + i, income_type="wage", period="2025-02")
    triage = w.triage()
    raised = [d for line in w.lines() for d in triage.process(line).decisions
              if d.rule == "event-id-conflict"]
    assert len(raised) == 2450 == triage.conflicts
    assert {d.outcome for d in raised} == {"raised"}


def test_remembered_ids_stay_bounded_in_a_long_stream():
    w = world()
    for i in range(6000):  # one event every five minutes: 20 days, far past the horizon
        w.event("dar", "address_renamed", at=i / 12, event_id=f"d{i}",
                address_id="a", before=address("x"), after=address("x"))
    persons, cases = w.records()
    triage = Triage(CaseIndex(Register(persons), cases), load_ruleset(DEFAULT_RULES),
                    dedup_keep=1000)
    for line in w.lines():
        triage.process(line)
    # only the ids within the 7-day horizon remain (beyond the 1,000 kept in any case)
    assert len(triage._seen) <= 7 * 24 * 12 + 1 < 6000


# --- the same five lines through the real worker -----------------------------------------


@pytest.mark.kafka
def test_the_five_lines_through_the_worker_give_every_event_a_decision(tmp_path: Path):
    from tests.test_worker import consume, produce, write_reference
    from triage.dev import create_topics, start_worker, stop_process, wait_ready
    from triage.stream.broker import EmbeddedBroker, free_port

    w = world()
    lines = five_lines(w)
    write_reference(w, tmp_path)
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker, partitions=3)
        port = free_port()
        worker = start_worker(broker.bootstrap, tmp_path, port, 3)
        try:
            wait_ready(f"http://127.0.0.1:{port}/ready", worker)
            asyncio.run(produce(broker.bootstrap, lines))
            records = asyncio.run(consume(broker.bootstrap, "triage.decisions",
                                          lambda r: len(r) >= 4))
            tasks = asyncio.run(consume(broker.bootstrap, "triage.tasks",
                                        lambda r: len(r) >= 2))
        finally:
            stop_process(worker)
    decisions = [orjson.loads(v) for _, v, _ in records]
    by_id = {d["event_id"]: d for d in decisions if d["outcome"] != "invalid"}
    # The name change and the income travel on different topics: either may reach the journal
    # first and keep the id; the other is decided under the derived id. Both are decided, and
    # the income is raised either way.
    reused = [d for i, d in by_id.items() if i.startswith("reused")]
    assert len(reused) == 2 and {d["rule"] for d in reused} & {
        "event-id-conflict", "atp-indkomst-modtager"}
    assert any(d["outcome"] == "raised" for d in reused)
    assert by_id["fixed"]["rule"] == "atp-indkomst-modtager"
    assert [d["event_id"] for d in decisions if d["outcome"] == "invalid"] == ["fixed"]
    assert len(decisions) == 4
    assert {orjson.loads(v)["rule"] for _, v, _ in tasks} >= {"atp-indkomst-modtager"}
