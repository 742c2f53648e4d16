"""Enrichment: which active cases an event touches, and the facts a rule sees for each.

This is the only place that reads the register and the case index on an event's behalf. It runs
*before* the event is applied to the register, so every fact describes the world the event
arrives in (DOMAIN.md: judged against the state after every earlier event).

The person an event is about — its **subject** — is the person it is registered on, except for a
derived copy of a death, emigration or disappearance: a copy registered on a spouse or partner
(marker ÆG/PA) is about that spouse, not about the survivor. A derived copy whose subject cannot
be identified gets no person facts, so no ordinary rule matches it and it is raised as
unclassified rather than guessed at.
"""

from __future__ import annotations

from typing import Any

from triage.cases import Case, CaseIndex
from triage.models.events import (
    SUPPORT_BENEFITS,
    AddressChanged,
    AtpEvent,
    BenefitEvent,
    ChildAdded,
    CivilStatusChanged,
    CprEvent,
    DarEvent,
    Event,
    IncomeReported,
    PersonGone,
    SingleStatusChanged,
    UnknownEvent,
)
from triage.register import Register

SPOUSE_MARKERS = frozenset({"ÆG", "Æ", "PA"})


_PERSON_EVENTS = (CprEvent, AtpEvent)


def subject_of(event: Event, register: Register) -> str | None:
    """The current CPR number of the person the event is about (None for DAR events, or when a
    derived copy's subject is unknown)."""
    if type(event) is PersonGone and event.derived_marker is not None:
        if event.derived_marker in SPOUSE_MARKERS:
            return register.spouse_of(event.cpr)
        return None
    if isinstance(event, _PERSON_EVENTS):
        return register.resolve(event.cpr)
    if type(event) is UnknownEvent and event.cpr:
        return register.resolve(event.cpr)
    return None


def touched_cases(event: Event, subject: str | None, cases: CaseIndex) -> list[Case]:
    """Every active case the event could affect, sorted by case id (deterministic output).

    A person event touches the cases the person is a member of and the cases whose home the
    person lives at; a move also touches the cases at its destination (someone moving in); a
    birth the cases of each parent; a DAR event the cases whose home is the address.
    """
    found: list[Case] = []
    if subject is not None:
        found += cases.of_member(subject)
        found += cases.at_home(cases.register.address_id_of(subject))
    if isinstance(event, AddressChanged):
        found += cases.at_home(event.to.address_id)
    elif isinstance(event, ChildAdded):
        for parent in event.parents:
            found += cases.of_member(parent)
    elif isinstance(event, DarEvent):
        found += cases.at_home(event.address_id)
    elif isinstance(event, PersonGone) and subject is None:
        found += cases.of_member(event.cpr)  # an unidentifiable derived copy: the carrier's
    elif isinstance(event, UnknownEvent):
        if subject is None and event.cpr:
            found += cases.of_member(event.cpr)
        if event.address_id:
            found += cases.at_home(event.address_id)
    if len(found) < 2:
        return found
    unique = {case.case_id: case for case in found}
    return [unique[k] for k in sorted(unique)]


def event_facts(event: Event) -> dict[str, Any]:
    """Facts that depend on the event alone (computed once per event)."""
    facts: dict[str, Any] = {"event.source": event.source, "event.type": event.type}
    if isinstance(event, CprEvent | UnknownEvent):
        facts["event.code"] = event.code
        facts["event.derived"] = event.derived_marker is not None
    if isinstance(event, AddressChanged):
        src, dst = event.from_, event.to
        facts["move.same_address"] = src is not None and src.address_id == dst.address_id
        facts["move.municipality_changed"] = (src is not None
                                              and src.municipality_code != dst.municipality_code)
        facts["move.to_no_fixed_address"] = dst.no_fixed_address
    elif isinstance(event, CivilStatusChanged):
        facts["civil.status"] = event.civil_status
    elif isinstance(event, DarEvent):
        facts["address.retired"] = event.after is None
        facts["address.municipality_changed"] = (
            event.after is not None
            and event.after.municipality_code != event.before.municipality_code)
    elif isinstance(event, BenefitEvent):
        facts["benefit.name"] = event.benefit
        facts["benefit.supports_living"] = event.benefit in SUPPORT_BENEFITS
    elif isinstance(event, IncomeReported):
        facts["income.amount"] = event.amount
        facts["income.type"] = event.income_type
    elif isinstance(event, SingleStatusChanged):
        facts["udk.single"] = event.single
    return facts


def case_facts(event: Event, subject: str | None, case: Case, cases: CaseIndex,
               base: dict[str, Any]) -> dict[str, Any]:
    """The facts a rule sees for one (event, case), before household correlation."""
    register = cases.register
    home = cases.home(case)
    facts = dict(base)
    facts["case.benefit"] = case.benefit
    facts["case.unit"] = case.unit
    facts["case.municipality_code"] = case.municipality_code
    facts["case.has_home"] = home is not None
    facts["case.together"] = cases.together(case, home)
    if subject is not None:
        role = case.members.get(subject)
        in_household = home is not None and register.address_id_of(subject) == home
        facts["person.is_member"] = role is not None
        facts["person.role"] = role or "none"
        facts["person.in_household"] = in_household
        facts["person.member_or_household"] = role is not None or in_household
        facts["person.known"] = register.get(subject) is not None
    if isinstance(event, AddressChanged):
        facts["move.leaves_case_municipality"] = (
            event.to.municipality_code != case.municipality_code)
        facts["move.to_case_home"] = home is not None and event.to.address_id == home
    elif isinstance(event, ChildAdded):
        facts["child.parent_is_member"] = any(
            register.resolve(p) in case.members for p in event.parents)
    elif isinstance(event, DarEvent):
        facts["address.is_case_home"] = home is not None and event.address_id == home
    return facts
