"""Scenarios about address changes of case households (DOMAIN.md rules 2 and 3).

Each function picks a case whose situation fits, stages its events (the first now, the rest
scheduled seconds to hours later, interleaved with everything else), locks the people and
addresses involved until the service's correlation window has surely closed, and returns False
when no case fits right now (the engine retries later).

For a household moving as a group the scenario passes an :class:`impact.Group` — the cases whose
home the household leaves, fixed when the first move arrives, and whether the group as a whole
affects them — so every event of the group gets the group's outcome:

* ``family_move_together`` — everyone registered at the home (members and others) moves to one
  empty dwelling in the municipality, same move date, within hours, in random order: suppressed.
  Households of one are included (decided at once).
* ``household_split`` — one of them moves elsewhere, or with another move date: all raised. The
  one who splits off arrives last, so the decision never depends on how a service treats moves
  that arrive after a group was already decided.
* ``late_member`` — everyone moves to the same place, one of them registered 26–40 h after the
  first: the window closes without everyone, all raised.
* ``occupied_destination`` — the household moves in with people already living there: raised.
* ``move_not_together`` — a case with a member registered elsewhere: its household's moves are
  raised; or that member moves home (raised: the case was not together).
* ``move_in`` — someone outside the household moves to the case home, including people unknown
  to the register arriving from another municipality or from abroad: raised.
* ``move_out_of_municipality`` — a household member or the whole household leaves for another
  municipality: raised. ``no_fixed_address`` — a member moves to a road code ≥ 9900: raised.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial
from typing import TYPE_CHECKING

from triage.simulate import impact, steps
from triage.simulate.addresses import HOME_MUNICIPALITY, NEIGHBOURS
from triage.simulate.engine import SETTLE
from triage.simulate.timestamps import HOUR
from triage.simulate.world import pick

if TYPE_CHECKING:
    from triage.simulate.engine import Simulation


def _stage(sim: Simulation, c: int, plan: list[tuple[int, int, date, int]], scenario: str,
           raised: bool | None, extra_locks: list[int] | None = None) -> None:
    """Schedule moves ``(pid, to, move_date, delay)`` of case ``c``'s household: as one group
    whose outcome is ``raised``, or (``raised`` None) as lone moves the rules judge one by one."""
    w = sim.world
    home = w.home(c)
    group = None if raised is None else impact.Group(frozenset(w.cases_at(home)), raised)
    pids = [pid for pid, _, _, _ in plan] + (extra_locks or [])
    aids = [home, *dict.fromkeys(to for _, to, _, _ in plan)]
    sim.hold(pids, aids, max(delay for *_, delay in plan) + SETTLE)
    for pid, to, when, delay in plan:
        sim.after(delay, partial(steps.move, sim, pid, to, when, scenario, group))


def family_move_together(sim: Simulation) -> bool:
    w = sim.world
    alone = sim.started.get("family_move_together", 0) % 4 == 0  # every 4th: a group of one
    c = sim.pick_case(lambda c: steps.case_clean(w, c)
                      and (len(w.household(c)) == 1) == alone)
    target = sim.pick_empty()
    if c is None or target is None:
        return False
    household = w.household(c)
    sim.rng.shuffle(household)
    when = steps.move_date(sim)
    delays = steps.spread(sim, len(household))
    _stage(sim, c, [(pid, target, when, d) for pid, d in zip(household, delays, strict=True)],
           "family_move_together", raised=False)
    return True


def household_split(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng
    c = sim.pick_case(lambda c: steps.case_clean(w, c) and len(w.household(c)) >= 2)
    target = sim.pick_empty()
    if c is None or target is None:
        return False
    household = w.household(c)
    rng.shuffle(household)
    splitter = household.pop()
    when = steps.move_date(sim)
    elsewhere, other_date = target, when
    if rng.random() < 0.6:
        other = pick(rng, w.home_dwellings,
                     lambda aid: aid != target and w.is_empty_destination(aid))
        if other is None:
            return False
        elsewhere = other
    else:
        other_date = when + timedelta(days=rng.choice((-1, 1)) * rng.randint(1, 10))
    delays = steps.spread(sim, len(household) + 1)
    plan = [(pid, target, when, d) for pid, d in zip(household, delays, strict=False)]
    plan.append((splitter, elsewhere, other_date, delays[-1]))
    _stage(sim, c, plan, "household_split", raised=True)
    return True


def late_member(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng
    c = sim.pick_case(lambda c: steps.case_clean(w, c) and len(w.household(c)) >= 2)
    target = sim.pick_empty()
    if c is None or target is None:
        return False
    household = w.household(c)
    rng.shuffle(household)
    late = household.pop()
    when = steps.move_date(sim)
    delays = steps.spread(sim, len(household), max_span=6 * HOUR)
    plan = [(pid, target, when, d) for pid, d in zip(household, delays, strict=True)]
    plan.append((late, target, when, rng.randint(26 * HOUR, 40 * HOUR)))
    _stage(sim, c, plan, "late_member", raised=True)
    return True


def occupied_destination(sim: Simulation) -> bool:
    w = sim.world
    c = sim.pick_case(lambda c: steps.case_clean(w, c))
    target = sim.pick_noise_destination(occupied=True)
    if c is None or target is None:
        return False
    household = w.household(c)
    sim.rng.shuffle(household)
    when = steps.move_date(sim)
    delays = steps.spread(sim, len(household))
    _stage(sim, c, [(pid, target, when, d) for pid, d in zip(household, delays, strict=True)],
           "occupied_destination", raised=True, extra_locks=list(w.residents[target]))
    return True


def move_not_together(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng

    def fits(c: int) -> bool:
        home = w.home(c)
        if not steps.case_free(w, c) or w.together(c) or home is None:
            return False
        a = w.addresses[home]
        return (not a.retired and not a.no_fixed_address
                and a.municipality_code == HOME_MUNICIPALITY and w.cases_at(home) == [c]
                and all(w.person_free(pid) for pid in w.residents[home]))

    c = sim.pick_case(fits)
    if c is None:
        return False
    home = w.home(c)
    assert home is not None
    household = w.household(c)
    away = [pid for pid, _ in w.cases[c].members
            if w.persons[pid].registered and w.persons[pid].address != home
            and w.person_free(pid)]
    if away and rng.random() < 0.35:
        # the member registered elsewhere moves home
        pid = rng.choice(away)
        sim.hold([pid, *household], [home, w.persons[pid].address], SETTLE)
        when = steps.move_date(sim)
        sim.after(0, lambda: steps.move(sim, pid, home, when, "move_not_together"))
        return True
    if any(w.cases[c].role_of(pid) is None for pid in household):
        # Only households of members: for a non-member moving along with a case that is not
        # together, DOMAIN.md leaves open whether the member rule raises the whole group or
        # the complete group suppresses that one event. The corpus stays out of that corner.
        return False
    target = sim.pick_empty()
    if target is None:
        return False
    rng.shuffle(household)
    when = steps.move_date(sim)
    delays = steps.spread(sim, len(household))
    _stage(sim, c, [(pid, target, when, d) for pid, d in zip(household, delays, strict=True)],
           "move_not_together", raised=True)
    return True


def move_in(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng

    def fits(c: int) -> bool:
        home = w.home(c)
        return (steps.case_free(w, c) and home is not None
                and not w.addresses[home].retired and not w.addresses[home].no_fixed_address
                and all(w.person_free(pid) for pid in w.residents[home]))

    c = sim.pick_case(fits)
    if c is None:
        return False
    home = w.home(c)
    assert home is not None
    household = w.household(c)
    roll = rng.random()
    when = steps.move_date(sim)
    if roll < 0.35:
        # someone the register does not know: from another municipality, or from abroad
        elsewhere = rng.choice(("0101", "0751"))
        origin = None if roll < 0.12 else w.addresses[
            rng.choice(w.neighbour_dwellings[elsewhere])].as_json()
        adult = rng.randint(19, 60)
        born = sim.today().replace(year=sim.today().year - adult, day=1)
        if rng.random() < 0.3:
            born = born.replace(month=1)
        female = rng.random() < 0.5
        cpr = sim.issuer.issue(born, female, modulus11=not (
            (born.month, born.day) == (1, 1) and rng.random() < 0.6))
        newcomer = w.add_person(cpr, born, female, None)
        sim.hold([newcomer, *household], [home], SETTLE)
        sim.after(0, partial(steps.move, sim, newcomer, home, when, "move_in", from_=origin))
        return True
    municipality = HOME_MUNICIPALITY if roll < 0.85 else rng.choice(("0573", "0575"))
    pid = sim.pick_noise_person(
        lambda p: w.addresses[w.persons[p].address].municipality_code  # type: ignore[index]
        == municipality)
    if pid is None:
        return False
    sim.hold([pid, *household], [home, w.persons[pid].address], SETTLE)
    sim.after(0, lambda: steps.move(sim, pid, home, when, "move_in"))
    return True


def move_out_of_municipality(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng
    c = sim.pick_case(lambda c: steps.case_clean(w, c))
    if c is None:
        return False
    municipality = rng.choice(NEIGHBOURS)
    household = w.household(c)
    when = steps.move_date(sim)
    if len(household) > 1 and rng.random() < 0.6:
        mover = rng.choice(household)
        target = sim.pick_noise_destination(municipality, occupied=rng.random() < 0.3)
        if target is None:
            return False
        _stage(sim, c, [(mover, target, when, 0)], "move_out_of_municipality", raised=None,
               extra_locks=[p for p in household if p != mover] + list(w.residents[target]))
        return True
    target = sim.pick_empty(municipality)
    if target is None:
        return False
    rng.shuffle(household)
    delays = steps.spread(sim, len(household))
    _stage(sim, c, [(pid, target, when, d) for pid, d in zip(household, delays, strict=True)],
           "move_out_of_municipality", raised=True)
    return True


def no_fixed_address(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng
    c = sim.pick_case(lambda c: steps.case_clean(w, c))
    # a pseudo-address that is nobody's case home (else rule 3 would add that case too)
    target = pick(rng, w.pseudo_addresses,
                  lambda aid: w.address_free(aid) and not w.is_case_home(aid))
    if c is None or target is None:
        return False
    members = steps.members_at_home(w, c)
    mover = members[0] if rng.random() < 0.5 else rng.choice(members)
    household = w.household(c)
    _stage(sim, c, [(mover, target, steps.move_date(sim), 0)], "no_fixed_address", raised=None,
           extra_locks=[p for p in household if p != mover])
    return True
