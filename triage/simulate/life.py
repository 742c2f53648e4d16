"""Scenarios about case members' lives: births, civil status, deaths, new numbers, master data.

* ``birth`` — a member of a case has a child: raised for kontanthjælp and ressourceforløbsydelse
  cases of a parent, suppressed when the parents' cases are only sygedagpenge/ledighedsydelse.
  Primary event on the child, derived copies on the parents (MO, FA), all labelled alike.
* ``marriage`` / ``partnership`` / ``divorce`` — primary event on one spouse, derived copy (ÆG,
  PA) on the other; each labelled for its own carrier (only kontanthjælp cases are affected).
* ``death`` / ``emigration`` / ``disappearance`` — of an applicant, a member, someone else living
  at a case home, or a person with no case at all.
* ``cpr_number_change`` — a member gets a new number (suppressed); a later event about them
  carries the new number and must still find the case.
* ``master_data`` — name, address protection, guardianship (suppressed), members and others.
* ``unknown_type`` — a CPR event type the service does not know, about a case member: raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from triage.simulate import builders, impact, steps
from triage.simulate.engine import SETTLE
from triage.simulate.timestamps import DAY, HOUR
from triage.simulate.world import (
    BENEFITS,
    KONTANTHJAELP,
    LEDIGHEDSYDELSE,
    RESSOURCEFORLOEB,
    SYGEDAGPENGE,
)

if TYPE_CHECKING:
    from triage.simulate.engine import Simulation


def _member(sim: Simulation, benefits: tuple[str, ...], roles: tuple[str, ...],
            at_home: bool = True, min_age: int = 0, max_age: int = 120) -> tuple[int, int] | None:
    """A free case of one of ``benefits`` and a free member with one of ``roles``."""
    w = sim.world
    rng = sim.rng
    today = sim.today()
    found: list[tuple[int, int]] = []

    def fits(c: int) -> bool:
        if w.cases[c].benefit not in benefits or not steps.case_free(w, c):
            return False
        home = w.home(c)
        candidates = [pid for pid, role in w.cases[c].members
                      if role in roles and w.person_free(pid)
                      and (not at_home or w.persons[pid].address == home)
                      and min_age <= w.persons[pid].age(today) <= max_age]
        if not candidates:
            return False
        found.append((c, rng.choice(candidates)))
        return True

    return found[-1] if sim.pick_case(fits) is not None else None


def birth(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng
    # every third birth is on a sygedagpenge/ledighedsydelse case (suppressed)
    benefits = (KONTANTHJAELP, RESSOURCEFORLOEB) if sim.started.get("birth", 0) % 3 != 2 \
        else (SYGEDAGPENGE, LEDIGHEDSYDELSE)
    today = sim.today()
    found = _member(sim, benefits, ("applicant", "spouse"), min_age=18, max_age=44)
    if found is None:
        return False
    _, parent = found
    p = w.persons[parent]
    father: int | None = None
    if p.female:
        mother = parent
        partner = p.spouse
        if partner is None or w.persons[partner].address != p.address:
            partner = next((x for x in w.residents[p.address]  # type: ignore[index]
                            if x != parent and not w.persons[x].female
                            and 18 <= w.persons[x].age(today) <= 60), None)
        if partner is not None and w.person_free(partner) and not w.persons[partner].female:
            father = partner
        elif rng.random() < 0.4:
            father = sim.pick_noise_person(lambda x: not w.persons[x].female
                                           and 20 <= w.persons[x].age(today) <= 55)
    else:
        father = parent
        partner = p.spouse
        if partner is None or w.persons[partner].address != p.address:
            partner = next((x for x in w.residents[p.address]  # type: ignore[index]
                            if x != parent and w.persons[x].female
                            and 18 <= w.persons[x].age(today) <= 44), None)
        if partner is None or not w.person_free(partner) or not w.persons[partner].female:
            return False
        mother = partner
    steps.child_added(sim, mother, father, "birth")
    return True


def _civil(sim: Simulation, status: str) -> bool:
    w = sim.world
    rng = sim.rng
    today = sim.today()
    benefits = (KONTANTHJAELP,) if rng.random() < 0.5 \
        else (RESSOURCEFORLOEB, SYGEDAGPENGE, LEDIGHEDSYDELSE)
    if status == "F":
        found = _member(sim, benefits, ("applicant", "spouse"), at_home=False, min_age=18)
        if found is None:
            return False
        a = found[1]
        b = w.persons[a].spouse
        if (w.persons[a].civil_status != "G" or b is None or not w.person_free(b)
                or w.persons[b].spouse != a):
            return False
    else:
        found = _member(sim, benefits, ("applicant",), min_age=18)
        if found is None:
            return False
        a = found[1]
        pa = w.persons[a]
        if pa.civil_status not in "UFE":
            return False
        same_sex = status == "P"

        def partner(x: int) -> bool:
            q = w.persons[x]
            return (x != a and (q.female == pa.female) == same_sex and q.civil_status in "UFE"
                    and 18 <= q.age(today) <= 75 and w.person_free(x))

        b = next((x for x in w.residents[pa.address]  # type: ignore[index]
                  if partner(x) and x not in w.member_of), None)
        if b is None or rng.random() < 0.4:
            b = sim.pick_noise_person(partner)
        if b is None:
            return False
    first, second = (a, b) if rng.random() < 0.5 else (b, a)
    steps.civil_status(sim, first, second, status,
                       {"G": "marriage", "P": "partnership", "F": "divorce"}[status])
    return True


def marriage(sim: Simulation) -> bool:
    return _civil(sim, "G")


def partnership(sim: Simulation) -> bool:
    return _civil(sim, "P")


def divorce(sim: Simulation) -> bool:
    return _civil(sim, "F")


def _gone(sim: Simulation, event_type: str, scenario: str) -> bool:
    w = sim.world
    rng = sim.rng
    roll = rng.random()
    pid: int | None
    if roll < 0.3:
        found = _member(sim, BENEFITS, ("applicant",))
        pid = None if found is None else found[1]
    elif roll < 0.6:
        found = _member(sim, (KONTANTHJAELP, RESSOURCEFORLOEB), ("spouse", "child"),
                        at_home=rng.random() < 0.8)
        pid = None if found is None else found[1]
    elif roll < 0.8:
        def lodger(x: int) -> bool:
            return (x not in w.member_of and w.person_free(x)
                    and w.is_case_home(w.persons[x].address))  # type: ignore[arg-type]
        pid = sim.pick_person(lodger)
    else:
        pid = sim.pick_noise_person()
    if pid is None:
        return False
    home = w.persons[pid].address
    household = list(w.residents[home]) if home is not None else []
    steps.gone(sim, pid, event_type, scenario)
    sim.hold(household, [home], SETTLE)
    return True


def death(sim: Simulation) -> bool:
    return _gone(sim, "died", "death")


def emigration(sim: Simulation) -> bool:
    return _gone(sim, "emigrated", "emigration")


def disappearance(sim: Simulation) -> bool:
    return _gone(sim, "disappeared", "disappearance")


def cpr_number_change(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng
    roles = ("applicant",) if rng.random() < 0.6 else ("spouse", "child")
    found = _member(sim, BENEFITS, roles)
    if found is None:
        return False
    c, pid = found
    role = w.cases[c].role_of(pid)
    steps.cpr_number_changed(sim, pid, "cpr_number_change")
    delay = rng.randint(2 * HOUR, 3 * DAY)
    home = w.persons[pid].address

    def follow_up() -> None:
        if role == "applicant" and rng.random() < 0.7:
            if rng.random() < 0.6:
                steps.income(sim, pid, steps.wage(sim), "cpr_number_change")
            else:
                steps.benefit(sim, pid, "benefit_started",
                              rng.choice(sorted(impact.SUPPORT_BENEFITS)), "cpr_number_change")
        else:
            steps.gone(sim, pid, "died" if role != "child" else "emigrated", "cpr_number_change")

    sim.after(delay, follow_up)
    sim.hold([pid], [home], delay + 60)
    return True


def master_data(sim: Simulation) -> bool:
    w = sim.world
    if sim.rng.random() < 0.6:
        found = _member(sim, BENEFITS,
                        ("applicant", "spouse", "child"), at_home=False)
        pid = None if found is None else found[1]
    else:
        pid = sim.pick_noise_person()
    if pid is None or not w.persons[pid].registered:
        return False
    steps.master_data(sim, pid, "master_data")
    return True


def unknown_type(sim: Simulation) -> bool:
    """A CPR event type the service has no model for (custody, A40), about a case member living
    at home on a home with no other case: raised for exactly the member's cases."""
    w = sim.world
    found = _member(sim, BENEFITS,
                    ("applicant", "spouse", "child"))
    if found is None:
        return False
    _, pid = found
    p = w.persons[pid]
    if sorted(w.cases_of(pid)) != sorted(w.cases_at(p.address)):
        return False
    event = builders.cpr(sim.event_id(), sim.stamp("cpr"), "custody_changed", p.cpr,
                         code="A40", fields={"date": steps.recent(sim, 5).isoformat(),
                                             "custody": sim.rng.choice(("joint", "sole"))})
    sim.emit(event, "unknown_type", impact.unknown(w, pid))
    return True
