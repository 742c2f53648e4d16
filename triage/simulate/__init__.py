"""A deterministic, realistic municipality: demo data and benchmark corpus for Triage.

``simulate(outdir, seed=1, events=100_000, start=date(2025, 1, 1))`` builds Esbjerg (0561) with
its neighbours — some 20,000 persons in households, 1,500 benefit cases — and a year of registry
events about them, and writes to ``outdir``:

``persons.jsonl``
    the CPR register before the first event (CONTRACT.md "Reference data / persons");
``cases.jsonl``
    the active cases (CONTRACT.md "Reference data / cases");
``events.jsonl``
    the events in arrival order, in CONTRACT.md's input format, with ~0.5 % redeliveries (the
    same line again a little later) and ~0.2 % malformed lines;
``labels.jsonl``
    the expected decision for every distinct event id and every malformed line:
    ``{"line", "event_id", "expect": "raised" | "suppressed" | "invalid", "scenario", "cases"}``
    — ``cases`` lists the case ids DOMAIN.md's rules raise (empty when suppressed).

Same seed, same bytes: only ``random.Random(seed)`` is used, and nothing depends on hash order.

The package, module by module: :mod:`.cprnumbers` (valid CPR numbers, with and without modulus
11), :mod:`.addresses` (DAR addresses), :mod:`.world` (the generator's model of who lives where),
:mod:`.population` (the register and cases before the first event), :mod:`.impact` (the rules,
for labelling), :mod:`.builders` (event JSON), :mod:`.steps` (emit-label-apply for one event),
:mod:`.moves`, :mod:`.life`, :mod:`.dar`, :mod:`.atp` (the scenarios), :mod:`.noise`,
:mod:`.scenarios` (catalogue and frequencies), :mod:`.malformed`, :mod:`.writer` (files, labels,
redeliveries), :mod:`.engine` (clock and loop), :mod:`.timestamps`.

Command line: ``triage simulate OUTDIR [--seed N] [--events N]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from triage.simulate import scenarios
from triage.simulate.engine import LAST_START, Simulation
from triage.simulate.noise import noise
from triage.simulate.timestamps import DAY, HOUR

__all__ = ["SimulationSummary", "simulate"]


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate` wrote."""

    outdir: Path
    seed: int
    lines: int
    """Lines in events.jsonl (valid events, redeliveries and malformed lines)."""
    events: int
    """Distinct valid events (= labels that are not ``invalid``)."""
    redelivered: int
    malformed: int
    persons: int
    """Persons in persons.jsonl."""
    cases: int
    scenarios: dict[str, int] = field(default_factory=dict)
    """Labels per scenario (``noise`` and ``malformed`` included)."""
    expected: dict[str, int] = field(default_factory=dict)
    """Labels per expected outcome: raised, suppressed, invalid."""
    malformed_kinds: dict[str, int] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)
    """Scenario instances started, by scenario."""


def simulate(outdir: Path, *, seed: int = 1, events: int = 100_000,
             start: date = date(2025, 1, 1)) -> SimulationSummary:
    """Generate the corpus into ``outdir`` (created if missing) and return its summary."""
    if events < 1:
        raise ValueError("events must be positive")
    outdir = Path(outdir)
    sim = Simulation(outdir, seed, events, start)
    world, writer = sim.world, sim.writer
    persons = writer.reference("persons.jsonl",
                               (world.person_json(pid) for pid in range(len(world.persons))))
    cases = writer.reference("cases.jsonl", (world.case_json(c) for c in range(len(world.cases))))
    # planned starts leave two days before the cut-off for retries (8 × 6 h)
    timeline = scenarios.plan(sim.rng, events, sim.start_ts + HOUR,
                              sim.end_ts - LAST_START - 2 * DAY)
    sim.run(timeline, scenarios.functions(), noise)
    malformed = writer.expected["invalid"]
    return SimulationSummary(
        outdir=outdir, seed=seed, lines=writer.lines,
        events=sum(writer.expected.values()) - malformed, redelivered=writer.redelivered,
        malformed=malformed, persons=persons, cases=cases,
        scenarios=dict(sorted(writer.scenarios.items())),
        expected=dict(sorted(writer.expected.items())),
        malformed_kinds=dict(sorted(writer.malformed_kinds.items())),
        started=dict(sorted(sim.started.items())))
