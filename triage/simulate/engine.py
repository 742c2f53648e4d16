"""The simulation loop: a clock, a queue of pending events, and the scenario plan.

Time runs from the start date through one year. The loop repeatedly draws the next "tick" (gaps
are sized so the requested number of lines spreads over the year) and either

* fires the earliest pending step of a running scenario, if it is due before the tick (the
  second member of a family move, the derived copy of a birth, a lock release…), or
* starts the next planned scenario once its planned time has come, or
* writes a noise event.

A scenario emits its first event at once and schedules the rest with :meth:`Simulation.after`.
Everything is emitted in clock order, so the file's arrival order equals ``registered_at`` order
(except a few noise events stamped slightly in the past, as late deliveries are). Each emitted
event is labelled with :mod:`.impact` against the world *before* the event is applied, then the
caller applies it — the same order the service works in.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

from triage.simulate import timestamps
from triage.simulate.addresses import HOME_MUNICIPALITY
from triage.simulate.cprnumbers import CprIssuer
from triage.simulate.population import build_world
from triage.simulate.timestamps import DAY, HOUR
from triage.simulate.world import pick
from triage.simulate.writer import CorpusWriter

CORRELATION_WINDOW = 24 * HOUR
SETTLE = CORRELATION_WINDOW + 2 * HOUR
"""How long a household stays locked after its last move: the service's window must have closed
before anyone in it moves again."""
LAST_START = 5 * DAY
"""No scenario starts in the last days of the year, so all of them finish inside it."""


def persons_for(events: int) -> int:
    """Population size for a corpus of ``events`` lines: ~20k persons for 100k events."""
    return max(1500, min(25_000, events // 5))


class Simulation:
    """Shared state of one run: generator, world, clock, pending steps, output."""

    def __init__(self, outdir: Path, seed: int, events: int, start: date) -> None:
        self.rng = random.Random(seed)
        self.target = events
        self.issuer = CprIssuer(self.rng)
        self.world = build_world(self.rng, self.issuer, start, persons_for(events))
        self.start_ts = timestamps.to_seconds(start) - HOUR  # local midnight (winter time)
        self.end_ts = self.start_ts + 365 * DAY
        self.now = self.start_ts
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self.writer = CorpusWriter(outdir, self.rng, self.event_id)
        self.started: dict[str, int] = {}

    # --- ids, time, output ---------------------------------------------------------------------

    def event_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def today(self) -> date:
        return timestamps.to_date(self.now)

    def stamp(self, source: str, late: bool = False) -> str:
        """``registered_at`` for an event emitted now (``late``: a little in the past)."""
        ts = self.now - self.rng.randint(1, 240) if late else self.now
        if source == "dar":
            return timestamps.utc(ts, self.rng.randrange(1000))
        if source == "atp" and self.rng.random() < 0.15:
            return timestamps.utc(ts)
        return timestamps.local(ts)

    def emit(self, event: dict[str, Any], scenario: str, cases: Iterable[int]) -> None:
        ids = [self.world.cases[c].case_id for c in cases]
        self.writer.event(event, scenario, ids)

    # --- scheduling ----------------------------------------------------------------------------

    def after(self, delay: int, step: Callable[[], None]) -> None:
        """Run ``step`` ``delay`` seconds from now (same-time steps run in scheduling order)."""
        self._seq += 1
        heapq.heappush(self._queue, (self.now + max(0, delay), self._seq, step))

    def hold(self, pids: Iterable[int], aids: Iterable[int | None], seconds: int) -> None:
        """Lock persons and addresses now and release them ``seconds`` later."""
        pids, aids = list(pids), list(aids)
        self.world.lock(pids, aids)
        self.after(seconds, lambda: self.world.unlock(pids, aids))

    # --- picking -------------------------------------------------------------------------------

    def pick_case(self, accept: Callable[[int], bool]) -> int | None:
        return pick(self.rng, range(len(self.world.cases)), accept, tries=150)

    def pick_person(self, accept: Callable[[int], bool]) -> int | None:
        return pick(self.rng, range(len(self.world.persons)), accept, tries=150)

    def pick_noise_person(self, accept: Callable[[int], bool] | None = None) -> int | None:
        w = self.world
        return self.pick_person(lambda pid: w.is_noise_person(pid)
                                and (accept is None or accept(pid)))

    def dwellings(self, municipality: str) -> list[int]:
        w = self.world
        return w.home_dwellings if municipality == HOME_MUNICIPALITY \
            else w.neighbour_dwellings[municipality]

    def pick_empty(self, municipality: str = HOME_MUNICIPALITY) -> int | None:
        w = self.world
        return pick(self.rng, self.dwellings(municipality),
                    lambda aid: w.is_empty_destination(aid, municipality))

    def pick_noise_destination(self, municipality: str = HOME_MUNICIPALITY,
                               occupied: bool = False) -> int | None:
        """A dwelling where moving in affects no case (``occupied``: someone lives there)."""
        w = self.world
        return pick(self.rng, self.dwellings(municipality),
                    lambda aid: (not occupied or bool(w.residents[aid]))
                    and w.is_noise_destination(aid, municipality))

    # --- the loop ------------------------------------------------------------------------------

    def run(self, plan: list[tuple[int, str]],
            scenarios: dict[str, Callable[[Simulation], bool]],
            noise: Callable[[Simulation], None]) -> None:
        """Emit events until the target number of lines is written, then finish what is
        pending. ``plan`` is (start time, scenario name), sorted."""
        rng, writer = self.rng, self.writer
        retries: list[tuple[int, int, str, int]] = []
        nxt = 0
        while writer.lines < self.target:
            remaining = max(1, self.target - writer.lines)
            mean_gap = max(1.0, (self.end_ts - self.now) / remaining)
            tick = min(self.now + int(rng.random() * 2 * mean_gap), self.end_ts - 1)
            if self._queue and self._queue[0][0] <= tick:
                self._step()
                continue
            self.now = max(self.now, tick)
            name, attempt = None, 0
            if retries and retries[0][0] <= self.now:
                _, _, name, attempt = heapq.heappop(retries)
            elif nxt < len(plan) and plan[nxt][0] <= self.now:
                name = plan[nxt][1]
                nxt += 1
            if name is not None and self.now < self.end_ts - LAST_START:
                if scenarios[name](self):
                    self.started[name] = self.started.get(name, 0) + 1
                    continue
                if attempt < 8:
                    heapq.heappush(retries, (self.now + 6 * HOUR, nxt + attempt, name,
                                             attempt + 1))
            noise(self)
        while self._queue:
            self._step()
        writer.close()

    def _step(self) -> None:
        ts, _, step = heapq.heappop(self._queue)
        self.now = max(self.now, ts)
        step()
