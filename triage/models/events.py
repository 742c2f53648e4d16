"""Input events (CONTRACT.md "Input events") and :func:`parse_event`, the one way in.

Every event is validated completely at the boundary, so the core can trust it. A line that is not
JSON, not an object, has an unknown ``source``, a missing or mistyped field, a timestamp without
offset or an invalid CPR number becomes an :class:`InvalidEvent` carrying a message that names
the field and the reason — never the offending value, which may be a CPR number.

Types are strict (CONTRACT.md: "a wrong type … makes the event invalid"): ``registered_at`` and
every date must be strings — an integer is never read as a Unix time — numbers must be JSON
numbers and booleans ``true``/``false``; nothing is coerced from a string.

A well-formed event of a ``type`` the service does not know becomes an :class:`UnknownEvent`: it
is valid, and the core raises it as "kunne ikke klassificeres" rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, Field, ValidationError

from triage.models.address import Address, Cpr, Model

CivilStatus = Literal["U", "G", "F", "E", "P", "O", "L", "D"]

SUPPORT_BENEFITS = frozenset(
    {"folkepension", "foertidspension", "sygedagpenge", "barselsdagpenge", "a_dagpenge", "su",
     "fleksydelse", "efterloen"}
)
"""ATP/UDK benefits that support the citizen's living: another one beside a case means double
support (DOMAIN.md, ATP table)."""

AtpBenefit = Literal[
    "folkepension", "foertidspension", "sygedagpenge", "barselsdagpenge", "a_dagpenge", "su",
    "fleksydelse", "efterloen", "boligstoette", "boerne_og_ungeydelse", "boernetilskud",
]


class EventBase(Model):
    """Fields every event has. ``registered_at`` is the event time correlation windows use."""

    event_id: str = Field(min_length=1)
    source: str
    type: str
    registered_at: AwareDatetime

    @property
    def persons(self) -> tuple[str, ...]:
        """CPR numbers this event is about, as carried (before alias resolution)."""
        return ()


# --- CPR -------------------------------------------------------------------------------------


class CprEvent(EventBase):
    """Common fields of CPR events: the person the event is registered on (``cpr``), the CPR
    hændelseskode and, for a copy registered on a related person, the derived marker."""

    source: Literal["cpr"]
    cpr: Cpr
    code: str | None = None
    derived_marker: str | None = None

    @property
    def persons(self) -> tuple[str, ...]:
        return (self.cpr,)

    @property
    def derived(self) -> bool:
        return self.derived_marker is not None


class AddressChanged(CprEvent):
    """A move (A01 and friends). ``from`` is null for someone arriving from abroad or newborn."""

    type: Literal["address_changed"]
    from_: Address | None = Field(default=None, alias="from")
    to: Address
    move_date: date


class PersonGone(CprEvent):
    """Death (status 90), emigration (80) or disappearance (70): the person leaves the register's
    view of who lives where."""

    type: Literal["died", "emigrated", "disappeared"]
    date: date
    country_code: str | None = None


class CivilStatusChanged(CprEvent):
    """Marriage, divorce, partnership, separation, widowhood (A19, A20, A23, …)."""

    type: Literal["civil_status_changed"]
    civil_status: CivilStatus
    spouse_cpr: Cpr | None = None
    date: date


class ChildAdded(CprEvent):
    """Birth or adoption. The primary event is on the child; each parent gets a derived copy."""

    type: Literal["child_added"]
    child_cpr: Cpr
    parents: list[Cpr]
    address: Address
    date: date

    @property
    def persons(self) -> tuple[str, ...]:
        return (self.cpr, self.child_cpr, *self.parents)


class MasterDataChanged(CprEvent):
    """Changes that never touch entitlement: name, guardianship, address protection."""

    type: Literal["name_changed", "guardianship_changed", "address_protection_changed"]
    protected: bool | None = None


class CprNumberChanged(CprEvent):
    """The person now has ``new_cpr``; ``cpr`` is the old number."""

    type: Literal["cpr_number_changed"]
    new_cpr: Cpr


class CprNumberAnnulled(CprEvent):
    """The person's CPR number was deleted or annulled (P02, A40; contract v2)."""

    type: Literal["cpr_number_annulled"]
    date: date


class DeathAnnulled(CprEvent):
    """A registered death was annulled: the person lives (A25 after A21; contract v2)."""

    type: Literal["death_annulled"]
    date: date


class DataChanged(CprEvent):
    """Master data with no bearing on entitlement (contact address, church, supplementary
    address, …: ``master_data_changed``) or registry bookkeeping that is no change in the
    person's life (subscription, record request: ``registry_notice``); contract v2. ``what``
    says which, e.g. ``contact_address`` or ``record_request``."""

    type: Literal["master_data_changed", "registry_notice"]
    what: str = Field(min_length=1)


# --- DAR -------------------------------------------------------------------------------------


class DarEvent(EventBase):
    """A change to one DAR address: renamed, renumbered, new postcode, moved to another
    municipality by a boundary change, or retired (``after`` null)."""

    source: Literal["dar"]
    type: Literal[
        "address_renamed", "address_renumbered", "postcode_changed", "municipality_changed",
        "address_retired",
    ]
    address_id: str
    before: Address
    after: Address | None


# --- ATP / UDK -------------------------------------------------------------------------------


class AtpEvent(EventBase):
    """Common fields of events derived from the UDK § 8 register and eIndkomst."""

    source: Literal["atp"]
    cpr: Cpr

    @property
    def persons(self) -> tuple[str, ...]:
        return (self.cpr,)


class BenefitEvent(AtpEvent):
    type: Literal["benefit_started", "benefit_changed", "benefit_ended"]
    benefit: AtpBenefit
    amount: float
    period_from: date
    period_to: date | None = None


class IncomeReported(AtpEvent):
    type: Literal["income_reported"]
    amount: float
    income_type: Literal["wage", "pension", "benefit", "other"]
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")


class SingleStatusChanged(AtpEvent):
    type: Literal["single_status_changed"]
    single: bool


# --- unknown types ---------------------------------------------------------------------------


class UnknownEvent(EventBase):
    """A well-formed event of a type this service does not know. It is never suppressed: the
    core raises it as unclassified for every case its person touches."""

    source: Literal["cpr", "dar", "atp"]
    cpr: Cpr | None = None
    address_id: str | None = None
    code: str | None = None
    derived_marker: str | None = None

    @property
    def persons(self) -> tuple[str, ...]:
        return (self.cpr,) if self.cpr else ()


Event = (
    AddressChanged | PersonGone | CivilStatusChanged | ChildAdded | MasterDataChanged
    | CprNumberChanged | CprNumberAnnulled | DeathAnnulled | DataChanged | DarEvent
    | BenefitEvent | IncomeReported | SingleStatusChanged
    | UnknownEvent
)


@dataclass(frozen=True, slots=True)
class InvalidEvent:
    """A line that could not be read as an event: what we know of it and why it failed."""

    event_id: str | None
    error: str
    raw: bytes
    reason: str = "invalid"
    """Why it is dead-lettered, from a closed set (the metric's label): ``invalid``,
    ``oversized``, ``conflict``."""


_MODELS: dict[str, dict[str, type[EventBase]]] = {"cpr": {}, "dar": {}, "atp": {}}
for _model in (AddressChanged, PersonGone, CivilStatusChanged, ChildAdded, MasterDataChanged,
               CprNumberChanged, CprNumberAnnulled, DeathAnnulled, DataChanged, DarEvent,
               BenefitEvent, IncomeReported, SingleStatusChanged):
    _source = _model.model_fields["source"].annotation.__args__[0]  # type: ignore[union-attr]
    for _type in _model.model_fields["type"].annotation.__args__:  # type: ignore[union-attr]
        _MODELS[_source][_type] = _model

KNOWN_TYPES: dict[str, frozenset[str]] = {s: frozenset(m) for s, m in _MODELS.items()}
"""Event types per source that have a model (and so rules can match them)."""


def parse_event(raw: bytes) -> Event | InvalidEvent:
    """Validate one JSON document (a Kafka message value or a JSON Lines line)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return InvalidEvent(None, f"not JSON: {exc.args[0].split(':')[0]}", raw)
    if not isinstance(data, dict):
        return InvalidEvent(None, f"not a JSON object but {type(data).__name__}", raw)
    event_id = data.get("event_id")
    event_id = event_id if isinstance(event_id, str) and event_id else None
    source = data.get("source")
    models = _MODELS.get(source) if isinstance(source, str) else None
    if models is None:
        what = "missing" if source is None else "unknown source (expected cpr, dar or atp)"
        return InvalidEvent(event_id, f"source: {what}", raw)
    kind = data.get("type")
    # a type that is no string (a list, an object: unhashable) is UnknownEvent's to reject
    model = models.get(kind, UnknownEvent) if isinstance(kind, str) else UnknownEvent
    try:
        # Strict JSON validation: a timestamp or date must be a string (an integer is not taken
        # for a Unix time), a number a number, a boolean true or false — never coerced.
        return model.model_validate_json(raw, strict=True)  # type: ignore[return-value]
    except ValidationError as exc:
        return InvalidEvent(event_id, format_validation_error(exc), raw)


_STRICT_HINTS = {
    "datetime_type": "must be an RFC 3339 timestamp string with offset (a number is not "
                     "accepted)",
    "date_type": "must be a date string YYYY-MM-DD (a number is not accepted)",
}


def format_validation_error(exc: ValidationError) -> str:
    """``field.path: reason; …`` without the input values (they may hold CPR numbers)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in err["loc"]) or "event"
        msg = _STRICT_HINTS.get(err["type"]) or err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def parse_record(model: type[Model], data: Any) -> Model:
    """Validate one reference record; raise ValueError with a CPR-free message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc)) from None
