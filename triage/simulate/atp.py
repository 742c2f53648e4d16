"""Scenarios with ATP / Udbetaling Danmark events about case members.

* ``atp_benefit`` — another support benefit started or changed for the applicant (raised), for a
  spouse member (raised on kontanthjælp, suppressed on ressourceforløbsydelse), a non-support
  benefit (boligstøtte, børne- og ungeydelse, børnetilskud: suppressed), any benefit ended
  (suppressed), a child's SU (suppressed).
* ``atp_income`` — income above 0 for the applicant (raised) or a spouse member (raised only on
  kontanthjælp), income of 0 (suppressed), a child's wage (suppressed).
* ``atp_single_status`` — UDK changes a member's single status: raised on kontanthjælp only.

The labels come from :mod:`.impact`; the variants only make sure each corner occurs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from triage.simulate import steps
from triage.simulate.impact import OTHER_BENEFITS, SUPPORT_BENEFITS
from triage.simulate.world import BENEFITS, KONTANTHJAELP, RESSOURCEFORLOEB

if TYPE_CHECKING:
    from triage.simulate.engine import Simulation

_SUPPORT = tuple(sorted(SUPPORT_BENEFITS))


def _member(sim: Simulation, roles: tuple[str, ...],
            benefits: tuple[str, ...] = BENEFITS) -> int | None:
    """A registered member with one of ``roles`` on a case of one of ``benefits``."""
    w = sim.world
    found: list[int] = []

    def fits(c: int) -> bool:
        case = w.cases[c]
        if case.benefit not in benefits:
            return False
        candidates = [pid for pid, role in case.members
                      if role in roles and w.person_free(pid)]
        if not candidates:
            return False
        found.append(sim.rng.choice(candidates))
        return True

    return found[-1] if sim.pick_case(fits) is not None else None


def atp_benefit(sim: Simulation) -> bool:
    rng = sim.rng
    roll = rng.random()
    event_type = rng.choice(("benefit_started", "benefit_started", "benefit_changed"))
    name = rng.choice(_SUPPORT)
    if roll < 0.4:
        pid = _member(sim, ("applicant",))
    elif roll < 0.6:
        pid = _member(sim, ("spouse",), (KONTANTHJAELP, RESSOURCEFORLOEB))
    elif roll < 0.75:
        pid = _member(sim, ("applicant", "spouse"))
        name = rng.choice(OTHER_BENEFITS)
    elif roll < 0.9:
        pid = _member(sim, ("applicant", "spouse"))
        event_type = "benefit_ended"
    else:
        pid = _member(sim, ("child",))
        name = "su"
    if pid is None:
        return False
    steps.benefit(sim, pid, event_type, name, "atp_benefit")
    return True


def atp_income(sim: Simulation) -> bool:
    roll = sim.rng.random()
    amount: float = steps.wage(sim)
    if roll < 0.55:
        pid = _member(sim, ("applicant",))
    elif roll < 0.8:
        pid = _member(sim, ("spouse",))
    elif roll < 0.9:
        pid = _member(sim, ("applicant", "spouse"))
        amount = 0
    else:
        pid = _member(sim, ("child",))
        amount = sim.rng.randrange(500, 6000)
    if pid is None:
        return False
    steps.income(sim, pid, amount, "atp_income")
    return True


def atp_single_status(sim: Simulation) -> bool:
    pid = _member(sim, ("applicant", "spouse", "child"))
    if pid is None:
        return False
    steps.single_status(sim, pid, "atp_single_status")
    return True
