"""The router's merge of input partitions in event time, without Kafka: a fake monotonic clock
and partitions named by strings."""

from __future__ import annotations

from collections import deque

import orjson

from triage.stream.decider import tick_time
from triage.stream.merge import NO_TIME, Fetched, TimestampMerge, event_time

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def merge(clock: Clock, *partitions: str) -> TimestampMerge[str]:
    m: TimestampMerge[str] = TimestampMerge(max_idle=0.05, lag_wait=5.0, max_jump=7 * DAY,
                                            clock=clock)
    m.assign(partitions)
    return m


def records(*times: float) -> list[Fetched]:
    return [Fetched(i, b"x", at=t) for i, t in enumerate(times)]


def popped(m: TimestampMerge[str], caught_up: bool | dict[str, bool] = False,
           ) -> list[tuple[str, float]]:
    def is_caught(tp: str) -> bool:
        return caught_up if isinstance(caught_up, bool) else caught_up.get(tp, False)

    return [(tp, r.at) for tp, r in m.pop(is_caught)]


def test_the_earliest_head_goes_first_across_partitions():
    clock = Clock()
    m = merge(clock, "a", "b")
    m.add("a", records(1, 5, 6))
    m.add("b", records(2, 3, 7))
    # once a runs dry (records unread at the broker), the merge waits for it
    assert popped(m) == [("a", 1), ("b", 2), ("b", 3), ("a", 5), ("a", 6)]
    m.add("a", records(8))
    assert popped(m) == [("b", 7)]


def test_it_waits_for_a_partition_with_unread_records_but_only_for_a_while():
    clock = Clock()
    m = merge(clock, "a", "b")
    m.add("a", records(10, 11))
    assert popped(m, caught_up=False) == []  # b has records at the broker: wait
    clock.now = 4.9
    assert popped(m, caught_up=False) == []
    clock.now = 5.0
    assert popped(m, caught_up=False) == [("a", 10), ("a", 11)]  # the lateness takes over


def test_it_waits_for_a_caught_up_partition_only_the_idle_time():
    clock = Clock()
    m = merge(clock, "a", "b")
    m.add("a", records(10))
    assert popped(m, caught_up={"b": True}) == []
    clock.now = 0.05
    assert popped(m, caught_up={"b": True}) == [("a", 10)]


def test_a_partition_that_gets_records_is_waited_for_afresh():
    clock = Clock()
    m = merge(clock, "a", "b")
    m.add("a", records(1))
    clock.now = 10.0
    assert popped(m) == []  # the wait for b begins now, not at assignment
    m.add("b", records(0.5))
    assert popped(m) == [("b", 0.5)]  # b ran dry again, with records unread: wait again
    clock.now = 14.9
    assert popped(m) == []
    clock.now = 15.0
    assert popped(m) == [("a", 1)]


def test_unreadable_records_go_first():
    clock = Clock()
    m = merge(clock, "a", "b")
    m.add("a", records(5))
    m.add("b", records(NO_TIME, 3))
    assert popped(m)[:2] == [("b", NO_TIME), ("b", 3)]


def test_an_outlier_does_not_hold_its_partition_back_but_a_sparse_partition_waits_its_turn():
    clock = Clock()
    m = merge(clock, "a", "b", "sparse")
    m.add("a", records(1 * DAY, 2 * DAY, 3 * DAY))
    m.add("b", records(9999 * DAY, 1.5 * DAY, 2.5 * DAY, 3.5 * DAY))  # a 9999 timestamp
    m.add("sparse", records(40 * DAY, 80 * DAY))  # genuinely later: it waits
    out = popped(m, caught_up=True)
    assert out[0] == ("b", 9999 * DAY)
    assert out[1:6] == [("a", 1 * DAY), ("b", 1.5 * DAY), ("a", 2 * DAY), ("b", 2.5 * DAY),
                        ("a", 3 * DAY)]
    assert ("sparse", 40 * DAY) not in out[:6]


def test_revoked_partitions_are_forgotten():
    clock = Clock()
    m = merge(clock, "a", "b")
    m.add("a", records(1))
    m.add("b", records(2))
    m.clear(["a"])
    assert m.buffered("a") == 0
    m.assign(["b"])
    assert popped(m) == [("b", 2)]
    m.add("a", records(3))  # no longer ours: ignored
    assert len(m) == 0


def test_event_time_of_events_and_heartbeats():
    assert event_time(b'{"registered_at": "2025-01-01T00:00:00+01:00"}') == 1735686000.0
    assert event_time(b"2025-01-01T00:00:00+01:00", heartbeat=True) == 1735686000.0
    assert event_time(b"not json") == NO_TIME
    assert event_time(b'{"registered_at": 17}') == NO_TIME
    assert event_time(b'{"registered_at": "9999-12-31T23:59:59-14:00"}') > 2.5e11


def test_a_time_that_is_no_finite_instant_is_unreadable():
    """Read as a number these were infinite or NaN: never the earliest head, so the merge
    stalled and then stopped the router on its own assertion (a poison message); a time
    without offset would be read in the machine's zone."""
    for text in ("inf", "-inf", "Infinity", "nan", "NaN", "1e400", "2025-01-01T00:00:00"):
        assert event_time(orjson.dumps({"registered_at": text})) == NO_TIME, text
        assert event_time(text.encode(), heartbeat=True) == NO_TIME, text
        assert tick_time(text.encode()) is None, text
    assert tick_time(b"1735686000.5") == 1735686000.5
    assert tick_time(b"2025-01-01T00:00:00+01:00") == 1735686000.0


def test_heads_without_a_finite_time_still_go():
    clock = Clock()
    m = merge(clock, "a", "b")
    m.add("a", records(float("inf")))
    m.add("b", records(float("nan")))
    first = popped(m, caught_up=True)  # then the emptied partition is waited for a while
    clock.now += 1.0
    assert sorted(tp for tp, _ in first + popped(m, caught_up=True)) == ["a", "b"]


def test_pop_never_returns_more_than_the_limit():
    clock = Clock()
    m = merge(clock, "a")
    m.add("a", records(*range(50)))
    assert len(m.pop(lambda _: True, limit=20)) == 20
    assert m.buffered("a") == 30
    assert isinstance(m._buffers["a"], deque)
