"""The expected outcome of each event: DOMAIN.md's impact rules, read by the generator.

Every function here returns the cases (indices into ``World.cases``) that the rules say an event
affects, judged against the world *before* the event is applied — the register state after every
earlier-arrived valid event, which is what the service judges against. An empty list means the
event is expected to be suppressed; a non-empty one means raised, with one task per listed case.

The one thing these functions cannot see from the register alone is a household move spread over
several events: the scenario that stages it knows whether the household moves together, and
passes that as a :class:`Group` (the household fixed when the first move arrives, DOMAIN.md
rule 2). Everything else is derived from the state, so a coincidence the scenarios did not plan
for is still labelled by the rules rather than by intent.
"""

from __future__ import annotations

from dataclasses import dataclass

from triage.simulate.world import KONTANTHJAELP, RESSOURCEFORLOEB, World

SUPPORT_BENEFITS = frozenset({
    "folkepension", "foertidspension", "sygedagpenge", "barselsdagpenge", "a_dagpenge", "su",
    "fleksydelse", "efterloen",
})
OTHER_BENEFITS = ("boligstoette", "boerne_og_ungeydelse", "boernetilskud")


@dataclass(frozen=True, slots=True)
class Group:
    """A staged household move: the cases whose home the household left (fixed when the first
    move arrived) and whether the group as a whole affects them."""

    cases: frozenset[int]
    raised: bool


def move(w: World, pid: int, to_aid: int, group: Group | None = None) -> list[int]:
    """``address_changed`` from the person's current address to another address id."""
    p = w.persons[pid]
    to = w.addresses[to_aid]
    assert p.address != to_aid, "use administrative_move for an unchanged address id"
    in_group = group.cases if group is not None else frozenset()
    affected: dict[int, None] = {}
    if group is not None and group.raised:
        # every event of a household move that affects is raised, for every case whose home
        # the household left — even a late member whose own address is no longer that home
        affected.update(dict.fromkeys(sorted(group.cases)))
    related = dict.fromkeys(w.cases_of(pid))
    related.update(dict.fromkeys(w.cases_at(p.address)))  # p lives at C's home
    for c in related:
        case = w.cases[c]
        if c in in_group:
            continue
        member = case.role_of(pid) is not None
        if member and not w.together(c):
            affected[c] = None  # rule 2: a member of a case that is not together
        elif to.municipality_code != case.municipality_code:
            affected[c] = None  # rule 2: handover to another municipality
        elif to.no_fixed_address:
            affected[c] = None  # rule 2: no fixed address
        elif w.household(c) == [pid]:
            if w.residents[to_aid]:
                affected[c] = None  # a group of one moving in with others
        else:
            affected[c] = None  # one of a household moving alone: the household splits
    for c in w.cases_at(to_aid):  # rule 3: someone moves in with the recipient household
        if c not in related and c not in in_group:
            affected[c] = None
    return list(affected)


def administrative_move(w: World, pid: int, municipality_changed: bool) -> list[int]:
    """``address_changed`` whose from and to are the same address id (rule 1)."""
    return list(w.cases_of(pid)) if municipality_changed else []


def person_gone(w: World, pid: int) -> list[int]:
    """Death, emigration, disappearance: the person's cases and the cases whose household the
    person belonged to."""
    return w.related_cases(pid)


def civil_status(w: World, pid: int) -> list[int]:
    """Marriage, divorce, partnership…: kontanthjælp cases of which the carrier is a member."""
    return [c for c in w.cases_of(pid) if w.cases[c].benefit == KONTANTHJAELP]


def child_added(w: World, parents: list[int]) -> list[int]:
    """Birth: kontanthjælp and ressourceforløbsydelse cases of which a parent is a member."""
    out: dict[int, None] = {}
    for parent in parents:
        for c in w.cases_of(parent):
            if w.cases[c].benefit in (KONTANTHJAELP, RESSOURCEFORLOEB):
                out[c] = None
    return list(out)


def _by_role(w: World, pid: int) -> list[int]:
    """Cases where the person is the applicant, or the spouse on a kontanthjælp case."""
    out = []
    for c in w.cases_of(pid):
        role = w.cases[c].role_of(pid)
        if role == "applicant" or (role == "spouse" and w.cases[c].benefit == KONTANTHJAELP):
            out.append(c)
    return out


def benefit(w: World, pid: int, event_type: str, name: str) -> list[int]:
    """ATP benefit started/changed/ended."""
    if event_type == "benefit_ended" or name not in SUPPORT_BENEFITS:
        return []
    return _by_role(w, pid)


def income(w: World, pid: int, amount: float) -> list[int]:
    return _by_role(w, pid) if amount > 0 else []


def single_status(w: World, pid: int) -> list[int]:
    return [c for c in w.cases_of(pid) if w.cases[c].benefit == KONTANTHJAELP]


def dar(w: World, aid: int, event_type: str) -> list[int]:
    """DAR: a boundary change or a retirement affects the cases whose home the address is."""
    if event_type in ("municipality_changed", "address_retired"):
        return w.cases_at(aid)
    return []


def unknown(w: World, pid: int) -> list[int]:
    """An event type the service does not know is raised for every case it touches."""
    return w.related_cases(pid)
