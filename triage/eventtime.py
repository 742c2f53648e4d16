"""Event time in front of the core: a reorder buffer with an allowed lateness and a bounded clock.

DOMAIN.md "Event time and arrival order": every decision must be the one the event gets when all
events are taken in ``registered_at`` order (ties by arrival), whatever the interleaving across
keys, as long as no event arrives more than the **allowed lateness** behind an event registered
after it. :class:`EventTimeOrder` is that rule as a stage ahead of the core:

* **The clock** is the latest event time the stage has seen: the largest ``registered_at`` of the
  events it accepted, or a *tick* (the worker's wall-clock estimate when it is caught up, or a
  producer's heartbeat).
* **The buffer.** An event is held until the clock has passed its ``registered_at`` by the
  lateness; then it is released, in ``(registered_at, arrival)`` order. Anything that arrives
  afterwards within the lateness still sorts after what was released, so the core sees event-time
  order. The *frontier* — clock minus lateness — is how far the core's own clock may go: windows
  close by it, never by an event still in the buffer.
* **Late events.** An event registered more than the lateness before the clock when it arrives can
  no longer be put in its place. It is released at once as *late*: the core raises it for every
  case it touches with the rule ``arrived-too-late``, never suppresses it, and never folds it
  into a household move or another group.
* **A bounded clock.** One event must not move everyone's clock: an event registered more than
  ``max_jump`` after the clock (or any event while there is no clock yet) moves it only when a
  second event within ``max_jump`` of it confirms it. The first event that confirms the old time
  instead shows the outlier for what it is: it is released as *out of range*, raised by the core
  with the rule ``registered-at-out-of-range``, and neither moves the clock nor changes the
  register. At the start of a stream the first two events within ``max_jump`` of each other
  establish the clock. A producer heartbeat may move the clock by at most ``max_jump`` too.

Redeliveries are not judged by time at all: an event id the stage or the core already knows goes
straight to the core's deduplication. Everything here is a function of the input in arrival
order — no wall clock — so a replay of the same input always releases the same events in the same
order, and a worker rebuilding from its journal rebuilds this stage's state too.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Generic, Literal, TypeVar

DEFAULT_LATENESS = timedelta(hours=1)
DEFAULT_MAX_JUMP = timedelta(days=7)
MAX_PENDING = 16
"""Unconfirmed events held at once; beyond that the oldest is released as out of range."""

Kind = Literal["timely", "late", "out-of-range"]
T = TypeVar("T")


@dataclass(slots=True)
class Released(Generic[T]):
    """An item the stage lets through, and how it must be judged."""

    item: T
    kind: Kind = "timely"


@dataclass(slots=True, order=True)
class _Held(Generic[T]):
    at: float
    seq: int
    item: T = field(compare=False)
    event_id: str = field(compare=False)


class EventTimeOrder(Generic[T]):
    """The reorder buffer. ``push`` an item with its event time (POSIX seconds) and its id; get
    back what may be decided now, in order. ``known(event_id)`` tells whether the core already
    has the id (then time does not matter: it is a redelivery or a conflict, for the core)."""

    def __init__(self, lateness: timedelta = DEFAULT_LATENESS,
                 max_jump: timedelta = DEFAULT_MAX_JUMP,
                 known: Callable[[str], bool] = lambda _: False) -> None:
        if lateness < timedelta(0):
            raise ValueError("the allowed lateness cannot be negative")
        if max_jump <= lateness:
            raise ValueError("the clock bound must be larger than the allowed lateness")
        self.lateness = lateness.total_seconds()
        self.max_jump = max_jump.total_seconds()
        self._known = known
        self.clock: float | None = None
        """The latest event time seen (events accepted and ticks), POSIX seconds."""
        self.frontier: float | None = None
        """Everything registered at or before this has been released: the core's clock."""
        self._buffer: list[tuple[float, int, _Held[T]]] = []
        """A heap on (registered_at, arrival): plain tuples, so ordering stays in C."""
        self._pending: list[_Held[T]] = []  # unconfirmed, in arrival order
        self._held_ids: dict[str, int] = {}  # event ids held (buffered or pending) -> copies
        self._held_at: dict[str, float] = {}  # ... -> event time of the first copy held
        self._seq = 0

    def __len__(self) -> int:
        """Events held: buffered for order, or waiting for their time to be confirmed."""
        return len(self._buffer) + len(self._pending)

    @property
    def latest(self) -> float | None:
        """The clock; before there is one, the latest time among the events waiting for it
        (what a wall-clock tick extrapolates from on a stream too quiet to confirm a clock)."""
        if self.clock is not None:
            return self.clock
        return max((p.at for p in self._pending), default=None)

    # --- input ------------------------------------------------------------------------------

    def push(self, item: T, at: float, event_id: str) -> list[Released[T]]:
        """One event, in arrival order; what may be decided now, in order."""
        self._seq += 1
        held = _Held(at, self._seq, item, event_id)
        if event_id in self._held_ids:
            # another copy of an event still held: it follows its first copy (a redelivery or a
            # conflict, for the core to judge), waiting where that copy waits
            if any(p.event_id == event_id for p in self._pending):
                self._pending.append(held)
                self._count(held, +1)
                return []
            held.at = max(held.at, self._held_at[event_id])
            self._buffer_add(held)
            return self._release()
        if self._known(event_id):
            return [Released(item)]
        clock = self.clock
        if clock is None or at > clock + self.max_jump:
            return self._unconfirmed(held)
        out = self._reject_pending()  # the stream goes on at its time: those were outliers
        if at < clock - self.lateness:
            out.append(Released(item, "late"))
            return out
        self.clock = max(clock, at)
        self._buffer_add(held)
        out.extend(self._release())
        return out

    def tick(self, at: float) -> list[Released[T]]:
        """Event time is at least ``at`` (a wall-clock tick or a heartbeat): release what is
        due. A tick moves the clock by at most ``max_jump``; with no clock yet, the events
        waiting for one are taken as the start of the stream."""
        out: list[Released[T]] = []
        if self.clock is None:
            if not self._pending:
                return out
            out.extend(self._confirm(list(self._pending)))
        assert self.clock is not None
        self.clock = max(self.clock, min(at, self.clock + self.max_jump))
        out.extend(self._release())
        return out

    def drain(self) -> list[Released[T]]:
        """End of input: release everything held, in order. Unconfirmed events are out of
        range when a clock was established without them; with no clock at all (a stream too
        short to confirm one) they are the stream, released in order."""
        out: list[Released[T]] = []
        if self.clock is None and self._pending:
            out.extend(self._confirm(list(self._pending)))
        out.extend(self._reject_pending())
        while self._buffer:
            out.append(Released(self._buffer_pop().item))
        if self.clock is not None:
            self.frontier = self.clock
        return out

    # --- internals --------------------------------------------------------------------------

    def _buffer_add(self, held: _Held[T]) -> None:
        heapq.heappush(self._buffer, (held.at, held.seq, held))
        self._count(held, +1)

    def _buffer_pop(self) -> _Held[T]:
        held = heapq.heappop(self._buffer)[2]
        self._count(held, -1)
        return held

    def _count(self, held: _Held[T], delta: int) -> None:
        event_id = held.event_id
        copies = self._held_ids.get(event_id, 0) + delta
        if copies:
            self._held_ids[event_id] = copies
            self._held_at.setdefault(event_id, held.at)
        else:
            del self._held_ids[event_id]
            del self._held_at[event_id]

    def _release(self) -> list[Released[T]]:
        if self.clock is None:
            return []
        frontier = self.clock - self.lateness
        if self.frontier is None or frontier > self.frontier:
            self.frontier = frontier
        out = []
        buffer = self._buffer
        while buffer and buffer[0][0] <= self.frontier:
            out.append(Released(self._buffer_pop().item))
        return out

    def _unconfirmed(self, held: _Held[T]) -> list[Released[T]]:
        """An event while there is no clock yet, or far ahead of it: does a held one confirm
        it (registered within ``max_jump`` of it)? Then they set the clock together, and the
        other unconfirmed events are outliers."""
        near = [p for p in self._pending if abs(p.at - held.at) <= self.max_jump]
        if not near:
            self._pending.append(held)
            self._count(held, +1)
            if len(self._pending) > MAX_PENDING:
                oldest = self._pending.pop(0)
                self._count(oldest, -1)
                return [Released(oldest.item, "out-of-range")]
            return []
        self._pending.append(held)
        self._count(held, +1)
        outliers = [p for p in self._pending if p not in near and p is not held]
        late = self._confirm([*near, held])
        self._pending = outliers
        out = self._reject_pending()
        out.extend(late)
        out.extend(self._release())
        return out

    def _confirm(self, group: list[_Held[T]]) -> list[Released[T]]:
        """Confirmed events set (or move) the clock and join the buffer — except those that
        arrived more than the lateness behind one of them registered later: those are late."""
        late: list[Released[T]] = []
        latest = self.clock if self.clock is not None else float("-inf")
        for p in sorted(group, key=lambda held: held.seq):
            self._pending.remove(p)
            if p.at < latest - self.lateness:
                self._count(p, -1)
                late.append(Released(p.item, "late"))
                continue
            latest = max(latest, p.at)
            heapq.heappush(self._buffer, (p.at, p.seq, p))  # already counted among held ids
        self.clock = latest
        return late

    def _reject_pending(self) -> list[Released[T]]:
        out = []
        for p in self._pending:
            self._count(p, -1)
            out.append(Released(p.item, "out-of-range"))
        self._pending = []
        return out
