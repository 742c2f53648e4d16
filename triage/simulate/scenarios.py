"""The catalogue of scenarios and how often each one runs.

:data:`SCENARIOS` maps a scenario name (the ``scenario`` of its labels) to the function that
stages it and its frequency: instances per 100,000 events, with a floor so that even a small
corpus contains every scenario several times. :func:`plan` spreads the instances over the year
at random times; the engine fills the gaps with noise, which stays the large majority.

Two more kinds of line are not scenarios of their own: ``malformed`` lines and redeliveries are
added by :class:`~triage.simulate.writer.CorpusWriter` as the events are written.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from triage.simulate import atp, dar, life, moves

if TYPE_CHECKING:
    from triage.simulate.engine import Simulation

Scenario = Callable[["Simulation"], bool]

SCENARIOS: dict[str, tuple[Scenario, int, int]] = {
    # name: (function, instances per 100k events, minimum instances)
    "family_move_together": (moves.family_move_together, 320, 10),
    "household_split": (moves.household_split, 50, 4),
    "late_member": (moves.late_member, 45, 4),
    "occupied_destination": (moves.occupied_destination, 45, 4),
    "move_not_together": (moves.move_not_together, 30, 4),
    "move_in": (moves.move_in, 70, 6),
    "move_out_of_municipality": (moves.move_out_of_municipality, 50, 4),
    "no_fixed_address": (moves.no_fixed_address, 25, 3),
    "birth": (life.birth, 90, 6),
    "marriage": (life.marriage, 60, 6),
    "partnership": (life.partnership, 15, 3),
    "divorce": (life.divorce, 35, 4),
    "death": (life.death, 70, 6),
    "emigration": (life.emigration, 35, 4),
    "disappearance": (life.disappearance, 15, 3),
    "cpr_number_change": (life.cpr_number_change, 40, 4),
    "master_data": (life.master_data, 300, 8),
    "unknown_type": (life.unknown_type, 25, 3),
    "dar_address_change": (dar.dar_address_change, 150, 6),
    "dar_municipality_change": (dar.dar_municipality_change, 30, 4),
    "dar_address_retired": (dar.dar_address_retired, 25, 4),
    "atp_benefit": (atp.atp_benefit, 1500, 15),
    "atp_income": (atp.atp_income, 5000, 30),
    "atp_single_status": (atp.atp_single_status, 400, 6),
}


def plan(rng: random.Random, events: int, first: int, last: int) -> list[tuple[int, str]]:
    """(start time, scenario name) for every instance, sorted by time, times in [first, last)."""
    out = []
    for name, (_, per_100k, minimum) in SCENARIOS.items():
        count = max(minimum, round(per_100k * events / 100_000))
        out += [(rng.randrange(first, last), name) for _ in range(count)]
    out.sort()
    return out


def functions() -> dict[str, Scenario]:
    return {name: f for name, (f, _, _) in SCENARIOS.items()}
