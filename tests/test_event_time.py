"""Event time, not arrival time (DOMAIN.md "Event time and arrival order").

Every decision must be the one the event gets when all events are taken in ``registered_at``
order, whatever the interleaving across keys, as long as no event arrives more than the allowed
lateness behind one registered after it; an event beyond that is raised where it touches a case,
never suppressed; and one implausible timestamp moves nobody's clock.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.world import World, address
from triage.core import Outputs, Triage
from triage.eventtime import EventTimeOrder
from triage.models.events import InvalidEvent, parse_event
from triage.pipeline import Pipeline
from triage.rules import DEFAULT_RULES, load_ruleset
from triage.snapshot import load_reference

HOME = address("Skovvej 13")
NEW = address("Nørregade 4")
H = 3600.0


# --- the stage on its own ---------------------------------------------------------------------


def order(lateness_h: float = 1, jump_h: float = 24 * 7) -> EventTimeOrder[str]:
    return EventTimeOrder(timedelta(hours=lateness_h), timedelta(hours=jump_h))


def names(released: list) -> list[tuple[str, str]]:
    return [(r.item, r.kind) for r in released]


def test_events_are_released_in_event_time_once_the_lateness_has_passed():
    o = order()
    assert names(o.push("b", 2 * H, "b")) == []
    assert names(o.push("a", 1.5 * H, "a")) == []  # no clock yet: a and b confirm each other
    assert o.clock == 2 * H
    assert names(o.push("c", 2.6 * H, "c")) == [("a", "timely")]
    assert names(o.push("d", 4 * H, "d")) == [("b", "timely"), ("c", "timely")]
    assert o.frontier == 3 * H
    assert names(o.drain()) == [("d", "timely")]


def test_ties_are_broken_by_arrival():
    o = order(lateness_h=0)
    o.push("first", H, "1")
    released = o.push("second", H, "2") + o.push("third", H, "3") + o.drain()
    assert [r.item for r in released] == ["first", "second", "third"]


def test_exactly_the_lateness_behind_is_in_time_one_second_more_is_late():
    o = order(lateness_h=1)
    o.push("x", 10 * H, "x")
    o.push("y", 10 * H, "y")
    assert names(o.push("edge", 9 * H, "edge")) == [("edge", "timely")]  # released at once
    assert names(o.push("late", 9 * H - 1, "late")) == [("late", "late")]


def test_a_redelivery_goes_to_the_core_whatever_its_time():
    o = EventTimeOrder(timedelta(hours=1), timedelta(days=7), known=lambda i: i == "old")
    o.push("x", 10 * H, "x")
    o.push("y", 10 * H, "y")
    assert names(o.push("copy of old", 0.0, "old")) == [("copy of old", "timely")]
    # a copy of an event still held waits behind it
    o.push("z", 10.5 * H, "z")
    assert names(o.push("z again", 0.0, "z")) == []
    assert [r.item for r in o.drain()] == ["x", "y", "z", "z again"]


def test_an_outlier_at_the_head_does_not_set_the_clock():
    o = order()
    year_2099 = datetime(2099, 1, 1, tzinfo=UTC).timestamp()
    assert o.push("2099", year_2099, "far") == []
    assert o.push("a", 100 * H, "a") == []
    released = o.push("b", 100.5 * H, "b")
    assert ("2099", "out-of-range") in names(released)
    assert o.clock == 100.5 * H


def test_an_outlier_in_the_stream_is_rejected_by_the_next_event_in_range():
    o = order()
    o.push("a", 100 * H, "a")
    o.push("b", 100.5 * H, "b")
    assert o.push("typo", 100 * H + 400 * 24 * H, "typo") == []
    assert ("typo", "out-of-range") in names(o.push("c", 101 * H, "c"))
    assert o.clock == 101 * H


def test_a_real_gap_longer_than_the_bound_is_confirmed_by_the_next_event():
    o = order()
    o.push("a", 100 * H, "a")
    o.push("b", 100.5 * H, "b")
    later = 100 * H + 30 * 24 * H
    assert o.push("after the gap", later, "g1") == []
    released = o.push("and again", later + 60, "g2")
    assert o.clock == later + 60
    assert all(kind == "timely" for _, kind in names(released))
    assert {r.item for r in o.drain()} | {r.item for r in released} == {
        "a", "b", "after the gap", "and again"}


def test_a_tick_moves_the_clock_by_at_most_the_bound():
    o = order(lateness_h=1, jump_h=48)
    o.push("a", 10 * H, "a")
    o.push("b", 10 * H, "b")
    o.tick(10_000 * H)
    assert o.clock == 58 * H


def test_a_stream_too_short_to_confirm_a_clock_is_decided_at_the_end():
    o = order()
    assert o.push("only", 5 * H, "only") == []
    assert names(o.drain()) == [("only", "timely")]


# --- the issue's reproduction: a child's move arriving before its parents' ------------------------


def family(world: World) -> list[str]:
    """The four lines of the issue: an unrelated event, then a child's move registered on
    5 January, then its two parents' moves registered 35 hours earlier (same address, same
    move date)."""
    for name in ("far", "mor", "barn"):
        world.person(name, HOME)
    world.person("nabo", address("elsewhere"))
    world.case("KH-2024-00285", "kontanthjaelp", "far", spouse="mor", children=("barn",))
    unrelated = world.atp("nabo", "income_reported", at=-0.58, amount=2405, income_type="wage",
                          period="2024-12")
    far = world.move("far", NEW, at=0.0, move_date="2024-12-31")
    mor = world.move("mor", NEW, at=52 / 3600, move_date="2024-12-31")
    barn = world.move("barn", NEW, at=35 + 7 / 60, move_date="2024-12-31")
    return [unrelated, barn, far, mor]  # the arrival order of the issue


def test_the_four_lines_get_their_event_time_decisions_in_every_arrival_order():
    w = World()
    ids = family(w)
    expected = w.run(lateness=timedelta(0))  # events were created in registered_at order
    assert expected.outcome(ids[1]) == "raised"  # the child moved after the window: a split
    assert expected.verdict(ids[2], "KH-2024-00285").rule == "husstand-splittet"
    assert expected.verdict(ids[1], "KH-2024-00285").rule == "flytning-sag-ikke-samlet"
    for arrival in itertools.permutations(range(4)):
        got = w.run(list(arrival), lateness=timedelta(hours=36))
        for eid in ids:
            assert got.by_id(eid).to_json() == expected.by_id(eid).to_json(), arrival


def test_beyond_the_lateness_the_four_lines_are_raised_never_suppressed():
    w = World()
    ids = family(w)
    for arrival in itertools.permutations(range(4)):
        got = w.run(list(arrival), lateness=timedelta(hours=1))
        for eid in ids[1:]:
            assert got.outcome(eid) == "raised", arrival
        rules = {v.rule for eid in ids[1:] for v in got.by_id(eid).cases}
        assert "husstand-flyttet-samlet" not in rules


def test_a_late_event_is_raised_with_its_own_rule_and_is_not_folded_into_a_group():
    w = World()
    ids = family(w)
    in_order = w.run([0, 1, 2, 3], lateness=timedelta(0))  # parents first, then the child
    assert in_order.verdict(ids[2], "KH-2024-00285").correlation_id is not None
    late = w.run([0, 3, 1, 2], lateness=timedelta(hours=1))  # the parents arrive 35 h late
    verdict = late.verdict(ids[2], "KH-2024-00285")
    assert verdict.rule == "arrived-too-late"
    assert "for sent" in verdict.reason
    assert verdict.correlation_id is None
    assert {t.rule for t in late.tasks_for("KH-2024-00285")} >= {"arrived-too-late"}


# --- a generated municipality, split into partitions and interleaved ---------------------------


@pytest.fixture(scope="module")
def municipality(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """A simulated municipality's valid events in registered_at order (ties: file order)."""
    from triage.simulate import simulate

    out = tmp_path_factory.mktemp("municipality")
    simulate(out, seed=7, events=2500)
    valid = []
    for line in (out / "events.jsonl").read_bytes().splitlines():
        event = parse_event(line) if line.strip() else None
        if event is not None and not isinstance(event, InvalidEvent):
            valid.append((event.registered_at.timestamp(), line))
    valid.sort(key=lambda pair: pair[0])
    return out, [line for _, line in valid]


def decide(corpus: Path, lines: list[bytes], lateness: timedelta) -> tuple[Outputs, Pipeline]:
    core = Triage(load_reference(corpus / "persons.jsonl", corpus / "cases.jsonl"),
                  load_ruleset(DEFAULT_RULES), clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    pipeline = Pipeline(core, lateness=lateness, max_jump=timedelta(days=30))
    out = Outputs()
    for chunk in pipeline.run(lines):
        out.extend(chunk)
    return out, pipeline


def by_event(out: Outputs) -> dict[str | None, bytes]:
    return {d.event_id: d.to_json() for d in out.decisions}


def partition_key(line: bytes) -> str:
    event = orjson.loads(line)
    return event["address_id"] if event["source"] == "dar" else event["cpr"]


def interleave(lines: list[bytes], partitions: int, bound: float, rng: random.Random,
               ) -> list[bytes]:
    """Split ``lines`` (in event-time order) into partitions by key, as the registries publish
    them, and interleave the partitions at random so that no event arrives more than ``bound``
    seconds behind one registered after it."""
    queues: list[list[tuple[float, bytes]]] = [[] for _ in range(partitions)]
    for line in lines:
        at = datetime.fromisoformat(orjson.loads(line)["registered_at"]).timestamp()
        queues[hash(partition_key(line)) % partitions].append((at, line))
    heads = [0] * partitions
    arrival = []
    while True:
        live = [p for p in range(partitions) if heads[p] < len(queues[p])]
        if not live:
            return arrival
        lowest = min(queues[p][heads[p]][0] for p in live)
        choices = [p for p in live if queues[p][heads[p]][0] <= lowest + bound]
        p = rng.choice(choices)
        arrival.append(queues[p][heads[p]][1])
        heads[p] += 1


def lateness_of(arrival: list[bytes]) -> dict[str, float]:
    """For each event id, how far behind the latest earlier-arrived registration it arrived."""
    latest = float("-inf")
    behind = {}
    for line in arrival:
        event = orjson.loads(line)
        at = datetime.fromisoformat(event["registered_at"]).timestamp()
        behind.setdefault(event["event_id"], max(0.0, latest - at))
        latest = max(latest, at)
    return behind


@settings(max_examples=12, deadline=None)
@given(partitions=st.integers(1, 5), bound_h=st.sampled_from([0.0, 0.5, 6.0, 30.0]),
       seed=st.integers(0, 2**32 - 1))
def test_any_interleaving_within_the_lateness_decides_as_registered_at_order(
        municipality, partitions, bound_h, seed):
    corpus, lines = municipality
    expected, _ = decide(corpus, lines, timedelta(0))
    arrival = interleave(lines, partitions, bound_h * H, random.Random(seed))
    got, _ = decide(corpus, arrival, timedelta(hours=bound_h))
    assert by_event(got) == by_event(expected)
    assert got.late == 0


@settings(max_examples=8, deadline=None)
@given(partitions=st.integers(2, 5), seed=st.integers(0, 2**32 - 1))
def test_events_beyond_the_lateness_are_raised_never_suppressed(municipality, partitions, seed):
    corpus, lines = municipality
    arrival = interleave(lines, partitions, 48 * H, random.Random(seed))
    lateness = timedelta(hours=2)
    got, _ = decide(corpus, arrival, lateness)
    behind = lateness_of(arrival)
    beyond = {eid for eid, seconds in behind.items() if seconds > lateness.total_seconds()}
    assert beyond, "the interleaving should put some events beyond the lateness"
    assert got.late == len(beyond)
    for decision in got.decisions:
        if decision.event_id in beyond and decision.cases:
            assert decision.outcome == "raised"
            assert {v.rule for v in decision.cases} == {"arrived-too-late"}


# --- one implausible timestamp -----------------------------------------------------------------


@pytest.mark.parametrize("registered_at", ["2099-06-01T12:00:00+01:00",
                                           "9999-12-31T23:59:59-14:00"])
@pytest.mark.parametrize("where", ["head", "middle", "tail"])
def test_one_event_far_in_the_future_changes_no_other_decision(municipality, registered_at,
                                                               where):
    corpus, lines = municipality
    expected, _ = decide(corpus, lines, timedelta(hours=1))
    bogus = orjson.loads(next(line for line in lines if b'"address_changed"' in line))
    bogus.update(event_id="bogus-future", registered_at=registered_at)
    position = {"head": 0, "middle": len(lines) // 2, "tail": len(lines)}[where]
    with_bogus = [*lines[:position], orjson.dumps(bogus), *lines[position:]]
    got, pipeline = decide(corpus, with_bogus, timedelta(hours=1))
    decisions = by_event(got)
    rejected = orjson.loads(decisions.pop("bogus-future"))
    assert decisions == by_event(expected)
    assert rejected["outcome"] == "raised"
    assert rejected["rule"] == "registered-at-out-of-range"
    assert got.out_of_range == 1
    assert pipeline.clock is not None
    assert pipeline.clock < datetime(2030, 1, 1, tzinfo=UTC).timestamp()
