"""Scenarios with DAR address events (and CPR's administrative re-registrations after them).

* ``dar_address_change`` — a street renamed (every address on a short street), an entrance
  renumbered, a postcode changed; on case homes and elsewhere: suppressed. After a postcode
  change CPR re-registers the residents on the same address id (``address_changed`` with ``from``
  and ``to`` the same id): rule 1, suppressed.
* ``dar_municipality_change`` — a boundary change moves an address to 0573. On a case home:
  raised for the cases living there, and the residents' administrative re-registrations are
  raised for their cases (rule 1, second half). On an address with no case: suppressed.
* ``dar_address_retired`` — a case home retired while people live there: raised; an empty or
  case-less address retired: suppressed.

The address keeps its id; the world's copy changes, so every later event shows the new text.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from triage.simulate import builders, impact, steps
from triage.simulate.addresses import (
    BOUNDARY_NEIGHBOUR,
    HOME_MUNICIPALITY,
    MUNICIPALITIES,
    road_names,
)
from triage.simulate.timestamps import HOUR
from triage.simulate.world import pick

if TYPE_CHECKING:
    from triage.simulate.engine import Simulation

CHANGES = ("address_renamed", "address_renumbered", "postcode_changed")


def emit_change(sim: Simulation, aid: int, kind: str, scenario: str, value: Any = None) -> None:
    """One DAR event for address ``aid``, then apply it (``value``: the new name/number/…)."""
    w = sim.world
    a = w.addresses[aid]
    before = a.as_json()
    cases = impact.dar(w, aid, kind)
    if kind == "address_retired":
        a.retired = True
        after = None
    else:
        if kind == "address_renamed":
            a.road_name = value
        elif kind == "address_renumbered":
            a.house_number = value
        elif kind == "postcode_changed":
            a.postcode, a.city = value
        elif kind == "municipality_changed":
            a.municipality_code = value
        a.changed()
        after = a.as_json()
    sim.emit(builders.dar(sim.event_id(), sim.stamp("dar"), kind, before, after), scenario, cases)


def change(sim: Simulation, aid: int, kind: str, scenario: str) -> None:
    """Rename (the whole street if short), renumber (the whole entrance) or re-postcode ``aid``,
    re-registering residents after a postcode change."""
    w = sim.world
    rng = sim.rng
    a = w.addresses[aid]
    targets = [aid]
    value: Any
    if kind in ("address_renamed", "address_renumbered"):
        street = w.streets.get((a.municipality_code, a.road_code), [])
        same_street = [x for x in street
                       if w.addresses[x].municipality_code == a.municipality_code
                       and w.addresses[x].road_code == a.road_code
                       and w.addresses[x].road_name == a.road_name
                       and (kind == "address_renamed"
                            or w.addresses[x].house_number == a.house_number)]
        if (aid in same_street and len(same_street) <= 16
                and all(w.address_free(x) for x in same_street)):
            targets = same_street
    if kind == "address_renamed":
        value = road_names(rng, 1)[0]
    elif kind == "address_renumbered":
        base = "".join(ch for ch in a.house_number if ch.isdigit())
        value = base + rng.choice("ABCD") if base == a.house_number else base
    else:
        options = [pc for pc in MUNICIPALITIES[a.municipality_code] if pc[0] != a.postcode]
        value = rng.choice(options)
    residents = [pid for x in targets for pid in w.residents[x]]
    last = 2 * len(targets) + 3 * HOUR
    sim.hold(residents, targets, last + 60)
    for i, x in enumerate(targets):
        sim.after(2 * i, partial(emit_change, sim, x, kind, scenario, value))
    if kind == "postcode_changed":
        before = a.as_json()
        for pid in residents:
            sim.after(rng.randint(60, 3 * HOUR),
                      partial(steps.administrative_move, sim, pid, before, scenario))


def _case_home(sim: Simulation,
               accept_resident: Callable[[int], bool] | None = None) -> int | None:
    """The home of a free case at an ordinary Esbjerg dwelling whose residents are all free
    (and all accepted by ``accept_resident``)."""
    w = sim.world

    def fits(c: int) -> bool:
        home = w.home(c)
        if not steps.case_free(w, c) or home is None or w.addresses[home].no_fixed_address:
            return False
        if w.addresses[home].retired or w.addresses[home].municipality_code != HOME_MUNICIPALITY:
            return False
        return all(w.person_free(pid) and (accept_resident is None or accept_resident(pid))
                   for pid in w.residents[home])

    c = sim.pick_case(fits)
    return None if c is None else w.home(c)


def dar_address_change(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng
    if rng.random() < 0.5:
        aid = _case_home(sim)
    else:
        aid = pick(rng, w.home_dwellings, lambda x: w.address_free(x)
                   and not w.addresses[x].retired and all(w.person_free(p)
                                                          for p in w.residents[x]))
    if aid is None:
        return False
    change(sim, aid, rng.choice(CHANGES), "dar_address_change")
    return True


def dar_municipality_change(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng
    if rng.random() < 0.6:
        aid = _case_home(sim, accept_resident=lambda pid: bool(w.cases_of(pid)))
    else:
        aid = sim.pick_noise_destination(occupied=rng.random() < 0.6)
    if aid is None:
        return False
    residents = list(w.residents[aid])
    before = w.addresses[aid].as_json()
    sim.hold(residents, [aid], 3 * HOUR + 60)
    sim.after(0, lambda: emit_change(sim, aid, "municipality_changed", "dar_municipality_change",
                                     BOUNDARY_NEIGHBOUR))
    for pid in residents:
        sim.after(rng.randint(60, 3 * HOUR), partial(steps.administrative_move, sim, pid, before,
                                                      "dar_municipality_change"))
    return True


def dar_address_retired(sim: Simulation) -> bool:
    w = sim.world
    rng = sim.rng
    roll = rng.random()
    if roll < 0.5:
        aid = _case_home(sim)
    elif roll < 0.8:
        aid = sim.pick_empty()
    else:
        aid = sim.pick_noise_destination(occupied=True)
    if aid is None:
        return False
    sim.hold(list(w.residents[aid]), [aid], 60)
    sim.after(0, lambda: emit_change(sim, aid, "address_retired", "dar_address_retired"))
    return True
