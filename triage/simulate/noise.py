"""Noise: the bulk of the stream, events that affect no case.

Everything here is about *noise persons* — registered, on no case, not living at a case home,
not locked by a running scenario — and addresses where no case lives: wages and pensions
reported to eIndkomst, benefits starting and ending, people and whole households moving around
Esbjerg, away to and in from other municipalities and abroad, births, deaths, marriages, name
changes, DAR edits. Destinations are never case homes nor addresses a pending scenario uses, so a
noise event never changes a label by coincidence (and if one did, :mod:`.impact` would still
label it by the rules, not as noise intends).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from triage.simulate import dar, steps
from triage.simulate.addresses import HOME_MUNICIPALITY, NEIGHBOURS
from triage.simulate.engine import SETTLE
from triage.simulate.impact import OTHER_BENEFITS, SUPPORT_BENEFITS
from triage.simulate.timestamps import DAY
from triage.simulate.world import pick

if TYPE_CHECKING:
    from triage.simulate.engine import Simulation

SCENARIO = "noise"
_BENEFITS = tuple(sorted(SUPPORT_BENEFITS)) + OTHER_BENEFITS


def _municipality(sim: Simulation, pid: int) -> str:
    w = sim.world
    return w.addresses[w.persons[pid].address].municipality_code  # type: ignore[index]


def income(sim: Simulation) -> bool:
    pid = sim.pick_noise_person()
    if pid is None:
        return False
    amount = 0 if sim.rng.random() < 0.05 else steps.wage(sim)
    steps.income(sim, pid, amount, SCENARIO)
    return True


def benefit(sim: Simulation) -> bool:
    pid = sim.pick_noise_person()
    if pid is None:
        return False
    event_type = sim.rng.choice(("benefit_started", "benefit_changed", "benefit_ended"))
    steps.benefit(sim, pid, event_type, sim.rng.choice(_BENEFITS), SCENARIO)
    return True


def single_status(sim: Simulation) -> bool:
    pid = sim.pick_noise_person()
    if pid is None:
        return False
    steps.single_status(sim, pid, SCENARIO)
    return True


def move_local(sim: Simulation) -> bool:
    """One person moves within their municipality, to an empty dwelling or in with others."""
    w = sim.world
    homeless_too = sim.rng.random() < 0.3  # now and then someone leaves a pseudo-address

    def mover(p: int) -> bool:
        return homeless_too or not w.addresses[w.persons[p].address].no_fixed_address  # type: ignore[index]

    pid = sim.pick_noise_person(mover)
    if pid is None:
        return False
    municipality = _municipality(sim, pid)
    if municipality not in NEIGHBOURS and municipality != HOME_MUNICIPALITY:
        municipality = HOME_MUNICIPALITY
    roll = sim.rng.random()
    if roll < 0.03:
        target = pick(sim.rng, w.pseudo_addresses,
                      lambda aid: w.address_free(aid) and not w.is_case_home(aid))
    else:
        target = sim.pick_noise_destination(municipality, occupied=roll < 0.35)
    if target is None or target == w.persons[pid].address:
        return False
    steps.move(sim, pid, target, steps.move_date(sim), SCENARIO)
    return True


def move_household(sim: Simulation) -> bool:
    """A household with no case moves together to an empty dwelling."""
    w = sim.world
    rng = sim.rng

    def whole_household_is_noise(pid: int) -> bool:
        home = w.persons[pid].address
        if w.addresses[home].no_fixed_address:  # type: ignore[index]
            return False
        others = w.residents[home]  # type: ignore[index]
        return len(others) > 1 and all(w.is_noise_person(x) for x in others)

    pid = sim.pick_noise_person(whole_household_is_noise)
    if pid is None:
        return False
    municipality = _municipality(sim, pid)
    if rng.random() < 0.15:
        municipality = rng.choice((HOME_MUNICIPALITY, *NEIGHBOURS))
    home = w.persons[pid].address
    target = sim.pick_empty(municipality if municipality in w.neighbour_dwellings
                            else HOME_MUNICIPALITY)
    if target is None:
        return False
    household = list(w.residents[home])  # type: ignore[index]
    rng.shuffle(household)
    when = steps.move_date(sim)
    delays = steps.spread(sim, len(household))
    sim.hold(household, [home, target], delays[-1] + SETTLE)
    for x, delay in zip(household, delays, strict=True):
        sim.after(delay, partial(steps.move, sim, x, target, when, SCENARIO))
    return True


def move_away(sim: Simulation) -> bool:
    """Someone leaves Esbjerg for another municipality."""
    pid = sim.pick_noise_person(lambda p: _municipality(sim, p) == HOME_MUNICIPALITY)
    target = sim.pick_noise_destination(sim.rng.choice(NEIGHBOURS), occupied=False)
    if pid is None or target is None:
        return False
    steps.move(sim, pid, target, steps.move_date(sim), SCENARIO)
    return True


def arrive(sim: Simulation) -> bool:
    """Someone moves to Esbjerg: from a neighbour municipality, or new to the register (from
    abroad with ``from`` null, or from elsewhere in Denmark)."""
    w = sim.world
    rng = sim.rng
    target = sim.pick_noise_destination(HOME_MUNICIPALITY, occupied=rng.random() < 0.3)
    if target is None:
        return False
    if rng.random() < 0.6:
        pid = sim.pick_noise_person(lambda p: _municipality(sim, p) in NEIGHBOURS)
        if pid is None:
            return False
        steps.move(sim, pid, target, steps.move_date(sim), SCENARIO)
        return True
    today = sim.today()
    born = today.replace(year=today.year - rng.randint(18, 70), day=1)
    if rng.random() < 0.4:
        born = born.replace(month=1)
    female = rng.random() < 0.5
    jan1 = (born.month, born.day) == (1, 1)
    cpr = sim.issuer.issue(born, female, modulus11=not (jan1 and rng.random() < 0.6))
    pid = w.add_person(cpr, born, female, None)
    origin = None if rng.random() < 0.5 else w.addresses[
        rng.choice(w.neighbour_dwellings[rng.choice(("0101", "0751"))])].as_json()
    steps.move(sim, pid, target, steps.move_date(sim), SCENARIO, from_=origin)
    return True


def gone(sim: Simulation) -> bool:
    rng = sim.rng
    w = sim.world
    today = sim.today()
    event_type = rng.choices(("died", "emigrated", "disappeared"), weights=(70, 27, 3))[0]
    old = event_type == "died" and rng.random() < 0.8
    pid = sim.pick_noise_person(lambda p: not old or w.persons[p].age(today) >= 70)
    if pid is None:
        return False
    steps.gone(sim, pid, event_type, SCENARIO)
    return True


def birth(sim: Simulation) -> bool:
    w = sim.world
    today = sim.today()
    mother = sim.pick_noise_person(lambda p: w.persons[p].female
                                   and 20 <= w.persons[p].age(today) <= 42)
    if mother is None:
        return False
    m = w.persons[mother]
    father = m.spouse if m.spouse is not None and w.is_noise_person(m.spouse) else None
    steps.child_added(sim, mother, father, SCENARIO)
    return True


def civil(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng
    today = sim.today()
    if rng.random() < 0.3:
        a = sim.pick_noise_person(lambda p: w.persons[p].civil_status == "G"
                                  and w.persons[p].spouse is not None
                                  and w.is_noise_person(w.persons[p].spouse)  # type: ignore[arg-type]
                                  and w.persons[w.persons[p].spouse].spouse == p)  # type: ignore[index]
        if a is None:
            return False
        steps.civil_status(sim, a, w.persons[a].spouse, "F", SCENARIO)  # type: ignore[arg-type]
        return True

    def unmarried_adult(p: int) -> bool:
        return w.persons[p].civil_status in "UFE" and 20 <= w.persons[p].age(today) <= 75

    a = sim.pick_noise_person(unmarried_adult)
    if a is None:
        return False
    b = sim.pick_noise_person(lambda p: p != a and unmarried_adult(p)
                              and w.persons[p].female != w.persons[a].female)
    if b is None:
        return False
    steps.civil_status(sim, a, b, "G", SCENARIO)
    return True


def master_data(sim: Simulation) -> bool:
    pid = sim.pick_noise_person()
    if pid is None:
        return False
    steps.master_data(sim, pid, SCENARIO)
    return True


def cpr_change(sim: Simulation) -> bool:
    pid = sim.pick_noise_person()
    if pid is None:
        return False
    steps.cpr_number_changed(sim, pid, SCENARIO)
    return True


def dar_change(sim: Simulation) -> bool:
    w = sim.world
    aid = sim.pick_noise_destination(HOME_MUNICIPALITY, occupied=sim.rng.random() < 0.5)
    if aid is None or w.addresses[aid].no_fixed_address:
        return False
    dar.change(sim, aid, sim.rng.choice(dar.CHANGES), SCENARIO)
    return True


KINDS: tuple[tuple[Callable[[Simulation], bool], int], ...] = (
    (income, 330), (benefit, 90), (single_status, 20), (move_local, 150), (move_household, 40),
    (move_away, 40), (arrive, 40), (gone, 20), (birth, 20), (civil, 30), (master_data, 60),
    (cpr_change, 3), (dar_change, 25),
)
_FUNCS = tuple(f for f, _ in KINDS)
_WEIGHTS = tuple(weight for _, weight in KINDS)
_SPREAD_OUT = (move_household, birth, civil, dar_change)
"""Kinds whose events spread over minutes or hours: not started on the last day of the year."""
_LAST_DAY_WEIGHTS = tuple(0 if f in _SPREAD_OUT else weight for f, weight in KINDS)


def noise(sim: Simulation) -> None:
    """Emit (or start) one noise event; falls back to an income report."""
    weights = _LAST_DAY_WEIGHTS if sim.now > sim.end_ts - DAY else _WEIGHTS
    for _ in range(5):
        if sim.rng.choices(_FUNCS, weights=weights)[0](sim):
            return
    if not income(sim):
        raise RuntimeError("no noise person left in the simulated municipality")
