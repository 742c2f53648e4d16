"""connectors.atp: canonical ATP events from diffing polls of the UDK § 8 register."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.atp import AtpPoller, diff_udk
from triage.models.events import BenefitEvent, IncomeReported, InvalidEvent, parse_event

FIXTURES = Path(__file__).parent / "fixtures" / "atp"
CPR = "0101801234"
OTHER = "0202821235"
POLLED = datetime(2024, 5, 1, 6, 0, tzinfo=timezone(timedelta(hours=2)))


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def validated(event: dict[str, Any]) -> Any:
    parsed = parse_event(orjson.dumps(event))
    assert not isinstance(parsed, InvalidEvent), parsed.error
    assert isinstance(parsed, BenefitEvent | IncomeReported)
    return parsed


def summary(events: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {(e["type"], e.get("benefit") or e.get("income_type"), e["amount"]) for e in events}


def test_diff_started_changed_ended_income() -> None:
    events = diff_udk(load("udk_before.json"), load("udk_after.json"), cpr=CPR,
                      polled_at=POLLED)
    assert summary(events) == {
        ("benefit_changed", "boligstoette", 1925.0),
        ("benefit_ended", "sygedagpenge", 9800.0),  # period_to set in the past
        ("benefit_started", "foertidspension", 19500.0),
        ("benefit_ended", "boerne_og_ungeydelse", 1236.0),  # disappeared from the register
        ("income_reported", "wage", 3100.0),
        ("income_reported", "other", 250.0),  # unknown income type → other
    }
    for event in events:
        parsed = validated(event)
        assert parsed.cpr == CPR
        assert event["registered_at"] == "2024-05-01T06:00:00+02:00"
    ended = next(e for e in events if e["benefit"] == "sygedagpenge")
    assert ended["period_to"] == "2024-04-12"


def test_same_state_emits_nothing() -> None:
    after = load("udk_after.json")
    assert diff_udk(after, copy.deepcopy(after), cpr=CPR, polled_at=POLLED) == []


def test_first_poll_and_restart_give_identical_ids() -> None:
    first = diff_udk(None, load("udk_before.json"), cpr=CPR, polled_at=POLLED)
    restart = diff_udk(None, load("udk_before.json"), cpr=CPR,
                       polled_at=POLLED + timedelta(hours=1))
    assert {e["type"] for e in first} == {"benefit_started", "income_reported"}
    assert [e["event_id"] for e in first] == [e["event_id"] for e in restart]
    assert len({e["event_id"] for e in first}) == len(first)
    for event in first:
        validated(event)


def test_future_end_is_a_change_and_passing_time_adds_nothing() -> None:
    before = load("udk_before.json")
    after = copy.deepcopy(before)
    after["benefits"][1]["period_to"] = "2024-05-31"
    [event] = diff_udk(before, after, cpr=CPR, polled_at=POLLED)
    assert event["type"] == "benefit_changed" and event["period_to"] == "2024-05-31"
    assert diff_udk(after, after, cpr=CPR, polled_at=POLLED + timedelta(days=60)) == []


def test_benefit_that_ended_and_aged_out_is_not_reported_again() -> None:
    before = load("udk_after.json")
    after = copy.deepcopy(before)
    del after["benefits"][1]  # sygedagpenge ended 2024-04-12, now out of the 3-month window
    assert diff_udk(before, after, cpr=CPR, polled_at=POLLED + timedelta(days=90)) == []


def test_corrected_income_is_reported_again() -> None:
    before = load("udk_after.json")
    after = copy.deepcopy(before)
    after["income"][1]["amount"] = 3300.0
    [event] = diff_udk(before, after, cpr=CPR, polled_at=POLLED)
    assert event["type"] == "income_reported" and event["amount"] == 3300.0
    validated(event)


def test_naive_polled_at_is_refused() -> None:
    with pytest.raises(ValueError):
        diff_udk(None, load("udk_before.json"), cpr=CPR, polled_at=datetime(2024, 5, 1))


class FakeUdk:
    """Stands in for the case system client's ``udk(cpr)``."""

    def __init__(self, records: dict[str, Any]) -> None:
        self.records = records
        self.failing: set[str] = set()
        self.calls: list[str] = []

    async def __call__(self, cpr: str) -> dict[str, Any] | None:
        self.calls.append(cpr)
        if cpr in self.failing:
            raise ConnectionError("case system unavailable")
        record = self.records.get(cpr)
        return copy.deepcopy(record) if record is not None else None


def other_record(**changes: Any) -> dict[str, Any]:
    record = {"cpr": OTHER, "benefits": [], "income": []}
    record.update(changes)
    return record


async def test_poller_emits_differences_and_repoll_gives_nothing() -> None:
    udk = FakeUdk({CPR: load("udk_before.json"), OTHER: other_record()})
    state: dict[str, Any] = {}
    poller = AtpPoller(udk, lambda: [CPR, OTHER, CPR], state, interval=60,
                       clock=lambda: POLLED)
    first = await poller.poll_once()
    assert {e["cpr"] for e in first} == {CPR}
    assert sorted(udk.calls) == sorted([CPR, OTHER])  # duplicates polled once
    assert await poller.poll_once() == []

    udk.records[CPR] = load("udk_after.json")
    changed = await poller.poll_once()
    assert len(changed) == 6
    for event in changed:
        validated(event)
    assert await poller.poll_once() == []
    assert poller.stats.failures == 0 and poller.stats.rounds == 4


async def test_fetch_failure_skips_the_person_and_is_counted() -> None:
    udk = FakeUdk({CPR: load("udk_before.json"),
                   OTHER: other_record(income=[{"amount": 900, "income_type": "wage",
                                                "period": "2024-04"}])})
    state: dict[str, Any] = {}
    poller = AtpPoller(udk, lambda: [CPR, OTHER], state, interval=60, clock=lambda: POLLED)
    udk.failing = {CPR}
    events = await poller.poll_once()
    assert {e["cpr"] for e in events} == {OTHER}
    assert poller.stats.failures == 1 and poller.stats.last_round_failures == 1
    assert CPR not in state  # no state, no invented event

    udk.failing = set()
    events = await poller.poll_once()
    assert {e["cpr"] for e in events} == {CPR}
    assert poller.stats.last_round_failures == 0


async def test_not_found_and_wrong_person_are_skipped() -> None:
    udk = FakeUdk({CPR: {**load("udk_before.json"), "cpr": OTHER}})
    state: dict[str, Any] = {OTHER: other_record()}
    poller = AtpPoller(udk, lambda: [CPR, OTHER], state, interval=60, clock=lambda: POLLED)
    assert await poller.poll_once() == []
    assert poller.stats.failures == 1  # a record for someone else
    assert poller.stats.not_found == 1  # None from fetch: no "ended" for everything
    assert state[OTHER] == other_record()


async def test_run_emits_then_stops_without_sleeping() -> None:
    udk = FakeUdk({CPR: load("udk_before.json")})
    state: dict[str, Any] = {}
    poller = AtpPoller(udk, lambda: [CPR], state, interval=timedelta(hours=1),
                       clock=lambda: POLLED)
    emitted: list[dict[str, Any]] = []
    stop = asyncio.Event()

    async def emit(event: dict[str, Any]) -> None:
        emitted.append(event)
        stop.set()

    await asyncio.wait_for(poller.run(emit, stop=stop), timeout=5)
    assert emitted and all(e["cpr"] == CPR for e in emitted)
    assert state[CPR]["cpr"] == CPR


async def test_run_keeps_state_when_emit_fails() -> None:
    udk = FakeUdk({CPR: load("udk_before.json")})
    state: dict[str, Any] = {}
    poller = AtpPoller(udk, lambda: [CPR], state, interval=0, clock=lambda: POLLED)

    async def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("broker down")

    with pytest.raises(RuntimeError):
        await poller.run(broken, rounds=1)
    assert CPR not in state  # the next run re-emits the same ids
    emitted: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        emitted.append(event)

    await poller.run(emit, rounds=1)
    assert emitted and CPR in state
