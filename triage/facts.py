"""The fact catalogue: the named, typed facts a rule may test, and what each one means.

A rule never sees an event or the register directly; it sees facts — ``person.role``,
``move.leaves_case_municipality``, ``household.moved_together`` — computed per (event, case) by
:mod:`triage.enrich` and, for household moves, by :mod:`triage.correlation`. This catalogue is the
single definition of those names: the rule loader type-checks every matcher against it, and
``triage rules facts`` prints it for operators.

A fact that does not apply to an event (``move.*`` on a death) is absent; a matcher on an absent
fact does not match, except ``null``. A household fact can be *pending* while a household move is
still collecting its members; a rule that depends on it waits (see :mod:`triage.rules.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from triage.models.events import KNOWN_TYPES, SUPPORT_BENEFITS

FactType = Literal["bool", "enum", "number", "string"]


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    type: FactType
    description: str
    values: tuple[str, ...] = ()
    applies_to: str = "every event"

    def accepts(self, value: object) -> bool:
        """Whether a rule may compare this fact with ``value`` (``None`` always allowed)."""
        if value is None:
            return True
        if self.type == "bool":
            return isinstance(value, bool)
        if self.type == "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        if self.type == "enum":
            return value in self.values
        return isinstance(value, str)


_EVENT_TYPES = tuple(sorted({t for types in KNOWN_TYPES.values() for t in types}))
_BENEFITS = ("kontanthjaelp", "ressourceforloebsydelse", "sygedagpenge", "ledighedsydelse")
_ATP_BENEFITS = (*sorted(SUPPORT_BENEFITS), "boernetilskud", "boerne_og_ungeydelse", "boligstoette")

CATALOGUE: dict[str, Fact] = {f.name: f for f in (
    # event
    Fact("event.source", "enum", "The registry the event came from.", ("cpr", "dar", "atp")),
    Fact("event.type", "enum", "The event type (CONTRACT.md).", _EVENT_TYPES),
    Fact("event.code", "string", "The CPR hændelseskode, e.g. A01; null when absent.",
         applies_to="CPR events"),
    Fact("event.derived", "bool",
         "The event is a derived copy registered on a related person (derived marker set).",
         applies_to="CPR events"),
    # case
    Fact("case.benefit", "enum", "The case's benefit.", _BENEFITS),
    Fact("case.unit", "string", "The unit that owns the case."),
    Fact("case.municipality_code", "string", "The municipality that runs the case."),
    Fact("case.has_home", "bool", "The case's applicant is registered at an address in Denmark."),
    Fact("case.together", "bool",
         "Every case member living in Denmark was registered at the case's home before this "
         "event (for a move that continues a household move: before the household move began)."),
    # person (the person the event is about, relative to the case)
    Fact("person.is_member", "bool", "The person is a member of the case.",
         applies_to="CPR and ATP events"),
    Fact("person.role", "enum", "The person's role on the case; none when not a member.",
         ("applicant", "spouse", "child", "none"), applies_to="CPR and ATP events"),
    Fact("person.in_household", "bool",
         "The person was registered at the case's home before this event (member or not: a "
         "cohabitant, a lodger, a child the case does not list).",
         applies_to="CPR and ATP events"),
    Fact("person.member_or_household", "bool",
         "person.is_member or person.in_household: the person is part of the case's world.",
         applies_to="CPR and ATP events"),
    Fact("person.known", "bool",
         "The register knew the person before this event (from the snapshot or earlier events).",
         applies_to="CPR and ATP events"),
    # address changes
    Fact("move.same_address", "bool",
         "From and to are the same DAR address id: an administrative change, not a move.",
         applies_to="address_changed"),
    Fact("move.municipality_changed", "bool",
         "From and to lie in different municipalities (false when from is null).",
         applies_to="address_changed"),
    Fact("move.leaves_case_municipality", "bool",
         "The destination lies in another municipality than the case's.",
         applies_to="address_changed"),
    Fact("move.to_no_fixed_address", "bool",
         "The destination is on a road code ≥ 9900 (no fixed address).",
         applies_to="address_changed"),
    Fact("move.to_case_home", "bool", "The destination is the case's home.",
         applies_to="address_changed"),
    Fact("household.destination_occupied", "bool",
         "Someone outside the household was registered at the destination when the household "
         "move began.", applies_to="address_changed by someone in the case's household"),
    Fact("household.moved_together", "bool",
         "Everyone in the household moved to the same destination with the same move date "
         "within the correlation window. Pending until that is certain either way.",
         applies_to="address_changed by someone in the case's household"),
    Fact("household.size", "number", "How many people the household had when the move began.",
         applies_to="address_changed by someone in the case's household"),
    # civil status, children
    Fact("civil.status", "enum", "The new civil status (CPR codes).",
         ("U", "G", "F", "E", "P", "O", "L", "D"), applies_to="civil_status_changed"),
    Fact("child.parent_is_member", "bool", "One of the child's parents is a member of the case.",
         applies_to="child_added"),
    # DAR
    Fact("address.is_case_home", "bool", "The address is the case's home.",
         applies_to="DAR events"),
    Fact("address.municipality_changed", "bool",
         "The address now lies in another municipality (a boundary change).",
         applies_to="DAR events"),
    Fact("address.retired", "bool", "The address was retired.", applies_to="DAR events"),
    # ATP / UDK
    Fact("benefit.name", "enum", "The UDK benefit the event is about.", _ATP_BENEFITS,
         applies_to="benefit_started, benefit_changed, benefit_ended"),
    Fact("benefit.supports_living", "bool",
         "The benefit is another support benefit (pension, dagpenge, SU, …): double support.",
         applies_to="benefit_started, benefit_changed, benefit_ended"),
    Fact("income.amount", "number", "The reported amount in DKK.", applies_to="income_reported"),
    Fact("income.type", "enum", "The kind of income.", ("wage", "pension", "benefit", "other"),
         applies_to="income_reported"),
    Fact("udk.single", "bool", "UDK now considers the person single.",
         applies_to="single_status_changed"),
)}

PENDING_FACTS = frozenset({"household.moved_together"})
"""Facts that can be pending: a rule that needs one waits until the correlation decides it."""
