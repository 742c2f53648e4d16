"""Emit-label-apply steps shared by the scenarios and the noise.

Each step builds one event with :mod:`.builders`, labels it with :mod:`.impact` against the world
as it stands, writes it, and then applies it to the world — in that order, like the service. The
module also holds the eligibility tests scenarios use to choose whom to involve.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from triage.simulate import builders, impact
from triage.simulate.timestamps import HOUR

if TYPE_CHECKING:
    from triage.simulate.engine import Simulation
    from triage.simulate.world import World

COUNTRIES = ("SE", "NO", "DE", "PL", "GB", "ES", "RO", "UA", "US", "TR")

# --- eligibility ---------------------------------------------------------------------------------


def case_free(w: World, c: int) -> bool:
    """The applicant is registered and nobody on the case, nor the home, is locked or frozen."""
    case = w.cases[c]
    home = w.home(c)
    if home is None or not w.person_free(case.applicant):
        return False
    for pid, _ in case.members:
        if pid in w.locked_persons or pid in w.frozen_persons:
            return False
    return w.address_free(home)


def case_clean(w: World, c: int) -> bool:
    """A case whose household can make a textbook move: free, together, at an ordinary dwelling
    in its own municipality, every case sharing the home together too, every resident free."""
    if not case_free(w, c):
        return False
    home = w.home(c)
    assert home is not None
    a = w.addresses[home]
    if a.retired or a.no_fixed_address or a.municipality_code != w.cases[c].municipality_code:
        return False
    if not all(w.together(other) for other in w.cases_at(home)):
        return False
    return all(w.person_free(pid) for pid in w.residents[home])


def members_at_home(w: World, c: int) -> list[int]:
    home = w.home(c)
    return [pid for pid, _ in w.cases[c].members if w.persons[pid].address == home]


# --- dates and spacing ---------------------------------------------------------------------------


def recent(sim: Simulation, max_days: int) -> date:
    """A date up to ``max_days`` before today."""
    return sim.today() - timedelta(days=sim.rng.randint(0, max_days))


def move_date(sim: Simulation) -> date:
    """People register a move up to five days after it, or a few days ahead."""
    return sim.today() + timedelta(days=sim.rng.randint(-5, 3))


def spread(sim: Simulation, n: int, max_span: int = 20 * HOUR) -> list[int]:
    """Offsets for ``n`` events of one group: the first at 0, the others seconds to hours later,
    all within ``max_span`` (below the 24-hour correlation window)."""
    rng = sim.rng
    span = rng.choice((120, 900, 2 * HOUR, 6 * HOUR, max_span))
    return [0, *sorted(rng.randint(1, span) for _ in range(n - 1))]


# --- CPR ------------------------------------------------------------------------------------------


def move(sim: Simulation, pid: int, to: int, when: date, scenario: str,
         group: impact.Group | None = None, from_: Any = "current") -> None:
    """``address_changed`` of ``pid`` to address ``to``. ``from_`` defaults to the person's
    registered address; a newcomer passes an address outside the register or None."""
    w = sim.world
    p = w.persons[pid]
    origin = w.address_json(p.address) if from_ == "current" else from_
    late = scenario == "noise" and sim.rng.random() < 0.03
    event = builders.address_changed(sim.event_id(), sim.stamp("cpr", late), p.cpr, origin,
                                     w.addresses[to].as_json(), when.isoformat())
    sim.emit(event, scenario, impact.move(w, pid, to, group))
    w.move(pid, to)


def administrative_move(sim: Simulation, pid: int, before: dict[str, Any], scenario: str) -> None:
    """CPR re-registers a resident after a DAR change: same address id, new attributes."""
    w = sim.world
    p = w.persons[pid]
    after = w.address_json(p.address)
    assert after is not None and after["address_id"] == before["address_id"]
    event = builders.address_changed(sim.event_id(), sim.stamp("cpr"), p.cpr, before, after,
                                     sim.today().isoformat())
    changed = before["municipality_code"] != after["municipality_code"]
    sim.emit(event, scenario, impact.administrative_move(w, pid, changed))


def gone(sim: Simulation, pid: int, event_type: str, scenario: str) -> None:
    """Death, emigration or disappearance; freezes the case when its applicant leaves."""
    w = sim.world
    p = w.persons[pid]
    fields: dict[str, Any] = {"date": recent(sim, 3).isoformat()}
    if event_type == "emigrated":
        fields["country_code"] = sim.rng.choice(COUNTRIES)
    late = scenario == "noise" and sim.rng.random() < 0.03
    event = builders.cpr(sim.event_id(), sim.stamp("cpr", late), event_type, p.cpr,
                         fields=fields)
    sim.emit(event, scenario, impact.person_gone(w, pid))
    for c in w.cases_of(pid):
        if w.cases[c].applicant == pid:
            w.freeze_case(c)  # no home any more: leave the rest of the household alone
    w.leave(pid, {"died": "90", "emigrated": "80", "disappeared": "70"}[event_type])


def civil_status(sim: Simulation, a: int, b: int, status: str, scenario: str) -> None:
    """Marriage (G), partnership (P) or divorce (F) of ``a`` and ``b``: the primary event on
    ``a`` now, the derived copy on ``b`` a little later, each labelled for its own carrier."""
    w = sim.world
    code = builders.CIVIL_CODES[status]
    marker = "PA" if status == "P" else "ÆG"
    when = recent(sim, 2).isoformat()

    def emit(carrier: int, other: int, derived: str | None) -> None:
        event = builders.cpr(
            sim.event_id(), sim.stamp("cpr"), "civil_status_changed", w.persons[carrier].cpr,
            code=code, derived_marker=derived,
            fields={"civil_status": status, "spouse_cpr": w.persons[other].cpr, "date": when})
        sim.emit(event, scenario, impact.civil_status(w, carrier))
        w.set_civil_status(carrier, status, None if status == "F" else other)

    emit(a, b, None)
    delay = sim.rng.randint(1, 1800)
    sim.after(delay, lambda: emit(b, a, marker))
    sim.hold((a, b), (), delay + 60)


def child_added(sim: Simulation, mother: int, father: int | None, scenario: str) -> None:
    """A birth: primary event on the new child at the mother's address, then derived copies on
    each parent. All three carry the same label (the birth's)."""
    w = sim.world
    rng = sim.rng
    m = w.persons[mother]
    home = m.address
    assert home is not None
    born = recent(sim, 4)
    female = rng.random() < 0.5
    jan1 = (born.month, born.day) == (1, 1)
    child_cpr = sim.issuer.issue(born, female, modulus11=not (jan1 and rng.random() < 0.5))
    parents = [mother] if father is None else [mother, father]
    cases = impact.child_added(w, parents)
    fields = {"child_cpr": child_cpr, "parents": [w.persons[p].cpr for p in parents],
              "address": w.address_json(home), "date": born.isoformat()}
    event = builders.cpr(sim.event_id(), sim.stamp("cpr"), "child_added", child_cpr,
                         fields=fields)
    sim.emit(event, scenario, cases)
    w.add_person(child_cpr, born, female, home)

    def copy(parent: int, marker: str) -> None:
        event = builders.cpr(sim.event_id(), sim.stamp("cpr"), "child_added",
                             w.persons[parent].cpr, code=None, derived_marker=marker,
                             fields=dict(fields))
        sim.emit(event, scenario, cases)

    delays = sorted(rng.randint(1, 1200) for _ in parents)
    copies = [(mother, "MO")] + ([] if father is None else [(father, "FA")])
    rng.shuffle(copies)
    for (parent, marker), delay in zip(copies, delays, strict=True):
        sim.after(delay, partial(copy, parent, marker))
    sim.hold(parents, (home,), delays[-1] + 60)


def master_data(sim: Simulation, pid: int, scenario: str) -> None:
    w = sim.world
    p = w.persons[pid]
    kind = sim.rng.choice(("name_changed", "name_changed", "address_protection_changed",
                           "guardianship_changed"))
    fields = None
    if kind == "address_protection_changed":
        p.protected = not p.protected
        fields = {"protected": p.protected}
    event = builders.cpr(sim.event_id(), sim.stamp("cpr"), kind, p.cpr, fields=fields)
    sim.emit(event, scenario, [])


def cpr_number_changed(sim: Simulation, pid: int, scenario: str) -> None:
    """The old number in ``cpr``, the new one in ``new_cpr``; from now on the new one."""
    w = sim.world
    p = w.persons[pid]
    jan1 = (p.birth_date.month, p.birth_date.day) == (1, 1)
    new = sim.issuer.issue(p.birth_date, p.female, modulus11=not jan1)
    event = builders.cpr(sim.event_id(), sim.stamp("cpr"), "cpr_number_changed", p.cpr,
                         fields={"new_cpr": new})
    sim.emit(event, scenario, [])
    w.change_cpr(pid, new)


# --- ATP ------------------------------------------------------------------------------------------


def benefit(sim: Simulation, pid: int, event_type: str, name: str, scenario: str) -> None:
    w = sim.world
    rng = sim.rng
    today = sim.today()
    end = None
    if event_type == "benefit_ended":  # it ran for a while and stops now
        start = (today.replace(day=1) - timedelta(days=rng.randint(20, 700))).replace(day=1)
        end = today.isoformat()
    else:  # from the first of this month or the next
        start = (today.replace(day=1) + timedelta(days=rng.choice((0, 0, 31)))).replace(day=1)
    amount = 0 if event_type == "benefit_ended" else rng.randrange(1500, 22000, 25)
    late = scenario == "noise" and rng.random() < 0.03
    event = builders.atp(sim.event_id(), sim.stamp("atp", late), event_type, w.persons[pid].cpr,
                         benefit=name, amount=amount, period_from=start.isoformat(),
                         period_to=end)
    sim.emit(event, scenario, impact.benefit(w, pid, event_type, name))


def income(sim: Simulation, pid: int, amount: float, scenario: str) -> None:
    w = sim.world
    rng = sim.rng
    first = sim.today().replace(day=1)
    period = (first - timedelta(days=1)).strftime("%Y-%m")
    kind = rng.choice(("wage", "wage", "wage", "pension", "benefit", "other"))
    late = scenario == "noise" and rng.random() < 0.03
    event = builders.atp(sim.event_id(), sim.stamp("atp", late), "income_reported",
                         w.persons[pid].cpr, amount=amount, income_type=kind, period=period)
    sim.emit(event, scenario, impact.income(w, pid, amount))


def wage(sim: Simulation) -> float:
    """A monthly amount: whole kroner mostly, sometimes with øre."""
    rng = sim.rng
    amount = rng.randrange(800, 48000)
    return amount + rng.randrange(1, 100) / 100 if rng.random() < 0.3 else amount


def single_status(sim: Simulation, pid: int, scenario: str) -> None:
    w = sim.world
    event = builders.atp(sim.event_id(), sim.stamp("atp"), "single_status_changed",
                         w.persons[pid].cpr, single=sim.rng.random() < 0.5)
    sim.emit(event, scenario, impact.single_status(w, pid))
