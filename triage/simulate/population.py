"""The municipality as it stands before the first event: addresses, households and cases.

:func:`build_world` lays out Esbjerg's dwellings and a few neighbours', fills them with
households (singles, married and cohabiting couples, families, single parents, flat-shares,
families with a lodger or a grown-up child at home), adds a few citizens without fixed address
and some who have died, emigrated or disappeared, and then opens benefit cases for a share of the
Esbjerg households.

Cases are built so that the corpus exercises the rules' corners:

* kontanthjælp lists the applicant, the spouse (when married and living there) and the children;
  ressourceforløbsydelse sometimes lists spouse and children; sygedagpenge and ledighedsydelse
  list only the applicant;
* some cases are not together (a member child is registered with its other parent elsewhere);
* some list a child who has emigrated (still together: only members living in Denmark count);
* a few homes hold two cases (cohabitants each with their own benefit);
* many homes hold people who are not on the case (cohabitants, lodgers, grown-up children).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from triage.simulate.addresses import (
    HOME_MUNICIPALITY,
    NEIGHBOURS,
    build_dwellings,
    build_pseudo_addresses,
)
from triage.simulate.cprnumbers import CprIssuer
from triage.simulate.world import (
    KONTANTHJAELP,
    LEDIGHEDSYDELSE,
    RESSOURCEFORLOEB,
    SYGEDAGPENGE,
    World,
)

HOME_SHARE = 0.85
PERSONS_PER_CASE = 13

UNITS = {
    KONTANTHJAELP: ("ydelsescenter", "ydelsescenter", "jobcenter"),
    RESSOURCEFORLOEB: ("jobcenter",),
    SYGEDAGPENGE: ("jobcenter", "borgerservice"),
    LEDIGHEDSYDELSE: ("jobcenter",),
}
PREFIX = {KONTANTHJAELP: "KH", RESSOURCEFORLOEB: "RF", SYGEDAGPENGE: "SD", LEDIGHEDSYDELSE: "LY"}


@dataclass(slots=True)
class Household:
    """Who moved in together (used only while building the world)."""

    aid: int
    parents: list[int] = field(default_factory=list)
    """The household's adult couple or single parent/adult."""
    children: list[int] = field(default_factory=list)
    others: list[int] = field(default_factory=list)
    """Lodgers, flatmates, grown-up children: never on the household's case."""


class PopulationBuilder:
    """Builds the initial :class:`World` from a seeded generator."""

    def __init__(self, rng: random.Random, issuer: CprIssuer, start: date) -> None:
        self.rng = rng
        self.issuer = issuer
        self.start = start
        self.world = World()

    # --- persons ---------------------------------------------------------------------------

    def birth_date(self, min_age: int, max_age: int, jan1: float = 0.03) -> date:
        """A birth date giving an age in [min_age, max_age] on the start date; with probability
        ``jan1`` 1 January (CPR's date for an unknown birth date)."""
        latest = self.start - timedelta(days=365 * min_age + 1)
        earliest = self.start - timedelta(days=365 * (max_age + 1) - 1)
        born = earliest + timedelta(days=self.rng.randrange((latest - earliest).days + 1))
        if self.rng.random() < jan1:
            born = date(born.year, 1, 1)
        return born

    def person(self, born: date, female: bool, aid: int | None, status: str = "01",
               civil_status: str = "U") -> int:
        jan1 = (born.month, born.day) == (1, 1)
        cpr = self.issuer.issue(born, female, modulus11=not (jan1 and self.rng.random() < 0.6))
        return self.world.add_person(cpr, born, female, aid, status, civil_status)

    def adult(self, aid: int | None, lo: int = 18, hi: int = 85, female: bool | None = None,
              **kw: str) -> int:
        if female is None:
            female = self.rng.random() < 0.5
        return self.person(self.birth_date(lo, hi), female, aid, **kw)

    def child(self, aid: int | None, hi: int = 17, **kw: str) -> int:
        return self.person(self.birth_date(0, hi, jan1=0.01), self.rng.random() < 0.5, aid, **kw)

    def couple(self, aid: int, lo: int, hi: int) -> list[int]:
        rng = self.rng
        same_sex = rng.random() < 0.05
        married = rng.random() < 0.6
        a = self.adult(aid, lo, hi, female=True)
        b = self.adult(aid, lo, hi, female=same_sex)
        if married:
            status = "P" if same_sex else "G"
            self.world.set_civil_status(a, status, b)
            self.world.set_civil_status(b, status, a)
        else:
            for pid in (a, b):
                self.world.set_civil_status(pid, rng.choice("UUUF"), None)
        return [a, b]

    def household(self, aid: int) -> Household:
        rng = self.rng
        h = Household(aid)
        kind = rng.choices(
            ("single", "couple", "family", "single_parent", "flatshare", "family_lodger",
             "family_grown_child", "elderly_couple"),
            weights=(34, 14, 22, 10, 4, 3, 5, 8))[0]
        if kind == "single":
            h.parents.append(self.adult(aid, 18, 90, civil_status=rng.choice("UUUFFE")))
        elif kind == "couple":
            h.parents += self.couple(aid, 20, 64)
        elif kind == "elderly_couple":
            h.parents += self.couple(aid, 65, 90)
        elif kind == "single_parent":
            h.parents.append(self.adult(aid, 22, 50, female=rng.random() < 0.85,
                                        civil_status=rng.choice("UUF")))
            h.children += [self.child(aid) for _ in range(rng.choice((1, 1, 2, 3)))]
        elif kind == "flatshare":
            h.others += [self.adult(aid, 18, 35) for _ in range(rng.choice((2, 2, 3)))]
        else:
            h.parents += self.couple(aid, 25, 55)
            h.children += [self.child(aid) for _ in range(rng.choice((1, 2, 2, 3)))]
            if kind == "family_lodger":
                h.others.append(self.adult(aid, 19, 40))
            elif kind == "family_grown_child":
                h.others.append(self.adult(aid, 18, 24))
        return h

    # --- the world --------------------------------------------------------------------------

    def build(self, n_persons: int) -> World:
        rng, world = self.rng, self.world
        n_households = n_persons / 2.2
        home = build_dwellings(rng, HOME_MUNICIPALITY, int(n_households * HOME_SHARE * 1.35) + 60,
                               0)
        for a in home:
            world.add_address(a)
        world.home_dwellings = [a.aid for a in home]
        for a in build_pseudo_addresses(rng, len(world.addresses)):
            world.add_address(a)
            world.pseudo_addresses.append(a.aid)
        for muni in NEIGHBOURS:
            count = int(n_households * (1 - HOME_SHARE) * 1.4 / len(NEIGHBOURS)) + 40
            dwellings = build_dwellings(rng, muni, count, len(world.addresses))
            for a in dwellings:
                world.add_address(a)
            world.neighbour_dwellings[muni] = [a.aid for a in dwellings]

        free = {HOME_MUNICIPALITY: list(world.home_dwellings)}
        free.update({m: list(world.neighbour_dwellings[m]) for m in NEIGHBOURS})
        for addresses in free.values():
            rng.shuffle(addresses)
        home_households: list[Household] = []
        while len(world.persons) < n_persons * 0.985:
            muni = HOME_MUNICIPALITY if rng.random() < HOME_SHARE else rng.choice(NEIGHBOURS)
            if len(free[muni]) < 20:  # keep some empty dwellings to move to
                continue
            h = self.household(free[muni].pop())
            if muni == HOME_MUNICIPALITY:
                home_households.append(h)
        for _ in range(max(3, n_persons // 200)):  # no fixed address (status 03)
            self.adult(rng.choice(world.pseudo_addresses[:5]), 20, 70, status="03")
        for _ in range(max(3, n_persons // 100)):  # dead, emigrated, disappeared
            status = rng.choice(("90", "90", "80", "80", "70"))
            self.adult(None, 18, 95, status=status, civil_status="D" if status == "90" else "U")

        self.open_cases(home_households, free, max(12, n_persons // PERSONS_PER_CASE))
        return world

    # --- cases ------------------------------------------------------------------------------

    def open_cases(self, households: list[Household], free: dict[str, list[int]],
                   target: int) -> None:
        rng, world = self.rng, self.world
        order = list(households)
        rng.shuffle(order)
        serial = 0

        def new_case(benefit: str, members: list[tuple[int, str]]) -> None:
            nonlocal serial
            serial += 1
            year = rng.randrange(2019, self.start.year)
            world.add_case(f"{PREFIX[benefit]}-{year}-{serial:05d}", benefit,
                           rng.choice(UNITS[benefit]), members)

        for h in order:
            if len(world.cases) >= target:
                break
            candidates = [p for p in h.parents if 18 <= world.persons[p].age(self.start) <= 64]
            grown = [p for p in h.others if world.persons[p].age(self.start) <= 29]
            if grown and rng.random() < (0.5 if not candidates else 0.15):
                # a young adult on kontanthjælp living with parents or flatmates
                new_case(KONTANTHJAELP, [(rng.choice(grown), "applicant")])
                continue
            if not candidates:
                continue
            applicant = rng.choice(candidates)
            partner = next((p for p in h.parents if p != applicant), None)
            benefit = rng.choices((KONTANTHJAELP, RESSOURCEFORLOEB, SYGEDAGPENGE,
                                   LEDIGHEDSYDELSE), weights=(40, 20, 25, 15))[0]
            married = partner is not None and world.persons[applicant].spouse == partner
            members = [(applicant, "applicant")]
            if married and (benefit == KONTANTHJAELP
                            or (benefit == RESSOURCEFORLOEB and rng.random() < 0.5)):
                members.append((partner, "spouse"))  # type: ignore[arg-type]
            if benefit == KONTANTHJAELP or (benefit == RESSOURCEFORLOEB and rng.random() < 0.6):
                members += [(c, "child") for c in h.children]
                roll = rng.random()
                if roll < 0.08:
                    members.append((self.child_elsewhere(applicant, free), "child"))
                elif roll < 0.11:
                    members.append((self.child(None, status="80"), "child"))
            new_case(benefit, members)
            in_case = {pid for pid, _ in members}
            if (partner is not None and partner not in in_case and rng.random() < 0.12
                    and 18 <= world.persons[partner].age(self.start) <= 64):
                # the partner has a case of their own: two cases share this home
                own = rng.choice((RESSOURCEFORLOEB, SYGEDAGPENGE, LEDIGHEDSYDELSE))
                new_case(own, [(partner, "applicant")])

    def child_elsewhere(self, parent: int, free: dict[str, list[int]]) -> int:
        """A child registered with its other parent at another address (the case is then not
        together)."""
        rng = self.rng
        muni = HOME_MUNICIPALITY if rng.random() < 0.8 else rng.choice(NEIGHBOURS)
        if len(free[muni]) < 10:
            muni = HOME_MUNICIPALITY
        aid = free[muni].pop()
        self.adult(aid, 25, 55, female=not self.world.persons[parent].female)
        return self.child(aid, hi=16)


def build_world(rng: random.Random, issuer: CprIssuer, start: date, n_persons: int) -> World:
    """The register and the case system before the first event."""
    return PopulationBuilder(rng, issuer, start).build(n_persons)
