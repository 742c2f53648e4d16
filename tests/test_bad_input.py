"""Bad input never crashes the run, is never dropped, and never echoes a CPR number;
redeliveries are decided once."""

from __future__ import annotations

import re
from datetime import timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.world import World, address
from triage.dev import topic_and_key
from triage.models.events import InvalidEvent, parse_event
from triage.pipeline import Pipeline

HOME = address("home")
CPR_IN_CLEAR = re.compile(r"\d{10}")


def world() -> World:
    w = World()
    w.person("modtager", HOME)
    w.case("C1", "kontanthjaelp", "modtager")
    return w


GOOD = {"event_id": "ok", "source": "atp", "type": "income_reported",
        "registered_at": "2025-03-01T10:00:00+01:00", "cpr": "0101901234", "amount": 10.0,
        "income_type": "wage", "period": "2025-02"}


@pytest.mark.parametrize(("line", "event_id", "error"), [
    (b"this is not json", None, "not JSON"),
    (b'{"event_id": "t1", "source": "cpr"', None, "not JSON"),
    (b"[1, 2, 3]", None, "not a JSON object"),
    (orjson.dumps({**GOOD, "event_id": "s1", "source": "skat"}), "s1", "source: unknown source"),
    (orjson.dumps({**GOOD, "event_id": "m1", "amount": None}), "m1", "amount:"),
    (orjson.dumps({**GOOD, "event_id": "w1", "amount": [1, 2]}), "w1", "amount:"),
    (orjson.dumps({k: v for k, v in GOOD.items() if k != "income_type"}), "ok", "income_type:"),
    (orjson.dumps({**GOOD, "event_id": "c1", "cpr": "3213901234"}), "c1", "cpr: not a valid CPR"),
    (orjson.dumps({**GOOD, "event_id": "tz", "registered_at": "2025-03-01T10:00:00"}), "tz",
     "registered_at: Input should have timezone info"),
    # a type that cannot be a dictionary key once crashed the parser (a poison message)
    (orjson.dumps({**GOOD, "event_id": "t1", "type": ["income_reported"]}), "t1",
     "type: Input should be a valid string"),
    (orjson.dumps({**GOOD, "event_id": "t2", "type": {"name": "x"}}), "t2",
     "type: Input should be a valid string"),
])
def test_invalid_lines_become_invalid_decisions_and_dead_letters(line, event_id, error):
    w = world()
    w.atp("modtager", "income_reported", at=0, amount=1.0, income_type="wage", period="2025-01")
    good = w.lines()[0]
    result = w.run(lines=[line, good])
    invalid, decided = result.decisions
    assert invalid.outcome == "invalid" and invalid.event_id == event_id
    assert error in (invalid.error or "")
    assert not CPR_IN_CLEAR.search(invalid.error or "")
    assert result.deadletters[0].raw == line
    assert decided.outcome == "raised"  # the run went on


def test_a_missing_cpr_number_is_named_without_its_value():
    line = orjson.dumps({**GOOD, "cpr": "0101901234X"})
    result = world().run(lines=[line])
    assert "cpr:" in result.decisions[0].error
    assert "0101901234" not in result.decisions[0].error


def test_redelivered_event_gets_no_second_decision_and_no_second_task():
    w = world()
    w.atp("modtager", "income_reported", at=0, amount=1.0, income_type="wage", period="2025-01")
    line = w.lines()[0]
    result = w.run(lines=[line, line, line])
    assert len(result.decisions) == 1 and len(result.tasks) == 1


def test_redelivered_invalid_event_is_decided_once_too():
    line = orjson.dumps({**GOOD, "event_id": "bad", "amount": "lots"})
    result = world().run(lines=[line, line])
    assert [d.outcome for d in result.decisions] == ["invalid"]


def test_redelivery_of_a_waiting_household_event_is_not_decided_twice():
    w = World()
    w.person("a", HOME)
    w.person("b", HOME)
    w.case("C1", "kontanthjaelp", "a")
    w.move("a", address("new"), at=0)
    w.move("b", address("new"), at=1)
    first, second = w.lines()
    result = w.run(lines=[first, first, second, first])
    assert sorted(d.event_id for d in result.decisions) == ["e1", "e2"]


def test_redelivery_long_after_the_original_in_a_sparse_stream_is_still_recognised():
    w = world()
    first = w.atp("modtager", "income_reported", at=0, amount=1.0, income_type="wage",
                  period="2025-01")
    w.atp("modtager", "income_reported", at=24 * 60, amount=2.0, income_type="wage",
          period="2025-02")  # sixty days later
    original, later = w.lines()
    result = w.run(lines=[original, later, original])
    assert [d.event_id for d in result.decisions] == [first, "e2"]


@pytest.mark.parametrize("line", [b'{"source": ["dar"]}', b'{"source": {"a": 1}}', b"[1]", b"x"])
def test_the_demo_producer_puts_an_unreadable_event_on_the_cpr_topic(line: bytes) -> None:
    """It must still be dead-lettered by the worker: never a crash of the producer, never
    dropped (a source that cannot be a dictionary key once crashed it)."""
    assert topic_and_key(line) == ("cpr.events", None)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
FIELDS = ("event_id", "source", "type", "registered_at", "cpr", "code", "to", "from",
          "address_id", "amount", "parents", "derived_marker")
SHARED = world()
CORE = Pipeline(SHARED.triage(), lateness=timedelta(0))


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4),
       source=st.sampled_from(["cpr", "dar", "atp", "skat"]),
       kind=st.sampled_from(["address_changed", "income_reported", "died", "x"]))
def test_no_document_of_any_shape_crashes_the_parser_or_the_core(changes, source, kind):
    """Any JSON object — a known field holding a value of any JSON type — is an event or an
    invalid one, and deciding it never raises (a poison message must not stop the worker).
    One pipeline decides every example: its state is whatever the examples before left."""
    line = orjson.dumps({**GOOD, "source": source, "type": kind, **changes})
    event = parse_event(line)
    assert isinstance(event, InvalidEvent) or hasattr(event, "registered_at")
    for decision in CORE.process(line).decisions:
        assert decision.outcome in ("suppressed", "raised", "invalid")
