"""The path of an event through Triage, composed in one place: parse → order in event time →
decide (deduplicate, enrich, correlate, judge, apply, emit).

Every driver — ``triage replay``, the streaming worker's decider, rule backtests and the tests —
feeds raw lines or parsed events to a :class:`Pipeline`; none of them orders or decides anything
itself. The pipeline owns one :class:`~triage.eventtime.EventTimeOrder` (the reorder buffer with
the allowed lateness and the clock bound) and one :class:`~triage.core.Triage` (the deciding
core), and after every step moves the core's clock to the buffer's frontier, so household
windows close exactly when the stream's event time passes them — never because of an event still
waiting in the buffer.

With lateness 0 and input already in ``registered_at`` order, the pipeline is the bare core.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from triage.core import Outputs, Triage
from triage.eventtime import DEFAULT_LATENESS, DEFAULT_MAX_JUMP, EventTimeOrder, Released
from triage.models.events import Event, InvalidEvent, parse_event

Item = tuple[Event, str | None, float]
"""An event waiting in the buffer, with the reason its case lookup failed (if it did) and its
registered_at in POSIX seconds (computed once, on arrival)."""


class Pipeline:
    """One municipality's stream: the event-time stage in front of the core."""

    def __init__(self, core: Triage, *, lateness: timedelta = DEFAULT_LATENESS,
                 max_jump: timedelta = DEFAULT_MAX_JUMP) -> None:
        self.core = core
        self.order: EventTimeOrder[Item] = EventTimeOrder(lateness, max_jump,
                                                          known=core.has_seen)

    @property
    def clock(self) -> float | None:
        """The stream's event time: the latest registered_at (or tick) seen, POSIX seconds."""
        return self.order.clock

    @property
    def latest(self) -> float | None:
        """The clock, or before there is one the latest time among events waiting for it."""
        return self.order.latest

    @property
    def waiting(self) -> int:
        """Events not decided yet: held for event-time order, or waiting for a household."""
        return len(self.order) + self.core.waiting

    def process(self, raw: bytes) -> Outputs:
        """One message or line, in arrival order."""
        return self.offer(parse_event(raw))

    def offer(self, event: Event | InvalidEvent, unavailable: str | None = None) -> Outputs:
        """One parsed event, in arrival order. ``unavailable``: why a lookup for it failed."""
        if isinstance(event, InvalidEvent):  # nothing to order: dead-lettered at once
            return self.core.decide(event)
        at = event.registered_at.timestamp()
        return self._decide(self.order.push((event, unavailable, at), at, event.event_id))

    def tick(self, at: float) -> Outputs:
        """Event time is at least ``at`` (POSIX seconds): the worker's clock while it is caught
        up, or a producer's heartbeat."""
        return self._decide(self.order.tick(at))

    def watermark(self, at: float) -> Outputs:
        """A producer's promise (heartbeat) that everything registered before ``at`` (POSIX
        seconds) has been published: everything up to ``at`` may be decided."""
        return self._decide(self.order.tick(at + self.order.lateness))

    def flush(self) -> Outputs:
        """End of input: decide everything held, then every open household move as if its
        window had closed."""
        out = self._decide(self.order.drain())
        out.extend(self.core.flush())
        return out

    def run(self, lines: Iterable[bytes]) -> Iterable[Outputs]:
        """Decide a whole stream, then flush: the shape replay and tests use."""
        for line in lines:
            yield self.process(line)
        yield self.flush()

    def _decide(self, released: list[Released[Item]]) -> Outputs:
        core = self.core
        if len(released) == 1:  # the common step: one event in, that one released
            event, unavailable, at = released[0].item
            out = core.decide(event, unavailable=unavailable, timing=released[0].kind, at=at)
        else:
            out = Outputs()
            for r in released:
                event, unavailable, at = r.item
                out.extend(core.decide(event, unavailable=unavailable, timing=r.kind, at=at))
        frontier = self.order.frontier
        if frontier is not None and (core.watermark is None or frontier > core.watermark):
            core.advance(frontier, out)
        return out
