"""SF1320_A / Datafordeler CPR business events ("Hændelsesbesked") → canonical CPR events.

Input format (JSON), as found in public sources:

* Datafordeler's generic event message, pull/push JSON::

      {"Id": …, "Message": {"Grunddatabesked": {"Hændelsesbesked": {
          "beskedversion", "beskedID",
          "Beskedkuvert": {
            "Filtreringsdata": {"beskedtype", "beskedansvarligAktør",
                                "RelateretObjekt": [{"objektID", "objekttype"}],
                                "Objektregistrering": [{"registreringsaktør", "registreringstid",
                                    "status", "objektansvarligAktør", "objektID", "objekttype",
                                    "objekthandling", "opgaveemne", "registreringsID",
                                    "Stedbestemmelse": {…}}],
                                "tværgåendeProces"},
            "Leveranceinformation": {"dannelsestidspunkt", "transaktionsID", "kildesystem",
                                     "sikkerhedsklassificering"}},
          "Beskeddata": [{"Objektdata": {"entityType", "attributes": {…}}}]}}},
       "Format": "Json", "Timestamp": "…Z"}

  Field names from the public TypeScript interface of Datafordeler's event pull response (code
  index, a Danish open-data client: ``eventResponse``/``Message`` with the comment examples
  ``registreringstid "2020-09-29T05:41:54.0000000+02:00"``), from magenta-aps/datafordeler
  ``core/event/ObjectRegistration.java`` (``@JsonProperty`` names ``registreringstid``,
  ``objektID``, ``objekttype``, ``objekthandling``, ``registreringsID``), and from a Python
  consumer that reads the same envelope after transliterating æ/ø/å
  (``Haendelsesbesked.Beskedkuvert.Filtreringsdata.Objektregistrering[0].objektansvarligAktoer``).
  Keys are therefore matched case-insensitively and with æ→ae, ø→oe, å→aa, so both spellings
  ("Hændelsesbesked" and "Haendelsesbesked") work, and ``Objektregistrering`` may be a list or a
  single object (XML-to-JSON renderings of KOMBIT's ``HaendelsesbeskedType`` give one object).
* For CPR (https://confluence.datafordeler.dk/pages/viewpage.action?pageId=17138949): objekttype
  ``CprHaendelse``, beskedtype ``CprHaendelseCreate`` (the only one, cprservicedesk "Hændelser"),
  ``ObjektID = Load(personid)``, ``ObjektType = Constant(CPR)``,
  ``Registreringstid = Load(afleveringsdato)``, and
  ``Objekthandling = forretningshaendelse + ";KommuneTidligere:" + cprkommunekodeTidligere +
  "; KommuneNuvaerende:" + cprkommunekodeNuvaerende``. The raw Cprhaendelse entity's attributes
  (``afledtmarkering, afleveringsdato, cprkommunekodenuvaerende, cprkommunekodetidligere,
  forretningshaendelse, forretningshaendelseid, personid``; /work/shared/research/registries.md
  §1.5, Esbern/semanticGIS ``cprhaendelse.md``) are read from ``Beskeddata[].Objektdata
  .attributes`` when present and used as fallbacks.
* ``forretningshaendelse`` is a CPR hændelseskode (``A01`` Flytning, ``A13`` Navneændring, ``A19``
  Vielse, ``A20`` Skilsmisse, ``A21`` Dødsfald, ``A23`` Registreret partnerskab; magenta-aps/
  datafordeler ``cpr.businessevent.A01`` and ``CivilStatusDataService.java``) or, in some
  renderings, the event's name ("Flytning", "Udrejse", "Forsvinden"); both are accepted, as is the
  ``cpr.businessevent.`` prefix. The CPR codes of udrejse and forsvinden were not found in public
  sources (registries.md §1.3, §8), so those two are recognised by name only.

The envelope carries only *that* something changed (plus the old and new municipality). The
content (new address, new civil status, dates) comes from an injected :class:`PersonLookup`
(live: the register / CPR replica). A lookup can fail, return nothing, or lag behind the event
(KOMBIT warns that an event's envelope and the replica can disagree,
https://digitaliseringskataloget.dk/cpr-haendelser). In each of those cases the converter does not
guess: it emits a canonical event with ``type`` ``"cpr_event_<code>"``, a type the core does not
know, so the core raises it as "kunne ikke klassificeres" instead of suppressing it. Such events
carry ``"unclassified_reason"`` (ignored by the core) saying why.

Person ids: Datafordeler's ``personid`` may be a PNR (CPR number) directly, and that is what this
converter needs. It accepts ``objektID`` if it is a valid CPR number (``DDMMYYSSSS``, also
``DDMMYY-SSSS``), else the first ``RelateretObjekt`` / ``Beskeddata`` attribute holding one (e.g.
``objekttype`` "…PersonNr"). An envelope with no CPR number at all (an opaque person UUID) raises
:class:`EnvelopeError`: it cannot be routed to a person, and the caller must dead-letter it rather
than drop it.

Timestamps: ``registered_at`` is the envelope's ``registreringstid`` (= afleveringsdato; in
KOMBIT's XML ``Registreringstidspunkt``), else ``Leveranceinformation.dannelsestidspunkt``, else
the outer ``Timestamp``. Datafordeler writes them with ``+HH:MM`` or ``Z``; a time without offset
is Danish local time (Europe/Copenhagen, +01:00 or +02:00 by the date). The output always carries
an offset.

KOMBIT's Beskedfordeler XML (``Haendelsesbesked``) is read by :mod:`connectors.envelope.kombit`
into the same :class:`Envelope`; from there the conversion is the same.

What the envelope says happened decides which event is built, and the person lookup decides
what it contains — and whether it happened at all when the message only says *that* something
happened: a death, an emigration, a disappearance is written only when the lookup shows the
person with status 90, 80 or 70; a birth takes the child's address and birth date from it. A
lookup that fails, returns nothing, or does not show the event, gives ``cpr_event_<CODE>``
(``cpr_event_UNKNOWN`` when the action has no CPR code) with ``unclassified_reason``: the core
raises it. Codes follow DOMAIN.md's table (:data:`connectors.cpr.events.CODES`), upper-case,
exactly as the CPR extract connector does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError

from connectors.cpr.events import CODES
from connectors.cpr.extract import scrub
from connectors.cpr.person import derived_address_id
from triage import cprnumber
from triage.models.address import Address

__all__ = [
    "CODE_BY_NAME",
    "TYPE_BY_CODE",
    "Envelope",
    "EnvelopeError",
    "PersonLookup",
    "convert_envelope",
    "parse_envelope",
    "parse_timestamp",
    "unclassified",
]

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


class PersonLookup(Protocol):
    """``await lookup_person(cpr)`` → the person's current CPR data, or ``None`` if unknown.

    The dict has the persons-record shape of CONTRACT.md ("Reference data"): ``address`` (an
    Address dict, or null), ``civil_status``, ``spouse_cpr``, ``status``, ``birth_date``;
    optionally ``previous_address`` (Address dict; the address before the latest move),
    ``move_date`` (tilflytningsdato), ``civil_status_date``, ``status_date`` (statusdato: date
    of death, emigration, disappearance), ``country_code`` (udrejseland) and ``parents`` (CPR
    numbers). A Datafordeler ``CprAdresse`` (``daradresse``, ``cprkommunekode``, ``cprvejkode``,
    ``husnummer``, ``etage``, ``sidedoer``, ``postnummer``) is accepted in place of an Address
    dict. It may raise on failure.
    """

    async def __call__(self, cpr: str, /) -> dict[str, Any] | None: ...


class EnvelopeError(ValueError):
    """The envelope cannot be converted at all (no message id, no CPR number, no time, not
    valid against the schema). The message never contains a CPR number. The caller reports it
    (``triage ingest`` names the file) or dead-letters the original bytes."""


_BUILT = {
    "move": "address_changed", "correction": "address_changed", "arrival": "address_changed",
    "same_address": "address_changed", "died": "died", "emigrated": "emigrated",
    "disappeared": "disappeared", "civil": "civil_status_changed", "name": "name_changed",
    "guardianship": "guardianship_changed", "master_data": "master_data_changed",
    "notice": "registry_notice",
}
"""The builders of DOMAIN.md's code table this converter can back from a lookup."""

TYPE_BY_CODE: dict[str, str] = {
    code: _BUILT[m.build] for code, m in CODES.items() if m.build in _BUILT}
"""CPR hændelseskode → canonical type, for the codes an envelope can become (the rest of
DOMAIN.md's table needs records an envelope does not carry, and stays unclassified)."""

_TRANSLIT = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "ae", "Ø": "oe", "Å": "aa"})


def _name_key(name: str) -> str:
    return " ".join(name.translate(_TRANSLIT).lower().replace("-", " ").split())


CODE_BY_NAME: dict[str, str] = {
    **{_name_key(m.cpr_name): code for code, m in CODES.items()},
    "navneaendring": "A13", "doedsfald": "A21", "registreret partnerskab": "A23",
    "registreretpartnerskab": "A23", "partnerskab": "A23", "flytning": "A01",
    "vielse": "A19", "skilsmisse": "A20", "udrejse": "A06", "forsvinding": "A02",
    "forsvinden": "A02", "forsvundet": "A02", "udvandring": "A06", "genindrejse": "A04",
}
"""Business-event names → CPR code: CPR's own names (DOMAIN.md's table) and common short forms
("Navneændring;KommuneTidligere:…")."""

_TYPE_BY_NAME: dict[str, str] = {
    "foedsel": "child_added",
    "birth": "child_added",
    "separation": "civil_status_changed",
    "enkestand": "civil_status_changed",
    "ophaevet partnerskab": "civil_status_changed",
    "ophaevelse af partnerskab": "civil_status_changed",
}
"""Business events without a CPR code of their own (a birth has none, DOMAIN.md)."""

_GONE_STATUS = {"died": "90", "emigrated": "80", "disappeared": "70"}

_EXPECTED_CIVIL_STATUS: dict[str, frozenset[str]] = {
    "A19": frozenset("G"),
    "A20": frozenset("F"),
    "A23": frozenset("P"),
}
"""What the register must show after the event; anything else means the lookup lags behind."""

_CIVIL_STATUSES = frozenset("UGFEPOLD")
_CODE_RE = re.compile(r"^[A-Z]\d{2}$")


# --- parsing the envelope (pure) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the converter takes from one Hændelsesbesked (JSON or KOMBIT XML).

    ``repr`` masks every CPR number it holds."""

    message_id: str
    registered_at: datetime
    cpr: str
    business_event: str
    """The raw forretningshaendelse ("A01", "Flytning", …) or, for KOMBIT, the action's name
    from the action table."""
    code: str | None
    """The CPR hændelseskode when known, else None."""
    municipality_before: str | None
    municipality_after: str | None
    derived_marker: str | None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """Normalised ``Beskeddata[].Objektdata.attributes`` (may be empty)."""
    related: tuple[str, ...] = ()
    """CPR numbers of the message's related persons (``RelateretObjekt``)."""
    person_data: Mapping[str, Any] | None = None
    """Person data the message itself carries (KOMBIT Beskeddata), in the lookup's shape."""
    event_id: str | None = None
    """The canonical event id when it is not ``message_id`` (KOMBIT: a keyed hash)."""
    action: str | None = None
    """KOMBIT's ObjektHandling UUID, when the envelope came from XML."""

    def __repr__(self) -> str:
        return (f"Envelope(message_id={self.message_id!r}, "
                f"registered_at={self.registered_at.isoformat()!r}, "
                f"cpr={cprnumber.mask(self.cpr)!r}, business_event={self.business_event!r}, "
                f"code={self.code!r}, related={[cprnumber.mask(r) for r in self.related]!r})")


def _norm_key(key: str) -> str:
    return key.translate(_TRANSLIT).lower()


def _normalise(value: Any) -> Any:
    """Recursively lower-case and transliterate keys (æ→ae, ø→oe, å→aa)."""
    if isinstance(value, Mapping):
        return {_norm_key(str(k)): _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _first(value: Any) -> Any:
    """A list's first element, or the value itself (one-element lists render as objects)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _object(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one: a Beskedkuvert, Filtreringsdata
    or Objektregistrering that is a string, number or list is as good as missing (and then
    raises EnvelopeError below), never an AttributeError."""
    return value if isinstance(value, Mapping) else {}


def _many(value: Any) -> list[Any]:
    """A list, or a single object as a one-element list (XML renderings give one object)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _text(value: Any) -> str | None:
    """A string, or the identifier inside a KOMBIT-style wrapper (``{"UUIDIdentifikator": …}``)."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Mapping):
        for key in ("uuididentifikator", "urnidentifikator", "tidsstempeldatotid", "value", "v"):
            if key in value:
                return _text(value[key])
    return None


def _message(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """Find the Hændelsesbesked inside the Datafordeler wrappers, whichever level we got."""
    node: Any = doc
    for key in ("message", "grunddatabesked", "haendelsesbesked"):
        if isinstance(node, Mapping) and isinstance(node.get(key), Mapping):
            node = node[key]
    if not isinstance(node, Mapping) or "beskedkuvert" not in node:
        raise EnvelopeError("no Hændelsesbesked with a Beskedkuvert")
    return node


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 with ``Z``, ``+HH:MM`` or (Danish local time) no offset; up to 7 fraction
    digits (.NET writes seven; Python reads six)."""
    text = _text(value)
    if text is None:
        raise EnvelopeError("timestamp missing")
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", text)
    if match:
        text = f"{match[1]}.{match[2][:6].ljust(6, '0')}{match[3]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise EnvelopeError("timestamp is not ISO 8601") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=COPENHAGEN)


def as_cpr(value: Any) -> str | None:
    """A CPR number from ``DDMMYYSSSS``, ``DDMMYY-SSSS`` or KOMBIT's ``urn:oio:cpr-nr:…``."""
    text = _text(value)
    if text is None:
        return None
    if text.lower().startswith("urn:oio:cpr-nr:"):
        text = text[len("urn:oio:cpr-nr:"):]
    text = text.replace("-", "")
    try:
        return cprnumber.validate(text)
    except cprnumber.InvalidCpr:
        return None


def _parse_action(action: str) -> tuple[str, str | None, str | None]:
    """``"A01;KommuneTidligere:0561; KommuneNuvaerende:0561"`` → (event, before, after)."""
    parts = [p.strip() for p in action.split(";")]
    event = parts[0]
    found: dict[str, str | None] = {}
    for part in parts[1:]:
        key, sep, val = part.partition(":")
        if sep:
            found[_norm_key(key.strip())] = val.strip() or None
    return event, found.get("kommunetidligere"), found.get("kommunenuvaerende")


def _municipality(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value.isdigit() and 1 <= len(value) <= 4:
        return value.zfill(4)
    return None


def classify(event: str) -> tuple[str | None, str | None]:
    """(CPR code or None, canonical type or None) for a forretningshaendelse."""
    token = event.strip()
    if token.lower().startswith("cpr.businessevent."):
        token = token[len("cpr.businessevent."):]
    if _CODE_RE.match(token.upper()):
        return token.upper(), TYPE_BY_CODE.get(token.upper())
    name = _name_key(token)
    named = CODE_BY_NAME.get(name)
    if named is not None:
        return named, TYPE_BY_CODE.get(named)
    return None, _TYPE_BY_NAME.get(name)


def parse_envelope(envelope: Mapping[str, Any] | bytes | str) -> Envelope:
    """Read one CPR Hændelsesbesked (any wrapper level, JSON text or parsed)."""
    if isinstance(envelope, bytes | str):
        try:
            envelope = orjson.loads(envelope)
        except orjson.JSONDecodeError:
            raise EnvelopeError("not JSON") from None
    if not isinstance(envelope, Mapping):
        raise EnvelopeError("not a JSON object")
    try:
        doc = _normalise(envelope)
    except RecursionError:  # orjson reads 1,024 levels; Python's stack holds fewer
        raise EnvelopeError("nested too deeply") from None
    message = _message(doc)
    kuvert = _object(message.get("beskedkuvert"))
    filtrering = _object(kuvert.get("filtreringsdata"))
    registration = _object(_first(filtrering.get("objektregistrering")))
    delivery = _object(kuvert.get("leveranceinformation"))
    attributes: dict[str, Any] = {}
    for item in _many(message.get("beskeddata")):
        data = (item or {}).get("objektdata") if isinstance(item, Mapping) else None
        if isinstance(data, Mapping) and isinstance(data.get("attributes"), Mapping):
            attributes.update(data["attributes"])

    message_id = _text(message.get("beskedid"))
    if message_id is None:
        raise EnvelopeError("beskedID missing")

    when = (registration.get("registreringstid") or attributes.get("afleveringsdato")
            or delivery.get("dannelsestidspunkt") or doc.get("timestamp"))
    registered_at = parse_timestamp(when)

    action = _text(registration.get("objekthandling"))
    before: str | None = None
    after: str | None = None
    event: str | None = None
    if action is not None:
        event, before, after = _parse_action(action)
    event = event or _text(attributes.get("forretningshaendelse"))
    if not event:
        raise EnvelopeError("objekthandling/forretningshaendelse missing")
    before = before or _text(attributes.get("cprkommunekodetidligere"))
    after = after or _text(attributes.get("cprkommunekodenuvaerende"))

    related = tuple(c for c in (as_cpr(r.get("objektid")) for r in
                                _many(filtrering.get("relateretobjekt"))
                                if isinstance(r, Mapping)) if c)
    cpr = as_cpr(registration.get("objektid")) or as_cpr(attributes.get("personid"))
    if cpr is None and related:
        cpr = related[0]
    if cpr is None:
        for key in ("pnr", "personnummer", "cprnummer"):
            if cpr := as_cpr(attributes.get(key)):
                break
    if cpr is None:
        raise EnvelopeError("no CPR number in the envelope (person id is not a PNR)")

    code, _ = classify(event)
    marker = _text(attributes.get("afledtmarkering") or attributes.get("afledtmrk"))
    return Envelope(
        message_id=message_id,
        registered_at=registered_at,
        cpr=cpr,
        business_event=event,
        code=code,
        municipality_before=_municipality(before),
        municipality_after=_municipality(after),
        derived_marker=marker,
        attributes=attributes,
        related=tuple(r for r in related if r != cpr),
    )


# --- conversion (async: looks the person up) -------------------------------------------------


class _Unclassified(Exception):
    """Internal: the lookup cannot back a classified event; the message says why."""


def _address(value: Any) -> dict[str, Any] | None:
    """A canonical Address dict from an Address dict, a Datafordeler CprAdresse or CPR's basic
    information fields (kommunekode, vejkode, husnummer, …: the address id derived as the CPR
    extract connector derives it), else None."""
    if not isinstance(value, Mapping):
        return None
    data = dict(value)
    if "address_id" not in data and "daradresse" in data:
        data = {
            "address_id": data.get("daradresse"),
            "municipality_code": data.get("cprkommunekode"),
            "road_code": data.get("cprvejkode"),
            "house_number": str(data.get("husnummer") or "").strip() or None,
            "floor": data.get("etage"),
            "door": data.get("sidedoer"),
            "postcode": str(data.get("postnummer")) if data.get("postnummer") else None,
            "label": data.get("vejadresseringsnavn"),
        }
    elif "address_id" not in data and "kommunekode" in data and "vejkode" in data:
        parts = [str(data.get(k) or "").strip() for k in
                 ("kommunekode", "vejkode", "husnummer", "etage", "sidedoer")]
        data = {
            "address_id": derived_address_id(*parts),
            "municipality_code": parts[0], "road_code": parts[1],
            "house_number": parts[2].lstrip("0") or parts[2] or None,
            "floor": parts[3] or None, "door": parts[4] or None,
            "postcode": str(data.get("postnummer") or "").strip() or None,
            "label": data.get("standardadresse"),
        }
    try:
        return Address.model_validate(data).model_dump(mode="json")
    except ValidationError:
        return None


def _date(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            return None
    return None


def _base(env: Envelope, type_: str) -> dict[str, Any]:
    return {
        "event_id": env.event_id or env.message_id,
        "source": "cpr",
        "type": type_,
        "registered_at": env.registered_at.isoformat(),
        "cpr": env.cpr,
        "code": env.code,
        "derived_marker": env.derived_marker,
    }


def unclassified(env: Envelope, reason: str) -> dict[str, Any]:
    """The event the core raises as unclassified: never suppressed, never dropped."""
    event = _base(env, f"cpr_event_{env.code}" if env.code else "cpr_event_UNKNOWN")
    event["business_event"] = env.business_event
    if env.action is not None:
        event["action"] = env.action
    event["municipality_before"] = env.municipality_before
    event["municipality_after"] = env.municipality_after
    event["unclassified_reason"] = reason
    return event


async def _lookup(env: Envelope, lookup: PersonLookup, cpr: str) -> dict[str, Any]:
    if env.person_data is not None and cpr == env.cpr:
        return dict(env.person_data)
    try:
        person = await lookup(cpr)
    except Exception as exc:  # any failure means "could not be checked"
        raise _Unclassified(f"person lookup failed ({type(exc).__name__})") from None
    if not isinstance(person, Mapping) or not person:
        raise _Unclassified("person lookup returned nothing")
    if person.get("cpr") not in (None, cpr):
        raise _Unclassified("person lookup answered for another person")
    return dict(person)


def _event_date(env: Envelope, person: Mapping[str, Any] | None, *keys: str) -> str:
    """The date from the lookup, else the envelope's virkningfra, else the registration date."""
    for key in keys:
        if person is not None and (found := _date(person.get(key))):
            return found
    return _date(env.attributes.get("virkningfra")) or env.registered_at.date().isoformat()


def _address_changed(env: Envelope, person: Mapping[str, Any]) -> dict[str, Any]:
    to = _address(person.get("address"))
    if to is None:
        raise _Unclassified("lookup has no usable current address")
    if env.municipality_after and to["municipality_code"] != env.municipality_after:
        raise _Unclassified("lookup address is in another municipality than the event says")
    previous = _address(person.get("previous_address"))
    if previous is not None and previous["address_id"] == to["address_id"]:
        raise _Unclassified("lookup still shows the address before the move")
    if (previous is not None and env.municipality_before
            and previous["municipality_code"] != env.municipality_before):
        previous = None  # the lookup's history disagrees with the event: do not claim a `from`
    event = _base(env, "address_changed")
    event["from"] = previous
    event["to"] = to
    event["move_date"] = _event_date(env, person, "move_date", "tilflytningsdato")
    return event


def _civil_status_changed(env: Envelope, person: Mapping[str, Any]) -> dict[str, Any]:
    status = person.get("civil_status")
    if not isinstance(status, str) or status not in _CIVIL_STATUSES:  # a list is unhashable
        raise _Unclassified("lookup has no usable civil status")
    expected = _EXPECTED_CIVIL_STATUS.get(env.code or "")
    if expected is not None and status not in expected:
        raise _Unclassified("lookup civil status does not reflect the event yet")
    spouse = person.get("spouse_cpr")
    spouse_cpr = as_cpr(spouse) if spouse else None
    if spouse and spouse_cpr is None:
        raise _Unclassified("lookup spouse is not a valid CPR number")
    event = _base(env, "civil_status_changed")
    event["civil_status"] = status
    event["spouse_cpr"] = spouse_cpr
    event["date"] = _event_date(env, person, "civil_status_date", "date")
    return event


def _gone(env: Envelope, type_: str, person: Mapping[str, Any]) -> dict[str, Any]:
    status = str(person.get("status") or "").zfill(2)
    if status != _GONE_STATUS[type_]:
        raise _Unclassified(f"lookup does not show the {type_.replace('_', ' ')} event: "
                            f"status {scrub(status)}, not {_GONE_STATUS[type_]}")  # any text
    event = _base(env, type_)
    event["date"] = _event_date(env, person, "status_date", "date")
    if type_ == "emigrated":
        country = person.get("country_code")
        event["country_code"] = str(country) if country is not None else None
    return event


def _child_added(env: Envelope, person: Mapping[str, Any]) -> dict[str, Any]:
    address = _address(person.get("address"))
    if address is None:
        raise _Unclassified("lookup has no usable address of the child")
    born = _date(person.get("birth_date"))
    if born is None:
        raise _Unclassified("lookup has no birth date of the child")
    # _many: a lookup's "parents" may be one number, or no list at all (5 is not iterable)
    parents: Sequence[Any] = _many(person.get("parents") or list(env.related))
    valid = [c for c in (as_cpr(p) for p in parents) if c]
    if not valid:
        raise _Unclassified("no parent known (neither the lookup nor the message names one)")
    event = _base(env, "child_added")
    event.update(child_cpr=env.cpr, parents=valid, address=address, date=born)
    return event


async def convert_envelope(
    envelope: Mapping[str, Any] | bytes | str | Envelope, lookup_person: PersonLookup
) -> dict[str, Any]:
    """Convert one Hændelsesbesked into one canonical CPR event dict.

    * a move (A01, A03, A04, A09, P10, P31, A42) → ``address_changed``: ``to`` from the lookup's
      current address, ``from`` from its ``previous_address`` if known (else null),
      ``move_date`` from its ``move_date`` (else the envelope's virkningfra, else the
      registration date);
    * vielse / skilsmisse / registreret partnerskab / civilstandsdata (A19/A20/A23/A24, and
      separation etc. by name) → ``civil_status_changed`` with the lookup's civil status;
    * dødsfald (A21), udrejse (A06), forsvinding (A02) → ``died`` / ``emigrated`` /
      ``disappeared`` when the lookup shows status 90 / 80 / 70, with its status date;
    * fødsel (KOMBIT, no CPR code) → ``child_added`` on the child, with the child's address and
      birth date from the lookup and the parents from the lookup or the message's related
      persons;
    * names, guardianship, master data, registry notices → their type (no lookup);
    * anything else → ``cpr_event_<CODE>`` (raised as unclassified by the core).

    Raises :class:`EnvelopeError` when the envelope itself is unusable.
    """
    env = envelope if isinstance(envelope, Envelope) else parse_envelope(envelope)
    _, type_ = classify(env.business_event)
    mapping = CODES.get(env.code or "")
    try:
        if type_ == "address_changed":
            return _address_changed(env, await _lookup(env, lookup_person, env.cpr))
        if type_ == "civil_status_changed":
            return _civil_status_changed(env, await _lookup(env, lookup_person, env.cpr))
        if type_ in _GONE_STATUS:
            return _gone(env, type_, await _lookup(env, lookup_person, env.cpr))
        if type_ == "child_added":
            return _child_added(env, await _lookup(env, lookup_person, env.cpr))
    except _Unclassified as why:
        return unclassified(env, str(why))
    if type_ in ("name_changed", "guardianship_changed"):
        return _base(env, type_)
    if type_ in ("master_data_changed", "registry_notice") and mapping is not None:
        return dict(_base(env, type_), what=mapping.what)
    if mapping is not None:
        return unclassified(env, f"{env.code} ({mapping.type}) needs CPR records an envelope "
                                 "does not carry")
    return unclassified(env, "business event not mapped")
