"""Reference data (CONTRACT.md "Reference data"): the persons snapshot and the active cases.

These are the records as files and the case system deliver them. The service's living view of
them — who lives where now, which number a person has now — is :class:`triage.register.Register`
and :class:`triage.cases.CaseIndex`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from triage.models.address import Address, Cpr, Model, MunicipalityCode
from triage.models.events import CivilStatus

Benefit = Literal["kontanthjaelp", "ressourceforloebsydelse", "sygedagpenge", "ledighedsydelse"]
Role = Literal["applicant", "spouse", "child"]


class PersonRecord(Model):
    """One person as the CPR register stood before the first event."""

    cpr: Cpr
    address: Address | None = None
    civil_status: CivilStatus = "U"
    spouse_cpr: Cpr | None = None
    birth_date: date | None = None
    status: str = Field(default="01", pattern=r"^\d{2}$")


class CaseMember(Model):
    cpr: Cpr
    role: Role


class CaseRecord(Model):
    """An active benefit case: one benefit, one municipality, one owning unit, its members."""

    case_id: str = Field(min_length=1)
    benefit: Benefit
    municipality_code: MunicipalityCode
    unit: str = Field(min_length=1)
    members: list[CaseMember] = Field(min_length=1)

    @property
    def applicant(self) -> str | None:
        return next((m.cpr for m in self.members if m.role == "applicant"), None)
