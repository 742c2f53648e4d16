"""The deciding stage of the worker for one routed partition, free of faust.

The worker routes every input event, unchanged, to ``triage.routed`` (keyed by the municipality
it serves) and decides from there. That routed partition is the stage's **journal**: its records
— events, and the worker's clock *ticks* — fully determine the core's state, because the core is
deterministic. So the state that must survive a crash (register changes, open household moves,
seen event ids) is never written anywhere else: a worker that takes over a partition rebuilds it
by feeding the partition from its first record up to the committed offset through a fresh core,
with the outputs discarded (:meth:`RoutedDecider.rebuild`), and then goes on live.

Operator changes — a promoted or reloaded ruleset, a shadow ruleset, a silence or its end — are
journal records too (:mod:`triage.control`), applied where they stand.

Records go through the same :class:`~triage.pipeline.Pipeline` replay uses: the event-time stage
puts them in ``registered_at`` order within the allowed lateness, then the core decides. Its
buffer is state like any other, rebuilt from the journal.

Time is an input too. A household move must close when its window has passed even if no further
event arrives; while the worker is caught up (nothing unread on the inputs it routes), it records
its estimate of event time as a tick record in the journal (:meth:`RoutedDecider.tick_value`),
and the pipeline advances its clock when it reads it. A producer heartbeat arrives the same way.
A rebuild replays the same ticks, so it closes the same moves at the same point.

Records are applied strictly in offset order, each once: a record at or below the last applied
offset is skipped (faust may redeliver after a rebalance), and a gap means this stage lost track
of the partition, so the caller rebuilds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import timedelta

import orjson

from triage.control import KINDS as CONTROL_KINDS
from triage.control import apply_control
from triage.core import Outputs, Triage
from triage.eventtime import DEFAULT_LATENESS, DEFAULT_MAX_JUMP
from triage.models.events import Event, InvalidEvent
from triage.pipeline import Pipeline
from triage.stream.merge import posix_time
from triage.stream.settings import HEARTBEAT, OVERSIZED


def tick_time(value: bytes) -> float | None:
    """A tick record's event time: POSIX seconds as text (older journals: RFC 3339 with
    offset); None for anything else (an unreadable heartbeat is journalled as ``-inf``)."""
    try:
        return posix_time(value.decode())
    except (ValueError, UnicodeDecodeError, OverflowError):
        return None


def oversized_event(value: bytes) -> InvalidEvent:
    """The invalid event an oversized message's journal stand-in stands for."""
    info = orjson.loads(value)
    error = (f"message of {info['bytes']} bytes exceeds the maximum message size of "
             f"{info['limit']} bytes ({info['source']}); the dead letter keeps its first "
             f"{len(info['head'])} bytes")
    return InvalidEvent(event_id=info.get("event_id"), error=error,
                        raw=info["head"].encode("latin-1"), reason="oversized")


class RoutedDecider:
    """A triage pipeline and the offset of the last journal record it applied."""

    def __init__(self, core: Triage, *, lateness: timedelta = DEFAULT_LATENESS,
                 max_jump: timedelta = DEFAULT_MAX_JUMP,
                 wall: Callable[[], float] = time.time) -> None:
        self.core = core
        self.pipeline = Pipeline(core, lateness=lateness, max_jump=max_jump)
        self.next_offset = 0
        self._wall = wall
        self._wall_at_clock = wall()

    def apply(self, offset: int, value: bytes, kind: bytes | bool | None, *,
              event: Event | None = None,
              unavailable: str | None = None) -> Outputs | None:
        """Apply one journal record. None when the record was already applied. ``event`` is
        the record already parsed (by an adapter that enriched it first), ``unavailable`` why
        a lookup for it failed."""
        if offset < self.next_offset:
            return None
        if offset > self.next_offset:
            raise JournalGap(self.next_offset, offset)
        self.next_offset = offset + 1
        pipeline = self.pipeline
        before = pipeline.latest
        if kind == OVERSIZED:  # an input message over the size limit: dead-lettered
            out = pipeline.offer(oversized_event(value))
        elif isinstance(kind, bytes) and kind.decode(errors="replace") in CONTROL_KINDS:
            # an operator's change (promote, reload, shadow, silence): applied at its place in
            # the journal, so a rebuild applies it at the same point (triage/control.py)
            out = apply_control(self.core, kind.decode(), value)
        elif kind:  # a clock record: the worker's tick (True or TICK) or a producer's heartbeat
            at = tick_time(value)
            if at is None:
                out = Outputs()
            elif kind == HEARTBEAT:
                out = pipeline.watermark(at)
            else:
                out = pipeline.tick(at)
        elif event is not None:
            out = pipeline.offer(event, unavailable)
        else:
            out = pipeline.process(value)
        if pipeline.latest != before:
            self._wall_at_clock = self._wall()
        return out

    def resume(self) -> None:
        """After loading from a checkpoint: the wall clock restarts from now."""
        self._wall_at_clock = self._wall()

    def rebuild(self, records: Iterable[tuple[int, bytes, bytes | bool | None]]) -> int:
        """Replay journal records silently (outputs discarded); returns how many."""
        count = 0
        for offset, value, kind in records:
            if self.apply(offset, value, kind) is not None:
                count += 1
        return count

    def tick_value(self, now: float | None = None) -> bytes | None:
        """The event time a tick should record now, or None when nothing waits for time.

        Event time is extrapolated from the wall clock: the stream's clock (the latest
        ``registered_at`` seen) plus the wall-clock time since it last moved. A move whose first
        event was seen longer ago than the window, by the wall clock, is therefore closed even
        on a quiet stream. The caller writes ticks only while it is caught up. Times are POSIX
        seconds as text, so no timestamp can overflow a calendar.
        """
        pipeline = self.pipeline
        latest = pipeline.latest
        if latest is None or not (pipeline.waiting or len(self.core.households)):
            return None
        elapsed = (now if now is not None else self._wall()) - self._wall_at_clock
        if elapsed <= 0:
            return None
        return repr(latest + elapsed).encode()


class JournalGap(Exception):
    """The stage saw a record beyond the next one it expected: its state is not for this
    position of the journal and must be rebuilt."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"expected journal offset {expected}, got {got}")
        self.expected, self.got = expected, got
