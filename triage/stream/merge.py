"""The router's merge of its input partitions by event time (Kafka Streams' timestamp
synchronisation, KIP-353/KIP-695).

A registry publishes to partitioned topics keyed by person or address; after an outage, at
start-up or during a catch-up, the partitions are drained at different speeds, so a household's
events fetched "as they come" can lie days apart in arrival order. The router therefore buffers
what it fetched per partition and always forwards the record with the **earliest**
``registered_at`` among the partition heads. It forwards only when every assigned partition has
a buffered record — except that it does not wait for a partition that is **caught up** (nothing
unread at the broker) longer than ``max_idle`` (``max.task.idle.ms``), nor for one that has
unread records but sent nothing for ``lag_wait`` (a fetch that does not come back must not stop
the service; the allowed lateness then takes over).

Records whose time cannot be read (they will be dead-lettered by the decider) go first: their
place in event time does not matter. A head registered more than ``max_jump`` after the record
behind it in its own partition is an outlier (a 2099 timestamp): it goes at once too, so it
cannot hold its partition back; the decider's event-time stage then judges it
(:mod:`triage.eventtime`). A sparse partition whose head is simply far ahead waits its turn.

The merge is pure: the caller feeds fetched records and says which partitions are caught up;
time comes from an injected monotonic clock, so tests drive it without Kafka.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import orjson

P = TypeVar("P", bound=Hashable)
NO_TIME = float("-inf")


@dataclass(slots=True)
class Fetched:
    """One input record as the router fetched it."""

    offset: int
    value: bytes
    kind: bytes | None = None
    """None for an event; ``heartbeat`` for a producer heartbeat (no event, only a promise that
    nothing registered before its time follows on this partition); ``oversized`` for the
    stand-in of a message over the size limit."""
    at: float = NO_TIME
    """registered_at (or the heartbeat's time) in POSIX seconds; NO_TIME when unreadable."""


def event_time(value: bytes, heartbeat: bool = False) -> float:
    """The record's event time, cheaply; NO_TIME when it cannot be read — also for a time
    without offset (read in the machine's zone, the order would depend on where the worker
    runs; such an event is invalid anyway) and for one that is no finite number (``"inf"``,
    ``"nan"``, ``"1e400"``: never earliest, they once stalled the merge and stopped the router)."""
    try:
        text = value.decode() if heartbeat else orjson.loads(value)["registered_at"]
        return posix_time(text)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError,
            orjson.JSONDecodeError, UnicodeDecodeError):
        return NO_TIME


def posix_time(text: str) -> float:
    """An RFC 3339 time with offset, or POSIX seconds, as finite POSIX seconds; ValueError for
    anything else."""
    if "T" in text:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("no offset")
        return moment.timestamp()
    seconds = float(text)
    if not math.isfinite(seconds):
        raise ValueError("not finite")
    return seconds


class TimestampMerge(Generic[P]):
    """Per-partition buffers of fetched records, popped in event-time order."""

    def __init__(self, *, max_idle: float = 0.05, lag_wait: float = 5.0,
                 max_jump: float = 7 * 86400.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_idle = max_idle
        self.lag_wait = lag_wait
        self.max_jump = max_jump
        self._clock = clock
        self._buffers: dict[P, deque[Fetched]] = {}
        self._waiting_since: dict[P, float] = {}
        """When the merge began waiting for an empty partition (cleared when it gets data)."""

    def assign(self, partitions: Iterable[P]) -> None:
        """The partitions the router now owns; buffers of others are dropped (their records
        were not committed, so their new owner reads them again)."""
        wanted = set(partitions)
        for gone in set(self._buffers) - wanted:
            del self._buffers[gone]
            self._waiting_since.pop(gone, None)
        for tp in wanted - set(self._buffers):
            self._buffers[tp] = deque()

    def clear(self, partitions: Iterable[P]) -> None:
        """Forget what was buffered for ``partitions`` (a rebalance revoked them)."""
        for tp in partitions:
            if tp in self._buffers:
                self._buffers[tp].clear()
                self._waiting_since.pop(tp, None)

    def add(self, tp: P, records: Iterable[Fetched]) -> None:
        buffer = self._buffers.get(tp)
        if buffer is None:
            return  # not (or no longer) ours
        for record in records:
            buffer.append(record)
        if buffer:
            self._waiting_since.pop(tp, None)

    def buffered(self, tp: P) -> int:
        buffer = self._buffers.get(tp)
        return len(buffer) if buffer is not None else 0

    def __len__(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def pop(self, caught_up: Callable[[P], bool], limit: int = 10_000) -> list[tuple[P, Fetched]]:
        """Records in event-time order, as far as it is safe to go without waiting; at most
        ``limit``. ``caught_up(tp)`` says whether a partition has nothing unread at the broker."""
        out: list[tuple[P, Fetched]] = []
        buffers = self._buffers
        now = self._clock()
        while len(out) < limit:
            heads = [(tp, b) for tp, b in buffers.items() if b]
            if not heads:
                break
            if any(self._must_wait(tp, caught_up, now) for tp, b in buffers.items() if not b):
                break
            tp = self._earliest(heads)
            out.append((tp, buffers[tp].popleft()))
        return out

    def _must_wait(self, tp: P, caught_up: Callable[[P], bool], now: float) -> bool:
        """Whether to wait for empty ``tp`` (others have records): until ``max_idle`` (caught
        up) or ``lag_wait`` (records unread at the broker) after the waiting began."""
        waited = now - self._waiting_since.setdefault(tp, now)
        return waited < (self.max_idle if caught_up(tp) else self.lag_wait)

    def _earliest(self, heads: list[tuple[P, deque[Fetched]]]) -> P:
        """The partition whose head goes next: an unreadable record; else an outlier (a head
        registered more than ``max_jump`` after the record behind it in its own partition, so
        it would hold that partition back); else the earliest head (ties: assignment order)."""
        best: P | None = None
        best_at = float("inf")
        for tp, buffer in heads:
            at = buffer[0].at
            if at == NO_TIME:
                return tp
            if len(buffer) > 1 and buffer[1].at != NO_TIME and at > buffer[1].at + self.max_jump:
                return tp
            if at < best_at:
                best, best_at = tp, at
        return best if best is not None else heads[0][0]  # no finite time: in assignment order
