"""The case index: active benefit cases, their members, and where each case lives.

A case's **home** is where its applicant is registered; it is **together** when every member who
still lives in Denmark is registered at the home; its **household** is everyone registered at the
home, members or not (DOMAIN.md, "CPR: address changes"). Home, together and household are not
stored: they are read from the :class:`~triage.register.Register` at the moment an event is
judged, so they always reflect every earlier event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from triage.models.reference import CaseRecord
from triage.register import Register


class MemberFields(Protocol):
    @property
    def cpr(self) -> str: ...
    @property
    def role(self) -> str: ...


class CaseFields(Protocol):
    """A case record as read: a :class:`CaseRecord`, or the reference file reader's compiled
    twin of it (:mod:`triage.snapshot`)."""

    @property
    def case_id(self) -> str: ...
    @property
    def benefit(self) -> str: ...
    @property
    def municipality_code(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def members(self) -> Sequence[MemberFields]: ...
    @property
    def applicant(self) -> str | None: ...


@dataclass(slots=True)
class Case:
    """An active case as the core uses it: members by current CPR number and role."""

    case_id: str
    benefit: str
    municipality_code: str
    unit: str
    members: dict[str, str] = field(default_factory=dict)

    @property
    def applicant(self) -> str | None:
        return next((cpr for cpr, role in self.members.items() if role == "applicant"), None)


class CaseIndex:
    """Cases by id and by member, over a register that tells where members live."""

    def __init__(self, register: Register, cases: Iterable[CaseRecord] = ()) -> None:
        self.register = register
        self._cases: dict[str, Case] = {}
        self._by_member: dict[str, list[str]] = {}
        self._by_applicant: dict[str, list[Case]] = {}
        for record in cases:
            self.add(record)

    def add(self, record: CaseFields) -> None:
        case = Case(record.case_id, record.benefit, record.municipality_code, record.unit,
                    {self.register.resolve(m.cpr): m.role for m in record.members})
        self._cases[case.case_id] = case
        for cpr, role in case.members.items():
            self._by_member.setdefault(cpr, []).append(case.case_id)
            if role == "applicant":
                self._by_applicant.setdefault(cpr, []).append(case)

    def upsert(self, record: CaseRecord) -> None:
        """Add a case or replace what is known of it (members may have changed), e.g. from a
        fresh case-system lookup."""
        old = self._cases.pop(record.case_id, None)
        if old is not None:
            for cpr, role in old.members.items():
                ids = self._by_member.get(cpr, [])
                if record.case_id in ids:
                    ids.remove(record.case_id)
                if role == "applicant":
                    self._by_applicant[cpr] = [c for c in self._by_applicant.get(cpr, [])
                                               if c.case_id != record.case_id]
        self.add(record)

    def __len__(self) -> int:
        return len(self._cases)

    def get(self, case_id: str) -> Case:
        return self._cases[case_id]

    def of_member(self, cpr: str | None) -> list[Case]:
        """Cases the person (by any of their numbers) is a member of."""
        if cpr is None:
            return []
        ids = self._by_member.get(self.register.resolve(cpr))
        return [self._cases[i] for i in ids] if ids else []

    def at_home(self, address_id: str | None) -> list[Case]:
        """Cases whose home is the address: cases whose applicant is registered there."""
        found: list[Case] = []
        by_applicant = self._by_applicant
        for resident in self.register.iter_residents(address_id):
            cases = by_applicant.get(resident)
            if cases:
                found.extend(cases)
        return found

    def home(self, case: Case) -> str | None:
        applicant = case.applicant
        return self.register.address_id_of(applicant) if applicant else None

    def together(self, case: Case, home: str | None = None) -> bool:
        """Every member still living in Denmark is registered at the home."""
        home = home if home is not None else self.home(case)
        if home is None:
            return False
        for cpr in case.members:
            person = self.register.get(cpr)
            if person is None:
                return False  # a member the register does not know is not known to be at home
            if person.lives_in_denmark and person.address_id != home:
                return False
        return True

    def household(self, case: Case, home: str | None = None) -> frozenset[str]:
        home = home if home is not None else self.home(case)
        return self.register.residents(home)

    def renumber(self, old: str, new: str) -> None:
        """Move case memberships from ``old`` to ``new`` (after the register renumbered)."""
        ids = self._by_member.pop(old, [])
        for case_id in ids:
            members = self._cases[case_id].members
            members[new] = members.pop(old)
        if ids:
            self._by_member.setdefault(new, []).extend(ids)
        applicant_of = self._by_applicant.pop(old, None)
        if applicant_of:
            self._by_applicant.setdefault(new, []).extend(applicant_of)
