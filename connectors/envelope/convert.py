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

Timestamps: ``registered_at`` is the envelope's ``registreringstid`` (= afleveringsdato), else
``Leveranceinformation.dannelsestidspunkt``, else the outer ``Timestamp``. Datafordeler writes
them with ``+HH:MM`` or ``Z``; a time without offset is taken as UTC. The output always carries an
offset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

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


class PersonLookup(Protocol):
    """``await lookup_person(cpr)`` → the person's current CPR data, or ``None`` if unknown.

    The dict has the persons-record shape of CONTRACT.md ("Reference data"): ``address`` (an
    Address dict, or null), ``civil_status``, ``spouse_cpr``, ``status``; optionally
    ``previous_address`` (Address dict; the address before the latest move), ``move_date``
    (tilflytningsdato), ``civil_status_date``, ``status_date`` (statusdato: date of death,
    emigration, disappearance) and ``country_code`` (udrejseland). A Datafordeler ``CprAdresse``
    (``daradresse``, ``cprkommunekode``, ``cprvejkode``, ``husnummer``, ``etage``, ``sidedoer``,
    ``postnummer``) is accepted in place of an Address dict. It may raise on failure.
    """

    async def __call__(self, cpr: str, /) -> dict[str, Any] | None: ...


class EnvelopeError(ValueError):
    """The envelope cannot be converted at all (no message id, no CPR number, no time).

    The message never contains a CPR number. The caller dead-letters the original bytes.
    """


TYPE_BY_CODE: dict[str, str] = {
    "A01": "address_changed",
    "A13": "name_changed",
    "A19": "civil_status_changed",
    "A20": "civil_status_changed",
    "A21": "died",
    "A23": "civil_status_changed",
}
"""CPR hændelseskode → canonical type (registries.md §1.3)."""

CODE_BY_NAME: dict[str, str] = {
    "flytning": "A01",
    "navneaendring": "A13",
    "vielse": "A19",
    "skilsmisse": "A20",
    "doedsfald": "A21",
    "registreret partnerskab": "A23",
    "registreretpartnerskab": "A23",
    "partnerskab": "A23",
}
"""Business-event names whose CPR code is known."""

_TYPE_BY_NAME: dict[str, str] = {
    "udrejse": "emigrated",
    "udvandring": "emigrated",
    "forsvinden": "disappeared",
    "forsvundet": "disappeared",
    "forsvinding": "disappeared",
    "separation": "civil_status_changed",
    "enkestand": "civil_status_changed",
    "ophaevet partnerskab": "civil_status_changed",
    "ophaevelse af partnerskab": "civil_status_changed",
}
"""Business events recognised by name only (their codes are not public, registries.md §8)."""

_EXPECTED_CIVIL_STATUS: dict[str, frozenset[str]] = {
    "A19": frozenset("G"),
    "A20": frozenset("F"),
    "A23": frozenset("P"),
}
"""What the register must show after the event; anything else means the lookup lags behind."""

_CIVIL_STATUSES = frozenset("UGFEPOLD")
_CODE_RE = re.compile(r"^[A-Z]\d{2}$")
_TRANSLIT = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "ae", "Ø": "oe", "Å": "aa"})


# --- parsing the envelope (pure) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the converter takes from one Hændelsesbesked."""

    message_id: str
    registered_at: datetime
    cpr: str
    business_event: str
    """The raw forretningshaendelse ("A01", "Flytning", …)."""
    code: str | None
    """The CPR hændelseskode when known, else None."""
    municipality_before: str | None
    municipality_after: str | None
    derived_marker: str | None
    attributes: Mapping[str, Any]
    """Normalised ``Beskeddata[].Objektdata.attributes`` (may be empty)."""


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
    """ISO 8601 with ``Z``, ``+HH:MM`` or (taken as UTC) no offset; up to 7 fraction digits."""
    text = _text(value)
    if text is None:
        raise EnvelopeError("timestamp missing")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise EnvelopeError("timestamp is not ISO 8601") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _as_cpr(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
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


def _classify(event: str) -> tuple[str | None, str | None]:
    """(CPR code or None, canonical type or None) for a forretningshaendelse."""
    token = event.strip()
    if token.lower().startswith("cpr.businessevent."):
        token = token[len("cpr.businessevent."):]
    if _CODE_RE.match(token.upper()):
        return token.upper(), TYPE_BY_CODE.get(token.upper())
    name = " ".join(token.translate(_TRANSLIT).lower().replace("-", " ").split())
    named = CODE_BY_NAME.get(name)
    if named is not None:
        return named, TYPE_BY_CODE[named]
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
    doc = _normalise(envelope)
    message = _message(doc)
    kuvert = message.get("beskedkuvert") or {}
    filtrering = kuvert.get("filtreringsdata") or {}
    registration = _first(filtrering.get("objektregistrering")) or {}
    delivery = kuvert.get("leveranceinformation") or {}
    attributes: dict[str, Any] = {}
    for item in message.get("beskeddata") or []:
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

    cpr = _as_cpr(registration.get("objektid")) or _as_cpr(attributes.get("personid"))
    if cpr is None:
        for rel in filtrering.get("relateretobjekt") or []:
            if isinstance(rel, Mapping) and (cpr := _as_cpr(rel.get("objektid"))):
                break
    if cpr is None:
        for key in ("pnr", "personnummer", "cprnummer"):
            if cpr := _as_cpr(attributes.get(key)):
                break
    if cpr is None:
        raise EnvelopeError("no CPR number in the envelope (person id is not a PNR)")

    code, _ = _classify(event)
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
    )


# --- conversion (async: looks the person up) -------------------------------------------------


class _Unclassified(Exception):
    """Internal: the lookup cannot back a classified event; the message says why."""


def _address(value: Any) -> dict[str, Any] | None:
    """A canonical Address dict from an Address dict or a Datafordeler CprAdresse, else None."""
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
        "event_id": env.message_id,
        "source": "cpr",
        "type": type_,
        "registered_at": env.registered_at.isoformat(),
        "cpr": env.cpr,
        "code": env.code,
        "derived_marker": env.derived_marker,
    }


def _unknown_type(env: Envelope) -> str:
    if env.code is not None:
        return f"cpr_event_{env.code}"
    slug = re.sub(r"[^a-z0-9]+", "_", env.business_event.translate(_TRANSLIT).lower()).strip("_")
    return f"cpr_event_{slug or 'unknown'}"


def unclassified(env: Envelope, reason: str) -> dict[str, Any]:
    """The event the core raises as unclassified: never suppressed, never dropped."""
    event = _base(env, _unknown_type(env))
    event["business_event"] = env.business_event
    event["municipality_before"] = env.municipality_before
    event["municipality_after"] = env.municipality_after
    event["unclassified_reason"] = reason
    return event


async def _lookup(lookup: PersonLookup, cpr: str) -> dict[str, Any]:
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
    if status not in _CIVIL_STATUSES:
        raise _Unclassified("lookup has no usable civil status")
    expected = _EXPECTED_CIVIL_STATUS.get(env.code or "")
    if expected is not None and status not in expected:
        raise _Unclassified("lookup civil status does not reflect the event yet")
    spouse = person.get("spouse_cpr")
    spouse_cpr = _as_cpr(spouse) if spouse else None
    if spouse and spouse_cpr is None:
        raise _Unclassified("lookup spouse is not a valid CPR number")
    event = _base(env, "civil_status_changed")
    event["civil_status"] = status
    event["spouse_cpr"] = spouse_cpr
    event["date"] = _event_date(env, person, "civil_status_date", "date")
    return event


async def convert_envelope(
    envelope: Mapping[str, Any] | bytes | str | Envelope, lookup_person: PersonLookup
) -> dict[str, Any]:
    """Convert one Hændelsesbesked into one canonical CPR event dict.

    * A01 flytning → ``address_changed``: ``to`` from the lookup's current address, ``from`` from
      its ``previous_address`` if known (else null), ``move_date`` from its ``move_date`` (else the
      envelope's virkningfra, else the registration date).
    * vielse / skilsmisse / registreret partnerskab (A19/A20/A23, and separation etc. by name) →
      ``civil_status_changed`` with the lookup's ``civil_status``/``spouse_cpr``.
    * dødsfald (A21) → ``died``; udrejse → ``emigrated``; forsvinden → ``disappeared``: the date
      (and udrejseland) from the lookup if it answers, else the envelope's dates. These need no
      lookup to be classified, so a failed lookup does not make them unclassified.
    * navneændring (A13) → ``name_changed`` (no lookup).
    * anything else → ``cpr_event_<code>`` (raised as unclassified by the core).

    When an address or civil-status event's lookup fails, returns nothing, or returns data that
    does not reflect the event (another municipality than ``KommuneNuvaerende``, the old address,
    the old civil status), the result is a ``cpr_event_<code>`` event with
    ``unclassified_reason``: the core raises it, it never suppresses it on a guess.

    Raises :class:`EnvelopeError` when the envelope itself is unusable.
    """
    env = envelope if isinstance(envelope, Envelope) else parse_envelope(envelope)
    _, type_ = _classify(env.business_event)
    try:
        if type_ == "address_changed":
            return _address_changed(env, await _lookup(lookup_person, env.cpr))
        if type_ == "civil_status_changed":
            return _civil_status_changed(env, await _lookup(lookup_person, env.cpr))
    except _Unclassified as why:
        return unclassified(env, str(why))
    if type_ in ("died", "emigrated", "disappeared"):
        try:
            person: dict[str, Any] | None = await _lookup(lookup_person, env.cpr)
        except _Unclassified:
            person = None
        event = _base(env, type_)
        event["date"] = _event_date(env, person, "status_date", "date")
        if type_ == "emigrated":
            country = person.get("country_code") if person else None
            event["country_code"] = str(country) if country is not None else None
        return event
    if type_ == "name_changed":
        return _base(env, "name_changed")
    return unclassified(env, "business event not mapped")
