"""The deciding stage of the worker for one routed partition, free of faust.

The worker routes every input event, unchanged, to ``triage.routed`` (keyed by the municipality
it serves) and decides from there. That routed partition is the stage's **journal**: its records
— events, and the worker's clock *ticks* — fully determine the core's state, because the core is
deterministic. So the state that must survive a crash (register changes, open household moves,
seen event ids) is never written anywhere else: a worker that takes over a partition rebuilds it
by feeding the partition from its first record up to the committed offset through a fresh core,
with the outputs discarded (:meth:`RoutedDecider.rebuild`), and then goes on live.

Time is an input too. A household move must close when its window has passed even if no further
event arrives; the worker records the wall clock as a tick record in the journal
(:meth:`RoutedDecider.tick_value`), and the core advances its event-time clock when it reads it.
A rebuild replays the same ticks, so it closes the same moves at the same point.

Records are applied strictly in offset order, each once: a record at or below the last applied
offset is skipped (faust may redeliver after a rebalance), and a gap means this stage lost track
of the partition, so the caller rebuilds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from triage.core import Outputs, Triage
from triage.models.events import Event

TICK_HEADER = "triage-kind"
TICK = b"tick"


class RoutedDecider:
    """A triage core and the offset of the last journal record it applied."""

    def __init__(self, core: Triage, *, wall: Callable[[], float] = time.time) -> None:
        self.core = core
        self.next_offset = 0
        self._wall = wall
        self._wall_at_watermark = wall()

    def apply(self, offset: int, value: bytes, is_tick: bool, *, event: Event | None = None,
              unavailable: str | None = None) -> Outputs | None:
        """Apply one journal record. None when the record was already applied. ``event`` is
        the record already parsed (by an adapter that enriched it first), ``unavailable`` why
        a lookup for it failed."""
        if offset < self.next_offset:
            return None
        if offset > self.next_offset:
            raise JournalGap(self.next_offset, offset)
        self.next_offset = offset + 1
        before = self.core.watermark
        if is_tick:
            out = self.core.advance(datetime.fromisoformat(value.decode()))
        elif event is not None:
            out = self.core.decide(event, unavailable=unavailable)
        else:
            out = self.core.process(value)
        if self.core.watermark != before:
            self._wall_at_watermark = self._wall()
        return out

    def rebuild(self, records: Iterable[tuple[int, bytes, bool]]) -> int:
        """Replay journal records silently (outputs discarded); returns how many."""
        count = 0
        for offset, value, is_tick in records:
            if self.apply(offset, value, is_tick) is not None:
                count += 1
        return count

    def tick_value(self, now: float | None = None) -> bytes | None:
        """The event time a tick should record now, or None when nothing waits for time.

        Event time is extrapolated from the wall clock: the latest ``registered_at`` seen plus
        the wall-clock time since it was seen. A move whose first event was seen longer ago than
        the window, by the wall clock, is therefore closed even on a quiet stream.
        """
        if self.core.watermark is None or not (self.core.waiting or len(self.core.households)):
            return None
        elapsed = (now if now is not None else self._wall()) - self._wall_at_watermark
        if elapsed <= 0:
            return None
        estimate = datetime.fromtimestamp(self.core.watermark, UTC) + timedelta(seconds=elapsed)
        return estimate.isoformat().encode()


class JournalGap(Exception):
    """The stage saw a record beyond the next one it expected: its state is not for this
    position of the journal and must be rebuilt."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"expected journal offset {expected}, got {got}")
        self.expected, self.got = expected, got
