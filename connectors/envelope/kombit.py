"""KOMBIT Beskedfordeler XML (``Haendelsesbesked``) → :class:`~connectors.envelope.Envelope`.

Municipalities receive CPR business events from KOMBIT's Fælleskommunal Beskedfordeler as XML
messages in the namespace ``urn:oio:besked:kuvert:1.0`` (schema ``Beskedkuvert.xsd``, shipped in
``connectors/envelope/xsd/`` with the schemas it imports; source: rimi-itk/
Beskedfordeler_kodeeksempler, "Beskedfordeler version 5.10", commit a0b7b51b). A message is
parsed with lxml (no network, no DTDs, no entity expansion) and **validated against the schema**
before anything is read from it; a message that is not well-formed or not valid raises
:class:`~connectors.envelope.EnvelopeError` naming the line and the reason (CPR numbers masked).

What is read (``b:`` the kuvert namespace, identifiers in ``urn:oio:sagdok:3.0.0``):

* ``b:BeskedId`` — the sender's message id; the canonical ``event_id`` is a keyed hash of it,
  the ``ObjektRegistreringId`` and the registration time (KOMBIT's own test messages reuse one
  BeskedId for two different registrations, so the id alone is not unique);
* the first ``b:Filtreringsdata/b:ObjektRegistrering``: ``b:ObjektId`` — the person, as
  ``urn:oio:cpr-nr:NNNNNNNNNN`` (KOMBIT's form) or a bare PNR; ``b:Registreringstidspunkt`` —
  the event time (Danish local time when it has no offset; ``Dannelsestidspunkt`` only when it
  is missing); ``b:ObjektHandling`` — a UUID naming what happened;
* every ``b:RelateretObjekt`` (one or many) — related persons (for a birth: the parents);
* ``b:Beskeddata`` — when it holds CPR basic information for the person (``pnr``, ``status``,
  ``statusdato``, ``civilstand``, ``foedselsdato``, ``kommunekode``, ``vejkode``, ``husnummer``,
  ``etage``, ``sidedoer``, ``postnummer``, ``tilflytningsdato``, as in CPR's
  CPRBasicInformationService), it is used as the person lookup's answer; otherwise the injected
  lookup is asked.

``ObjektHandling`` UUIDs are mapped by a data table, :data:`ACTIONS_FILE` (``uuid;event;name``:
``event`` a CPR hændelseskode or a business-event name the converter knows, e.g. ``A21`` or
``Fødsel``). It holds the two actions KOMBIT's test messages name (Dødsfald
298aa424-…-2bdab17fd11f, Fødsel 1e5bb089-…-bc854053f423); a municipality adds its own list, in
the same format, with :func:`load_actions` (``triage ingest envelope --actions FILE``). An
action not in the table becomes ``cpr_event_UNKNOWN`` with the UUID in ``action``: raised,
never guessed.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import Any, cast

from lxml import etree

from connectors.cpr.extract import scrub
from connectors.envelope.convert import (
    Envelope,
    EnvelopeError,
    as_cpr,
    classify,
    parse_timestamp,
)
from connectors.ids import IdKey, keyed_id

__all__ = ["ACTIONS_FILE", "SCHEMA_FILE", "Action", "load_actions", "parse_kombit", "schema"]

XSD_DIR = Path(__file__).with_name("xsd")
SCHEMA_FILE = XSD_DIR / "Beskedkuvert.xsd"
ACTIONS_FILE = Path(__file__).with_name("kombit_actions.csv")

KUVERT = "urn:oio:besked:kuvert:1.0"
SAGDOK = "urn:oio:sagdok:3.0.0"
_NS = {"b": KUVERT, "sd": SAGDOK}


@dataclass(frozen=True, slots=True)
class Action:
    """One ObjektHandling UUID: the business event it stands for and its name."""

    uuid: str
    event: str
    name: str


def load_actions(extra: str | PathLike[str] | None = None) -> dict[str, Action]:
    """The shipped action table, with a municipality's own table (same format) over it."""
    actions: dict[str, Action] = {}
    for path in (ACTIONS_FILE, extra):
        if path is None:
            continue
        try:
            with Path(path).open(encoding="utf-8", newline="") as handle:
                for number, row in enumerate(csv.DictReader(handle, delimiter=";"), start=2):
                    uuid, event = (row.get("uuid") or "").strip().lower(), row.get("event")
                    if not uuid or not event or not event.strip():
                        raise EnvelopeError(f"{path}: line {number}: needs uuid and event")
                    actions[uuid] = Action(uuid, event.strip(), (row.get("name") or "").strip())
        except OSError as exc:
            raise EnvelopeError(f"{path}: cannot read: {exc.strerror}") from None
    return actions


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    """Beskedkuvert.xsd with its imports, loaded once (from the package, never the network)."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_FILE), _parser()))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           remove_comments=True)


def _text(node: etree._Element | None, path: str) -> str | None:
    if node is None:
        return None
    found = node.find(path, _NS)
    if found is None:
        return None
    for child in found.iter():
        if child is not found and child.text and child.text.strip() and len(child) == 0:
            return child.text.strip()
    return found.text.strip() if found.text and found.text.strip() else None


def _identifier(node: etree._Element | None, path: str) -> str | None:
    """The UUIDIdentifikator or URNIdentifikator of a UnikIdType element."""
    if node is None:
        return None
    found = node.find(path, _NS)
    if found is None:
        return None
    for name in ("UUIDIdentifikator", "URNIdentifikator"):
        value = found.findtext(f"sd:{name}", namespaces=_NS)
        if value and value.strip():
            return value.strip()
    return None


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _basic_information(message: etree._Element, cpr: str) -> dict[str, Any] | None:
    """CPR basic information about ``cpr`` carried in Beskeddata, in the lookup's shape."""
    for data in message.findall("b:Beskeddata", _NS):
        for node in data.iter():
            fields = {_local(c.tag): (c.text or "").strip() for c in node if len(c) == 0}
            if as_cpr(fields.get("pnr")) != cpr:
                continue
            person: dict[str, Any] = {"cpr": cpr}
            if fields.get("status"):
                person["status"] = fields["status"].zfill(2)
            for key, name in (("statusdato", "status_date"), ("civilstand", "civil_status"),
                              ("foedselsdato", "birth_date"),
                              ("tilflytningsdato", "move_date")):
                if fields.get(key):
                    person[name] = fields[key]
            if fields.get("kommunekode") and fields.get("vejkode"):
                person["address"] = {k: fields.get(k) for k in (
                    "kommunekode", "vejkode", "husnummer", "etage", "sidedoer", "postnummer",
                    "standardadresse")}
            return person
    return None


def parse_kombit(data: bytes, *, actions: Mapping[str, Action] | None = None,
                 key: IdKey | None = None) -> Envelope:
    """Validate and read one KOMBIT Haendelsesbesked."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise EnvelopeError(f"not well-formed XML: {scrub(str(exc))}") from None
    if cast(Any, root.getroottree().docinfo).doctype:  # lxml-stubs lack DocInfo.doctype
        # A message never has a DTD; an entity it declares stays an unresolved reference,
        # on which lxml's schema validation fails with an internal error instead of an answer.
        raise EnvelopeError("a DOCTYPE (DTD, entities) is not allowed in a Haendelsesbesked")
    validator = schema()
    try:
        valid = validator.validate(root)
    except etree.XMLSchemaValidateError as exc:
        raise EnvelopeError(f"cannot be validated against Beskedkuvert.xsd: {scrub(str(exc))}"
                            ) from None
    if not valid:
        first = cast(Any, validator.error_log)[0]  # lxml-stubs lack __getitem__
        raise EnvelopeError(f"not valid against Beskedkuvert.xsd: line {first.line}: "
                            f"{scrub(first.message)}")
    if root.tag != f"{{{KUVERT}}}Haendelsesbesked":
        raise EnvelopeError(f"not a Haendelsesbesked but {_local(root.tag)}")
    actions = actions if actions is not None else load_actions()
    message_id = _identifier(root, "b:BeskedId")
    if message_id is None:
        raise EnvelopeError("BeskedId missing")
    filtrering = root.find("b:Beskedkuvert/b:Filtreringsdata", _NS)
    registration = filtrering.find("b:ObjektRegistrering", _NS) if filtrering is not None \
        else None
    if registration is None:
        raise EnvelopeError("no ObjektRegistrering: nothing says what happened")
    related = tuple(c for c in (as_cpr(_identifier(r, "b:ObjektId")) for r in
                                filtrering.findall("b:RelateretObjekt", _NS)) if c) \
        if filtrering is not None else ()
    cpr = as_cpr(_identifier(registration, "b:ObjektId"))
    if cpr is None:
        raise EnvelopeError("ObjektRegistrering/ObjektId is not a CPR number "
                            "(expected urn:oio:cpr-nr:…)")
    when = _text(registration, "b:Registreringstidspunkt") or _text(
        root, "b:Beskedkuvert/b:Leveranceinformation/b:Dannelsestidspunkt")
    registered_at = parse_timestamp(when)
    action_id = (_identifier(registration, "b:ObjektHandling") or "").lower() or None
    action = actions.get(action_id or "")
    business_event = action.event if action else f"ObjektHandling {action_id or 'missing'}"
    code, _ = classify(business_event) if action else (None, None)
    registration_id = _identifier(registration, "b:ObjektRegistreringId")
    return Envelope(
        message_id=message_id,
        registered_at=registered_at,
        cpr=cpr,
        business_event=business_event,
        code=code,
        municipality_before=None,
        municipality_after=None,
        derived_marker=None,
        related=tuple(r for r in related if r != cpr),
        person_data=_basic_information(root, cpr),
        event_id=keyed_id("kombit", message_id, registration_id, registered_at.isoformat(),
                          key=key),
        action=action_id,
    )
