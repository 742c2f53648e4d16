"""The generator's own model of the municipality: who lives where, who is on which case.

This is the simulation's ground truth, kept in step with the event stream exactly the way the
service keeps its register: every valid event is applied in arrival order (moves, deaths, births,
marriages, CPR number changes, DAR changes), malformed lines and redeliveries never are. Labels are
computed from this state *before* each event is applied (see :mod:`.impact`).

The vocabulary follows DOMAIN.md: a case's **home** is where its applicant is registered, it is
**together** when every member still living in Denmark is registered there, and its **household**
is everyone registered at the home.

Besides the register, the world keeps two kinds of bookkeeping that exist only in the generator:

* **locks** — persons and addresses that a scenario still has events pending for (or whose
  correlation window is still open). Other scenarios and noise leave them alone, so unrelated
  events can never change a label by coincidence.
* **frozen** — persons and addresses that are never used again (e.g. the household of a case
  whose applicant died: that case has no home any more, and the rules say little about it).

Collections that are iterated are lists or insertion-ordered dicts, never sets of strings, so the
output does not depend on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from triage.simulate.addresses import HOME_MUNICIPALITY, SimAddress

T = TypeVar("T")

GONE_STATUSES = frozenset({"70", "80", "90"})
"""CPR status: disappeared, emigrated, dead. Such a person lives at no address in Denmark."""

KONTANTHJAELP = "kontanthjaelp"
RESSOURCEFORLOEB = "ressourceforloebsydelse"
SYGEDAGPENGE = "sygedagpenge"
LEDIGHEDSYDELSE = "ledighedsydelse"
BENEFITS = (KONTANTHJAELP, RESSOURCEFORLOEB, SYGEDAGPENGE, LEDIGHEDSYDELSE)


@dataclass(slots=True)
class Person:
    pid: int
    cpr: str
    birth_date: date
    female: bool
    address: int | None
    civil_status: str = "U"
    spouse: int | None = None
    status: str = "01"
    protected: bool = False

    @property
    def registered(self) -> bool:
        return self.address is not None and self.status not in GONE_STATUSES

    def age(self, on: date) -> int:
        b = self.birth_date
        return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


@dataclass(slots=True)
class Case:
    index: int
    case_id: str
    benefit: str
    unit: str
    members: list[tuple[int, str]]
    """(pid, role) with role applicant, spouse or child; the applicant first."""
    municipality_code: str = HOME_MUNICIPALITY

    @property
    def applicant(self) -> int:
        return self.members[0][0]

    def role_of(self, pid: int) -> str | None:
        for member, role in self.members:
            if member == pid:
                return role
        return None


class World:
    """Persons, addresses, cases, and the indexes between them."""

    def __init__(self) -> None:
        self.persons: list[Person] = []
        self.addresses: list[SimAddress] = []
        self.cases: list[Case] = []
        self.residents: list[dict[int, None]] = []
        self.member_of: dict[int, list[int]] = {}
        self.applicant_of: dict[int, list[int]] = {}
        self.by_cpr: dict[str, int] = {}
        self.home_dwellings: list[int] = []
        """Ordinary addresses created in the home municipality (check the municipality code
        before use: a boundary change can move one out)."""
        self.pseudo_addresses: list[int] = []
        self.neighbour_dwellings: dict[str, list[int]] = {}
        self.streets: dict[tuple[str, str], list[int]] = {}
        """(municipality, road code) as built → its addresses (renames and boundary changes
        happen later: check the current name and municipality before use)."""
        self.locked_persons: dict[int, int] = {}
        self.locked_addresses: dict[int, int] = {}
        self.frozen_persons: set[int] = set()
        self.frozen_addresses: set[int] = set()

    # --- construction -------------------------------------------------------------------------

    def add_address(self, address: SimAddress) -> None:
        assert address.aid == len(self.addresses)
        self.addresses.append(address)
        self.residents.append({})
        key = (address.municipality_code, address.road_code)
        self.streets.setdefault(key, []).append(address.aid)

    def add_person(self, cpr: str, birth: date, female: bool, address: int | None,
                   status: str = "01", civil_status: str = "U") -> int:
        pid = len(self.persons)
        self.persons.append(Person(pid, cpr, birth, female, None, civil_status, None, status))
        self.by_cpr[cpr] = pid
        if address is not None:
            self.move(pid, address)
        return pid

    def add_case(self, case_id: str, benefit: str, unit: str,
                 members: list[tuple[int, str]]) -> Case:
        case = Case(len(self.cases), case_id, benefit, unit, members)
        self.cases.append(case)
        for pid, _ in members:
            self.member_of.setdefault(pid, []).append(case.index)
        self.applicant_of.setdefault(case.applicant, []).append(case.index)
        return case

    # --- register queries (DOMAIN.md vocabulary) ------------------------------------------------

    def home(self, c: int) -> int | None:
        """Where the case's applicant is registered."""
        return self.persons[self.cases[c].applicant].address

    def cases_at(self, aid: int | None) -> list[int]:
        """Cases whose home is ``aid``."""
        if aid is None:
            return []
        applicant_of = self.applicant_of
        return [c for pid in self.residents[aid] if pid in applicant_of for c in applicant_of[pid]]

    def is_case_home(self, aid: int) -> bool:
        applicant_of = self.applicant_of
        return any(pid in applicant_of for pid in self.residents[aid])

    def cases_of(self, pid: int) -> list[int]:
        """Cases the person is a member of."""
        return self.member_of.get(pid, [])

    def together(self, c: int) -> bool:
        """Every member still living in Denmark is registered at the home."""
        home = self.home(c)
        if home is None:
            return False
        for pid, _ in self.cases[c].members:
            p = self.persons[pid]
            if p.status not in GONE_STATUSES and p.address != home:
                return False
        return True

    def household(self, c: int) -> list[int]:
        """Everyone registered at the case's home."""
        home = self.home(c)
        return [] if home is None else list(self.residents[home])

    def related_cases(self, pid: int) -> list[int]:
        """Cases the person is a member of, or whose household the person belongs to."""
        out = dict.fromkeys(self.cases_of(pid))
        out.update(dict.fromkeys(self.cases_at(self.persons[pid].address)))
        return list(out)

    def address_json(self, aid: int | None) -> dict[str, Any] | None:
        return None if aid is None else self.addresses[aid].as_json()

    def person_json(self, pid: int) -> dict[str, Any]:
        """The person as CONTRACT.md "Reference data / persons" describes a record."""
        p = self.persons[pid]
        return {
            "cpr": p.cpr,
            "address": self.address_json(p.address),
            "civil_status": p.civil_status,
            "spouse_cpr": None if p.spouse is None else self.persons[p.spouse].cpr,
            "birth_date": p.birth_date.isoformat(),
            "status": p.status,
        }

    def case_json(self, c: int) -> dict[str, Any]:
        case = self.cases[c]
        return {
            "case_id": case.case_id,
            "benefit": case.benefit,
            "municipality_code": case.municipality_code,
            "unit": case.unit,
            "members": [{"cpr": self.persons[pid].cpr, "role": role}
                        for pid, role in case.members],
        }

    # --- generator bookkeeping ------------------------------------------------------------------

    def person_free(self, pid: int) -> bool:
        """Registered, alive, and not locked or frozen (its address neither)."""
        p = self.persons[pid]
        return (p.registered and pid not in self.locked_persons
                and pid not in self.frozen_persons and self.address_free(p.address))

    def address_free(self, aid: int | None) -> bool:
        return (aid is not None and aid not in self.locked_addresses
                and aid not in self.frozen_addresses)

    def is_noise_person(self, pid: int) -> bool:
        """A free person who is on no case and lives at no case home: events about them affect
        nothing."""
        if pid in self.member_of or not self.person_free(pid):
            return False
        return not self.is_case_home(self.persons[pid].address)  # type: ignore[arg-type]

    def is_empty_destination(self, aid: int, municipality: str = HOME_MUNICIPALITY) -> bool:
        """Nobody registered there, an ordinary dwelling, usable."""
        a = self.addresses[aid]
        return (not self.residents[aid] and not a.retired and self.address_free(aid)
                and a.municipality_code == municipality and not a.no_fixed_address)

    def is_noise_destination(self, aid: int, municipality: str = HOME_MUNICIPALITY) -> bool:
        """An ordinary dwelling whose residents (if any) are all on no case: moving in there
        affects nothing."""
        a = self.addresses[aid]
        if a.retired or not self.address_free(aid) or a.municipality_code != municipality:
            return False
        return all(pid not in self.member_of and pid not in self.locked_persons
                   for pid in self.residents[aid])

    def lock(self, pids: Iterable[int] = (), aids: Iterable[int | None] = ()) -> None:
        for pid in pids:
            self.locked_persons[pid] = self.locked_persons.get(pid, 0) + 1
        for aid in aids:
            if aid is not None:
                self.locked_addresses[aid] = self.locked_addresses.get(aid, 0) + 1

    def unlock(self, pids: Iterable[int] = (), aids: Iterable[int | None] = ()) -> None:
        for table, keys in ((self.locked_persons, pids), (self.locked_addresses, aids)):
            for key in keys:
                if key is None:
                    continue
                table[key] -= 1
                if not table[key]:
                    del table[key]

    def freeze_case(self, c: int) -> None:
        """Never touch this case's people or home again."""
        home = self.home(c)
        self.frozen_persons.update(pid for pid, _ in self.cases[c].members)
        if home is not None:
            self.frozen_persons.update(self.residents[home])
            self.frozen_addresses.add(home)

    # --- register changes (what a valid event does) ----------------------------------------------

    def move(self, pid: int, aid: int | None) -> None:
        p = self.persons[pid]
        if p.address is not None:
            del self.residents[p.address][pid]
        p.address = aid
        if aid is not None:
            self.residents[aid][pid] = None

    def leave(self, pid: int, status: str) -> None:
        """Death (90), emigration (80) or disappearance (70)."""
        self.move(pid, None)
        p = self.persons[pid]
        p.status = status
        if status == "90":
            p.civil_status = "D"

    def change_cpr(self, pid: int, new_cpr: str) -> None:
        p = self.persons[pid]
        del self.by_cpr[p.cpr]
        p.cpr = new_cpr
        self.by_cpr[new_cpr] = pid

    def set_civil_status(self, pid: int, status: str, spouse: int | None) -> None:
        p = self.persons[pid]
        p.civil_status = status
        p.spouse = spouse


def pick(rng: random.Random, items: Sequence[T], accept: Callable[[T], bool],
         tries: int = 300) -> T | None:
    """A random element of ``items`` that ``accept`` accepts, or None. Rejection sampling, then
    a scan from a random offset so a rare candidate is still found."""
    n = len(items)
    if not n:
        return None
    for _ in range(tries):
        item = items[rng.randrange(n)]
        if accept(item):
            return item
    offset = rng.randrange(n)
    for i in range(n):
        item = items[(offset + i) % n]
        if accept(item):
            return item
    return None
