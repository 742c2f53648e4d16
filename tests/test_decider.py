"""The deciding stage without Kafka: journal records in offset order, each applied once, and a
silent rebuild that reaches exactly the state live processing reached."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.world import World, address
from triage.stream.decider import JournalGap, RoutedDecider

HOME = address("home")


def household() -> World:
    w = World()
    for name in ("a", "b"):
        w.person(name, HOME)
    w.case("C1", "kontanthjaelp", "a")
    w.move("a", address("new"), at=0)
    w.move("b", address("new"), at=1)
    w.atp("a", "income_reported", at=2, amount=5.0, income_type="wage", period="2025-02")
    return w


def test_records_apply_once_in_offset_order():
    w = household()
    decider = RoutedDecider(w.triage(), lateness=timedelta(0))
    lines = w.lines()
    assert decider.apply(0, lines[0], False).decisions == []  # waits for b
    assert decider.apply(0, lines[0], False) is None  # delivered again: skipped
    assert len(decider.apply(1, lines[1], False).decisions) == 2
    with pytest.raises(JournalGap):
        decider.apply(5, lines[2], False)


def test_silent_rebuild_reaches_the_state_live_processing_reached():
    w = household()
    lines = w.lines()
    live = RoutedDecider(w.triage(), lateness=timedelta(0))
    for offset, line in enumerate(lines[:2]):
        live.apply(offset, line, False)
    rebuilt = RoutedDecider(w.triage(), lateness=timedelta(0))
    assert rebuilt.rebuild((i, line, False) for i, line in enumerate(lines[:2])) == 2
    next_live = live.apply(2, lines[2], False)
    next_rebuilt = rebuilt.apply(2, lines[2], False)
    assert [d.to_json() for d in next_live.decisions] == [
        d.to_json() for d in next_rebuilt.decisions]
    assert next_rebuilt.decisions[0].outcome == "raised"


def test_tick_is_recorded_only_while_something_waits_and_closes_the_window():
    w = household()
    clock = [1000.0]
    decider = RoutedDecider(w.triage(), lateness=timedelta(0), wall=lambda: clock[0])
    assert decider.tick_value() is None  # nothing seen, nothing waits
    decider.apply(0, w.lines()[0], False)  # a moved; b has not yet
    clock[0] += 3600
    assert decider.tick_value() is not None
    clock[0] += 24 * 3600  # a day of quiet, by the wall clock
    tick = decider.tick_value()
    assert float(tick) > datetime.fromisoformat(w.events[0]["registered_at"]).timestamp()
    out = decider.apply(1, tick, True)
    assert [d.outcome for d in out.decisions] == ["raised"]  # b never came: a split
    assert decider.tick_value() is None
