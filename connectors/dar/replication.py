"""DAWA-style replication events for addresses → canonical DAR events.

Input: DAWA's replication event representation (DanmarksAdresser/Dawa
``packages/server/apiSpecification/replikering/events/representations.js``)::

    {"txid": 123, "sekvensnummer": 4567, "tidspunkt": "2018-05-04T12:13:14.123Z",
     "operation": "insert" | "update" | "delete", "data": {…}}

``txid`` is DAWA's transaction id, ``sekvensnummer`` the event's unique sequence number,
``tidspunkt`` when DAWA loaded it (``DateTimeUtc``). ``data`` is one address record. DAWA's
replication data model (``replikering/datamodel.js``) splits an address over ``adresse`` (``id,
status, adgangsadresseid, etage, dør``), ``adgangsadresse`` (``id, status, kommunekode, vejkode,
husnr, supplerendebynavn, postnr``) and ``vejstykke`` (``kommunekode, kode, navn,
adresseringsnavn``). This converter takes:

* a flat address record with those names in one object (as DAWA's ``/adresser`` "mini"/flat
  output does): ``id, status, vejkode, vejnavn, husnr, etage, dør, postnr, kommunekode`` and
  optionally ``adgangsadresseid``, ``postnrnavn``, ``supplerendebynavn``;
* an ``adgangsadresse`` record: its changes apply to the access address itself and to every
  known ``adresse`` whose ``adgangsadresseid`` is its id (a renumbered house renumbers all its
  flats);
* a ``vejstykke`` record (``kommunekode`` + ``kode`` + ``navn``, no ``husnr``): a changed ``navn``
  renames every known address on that road (that is how a street rename shows up in DAWA).

``status`` is DAWA's: 1 gældende, 2 nedlagt, 3 foreløbig, 4 henlagt (``datamodel.js``,
``misc.sql`` ``dar1_status_til_dawa_status``); the words ("Gældende", "Nedlagt", "Henlagt") are
accepted too. 2 and 4 retire the address.

Output (CONTRACT.md, DAR): ``address_renamed`` (vejnavn, or vejkode within the municipality),
``address_renumbered`` (husnr, etage or dør), ``postcode_changed`` (postnr),
``municipality_changed`` (kommunekode), ``address_retired`` (delete, or status 2/4; ``after``
null). When one update changes several things, one event is emitted, of the most significant
type (retired > municipality > postcode > renumbered > renamed); its ``after`` shows everything
and ``changes`` (ignored by the core) lists the changed fields. Changes to anything else
(coordinates, ``ændret``) update the book silently.

Not emitted, on purpose:

* an ``insert`` of an address the book does not know: nobody can be registered at an address that
  did not exist, so there is nothing to triage; it is only remembered;
* an ``update`` or ``delete`` of an address the book has never seen: without the previous version
  there is no ``before``. Seed the :class:`AddressBook` from a DAWA/DAR extract (``udtræk``) at
  the starting ``txid`` so that this does not happen; such events are counted in
  :attr:`AddressBook.unknown`.

``event_id`` is a UUID5 of (``txid``, ``sekvensnummer``, address id): replaying the same
replication stream gives the same ids, so the core dedups redeliveries. ``registered_at`` is
``tidspunkt`` with its offset (UTC when none is given).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from triage.models.address import Address

__all__ = ["DAR_NAMESPACE", "ENTITY_ORDER", "AddressBook", "convert_replication", "entity_of",
           "event_id", "ordered", "read_replication_file"]

DAR_NAMESPACE = uuid.UUID("5b0f4d3e-6a1c-5d52-9f0e-2a7c1d8e4b61")
"""Namespace of the UUID5 event ids (fixed: changing it would re-key every event)."""

_RETIRED_STATUS = frozenset({"2", "4", "nedlagt", "henlagt"})
_PRIORITY = ("address_retired", "municipality_changed", "postcode_changed",
             "address_renumbered", "address_renamed")
_FIELDS = ("kommunekode", "vejkode", "vejnavn", "husnr", "etage", "dør", "postnr", "postnrnavn",
           "supplerendebynavn", "adgangsadresseid", "status")
_ACCESS_FIELDS = ("kommunekode", "vejkode", "vejnavn", "husnr", "postnr", "postnrnavn",
                  "supplerendebynavn", "status")


def event_id(txid: Any, sekvensnummer: Any, address_id: str) -> str:
    """Deterministic event id for one address in one replication event."""
    return str(uuid.uuid5(DAR_NAMESPACE, f"{txid}:{sekvensnummer}:{address_id}"))


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_ALIASES: dict[str, tuple[str, ...]] = {
    "dør": ("dør", "doer", "dor"),
    "vejnavn": ("vejnavn", "adresseringsvejnavn"),
    "status": ("status", "darstatus"),
}


def _record(data: Mapping[str, Any]) -> dict[str, str | None]:
    """The tracked fields ``data`` carries, as strings (absent fields are left out)."""
    rec: dict[str, str | None] = {}
    for name in _FIELDS:
        for key in _ALIASES.get(name, (name,)):
            if key in data:
                rec[name] = _str(data[key])
                break
    return rec


def _retired(rec: Mapping[str, str | None]) -> bool:
    status = rec.get("status")
    return status is not None and status.lower() in _RETIRED_STATUS


def _label(address_id: str, rec: Mapping[str, str | None]) -> str | None:
    if not rec.get("vejnavn"):
        return None
    text = f"{rec['vejnavn']} {rec.get('husnr') or ''}".strip()
    unit = ", ".join(p for p in (rec.get("etage") and f"{rec['etage']}.", rec.get("dør")) if p)
    if unit:
        text = f"{text}, {unit}"
    if rec.get("postnr"):
        text = f"{text}, {rec['postnr']} {rec.get('postnrnavn') or ''}".rstrip()
    return text


def _address(address_id: str, rec: Mapping[str, str | None]) -> dict[str, Any] | None:
    """The canonical Address dict, or None when a required field is missing."""
    try:
        return Address.model_validate({
            "address_id": address_id,
            "municipality_code": rec.get("kommunekode"),
            "road_code": rec.get("vejkode"),
            "house_number": rec.get("husnr"),
            "floor": rec.get("etage"),
            "door": rec.get("dør"),
            "postcode": rec.get("postnr"),
            "label": _label(address_id, rec),
        }).model_dump(mode="json")
    except ValidationError:
        return None


@dataclass
class AddressBook:
    """The last known version of each address id (the small state the converter needs).

    ``records`` maps address id → the tracked DAWA fields. It is plain JSON-able data: persist it
    with :meth:`snapshot` and reload with :meth:`restore` together with the last ``txid``.
    """

    records: dict[str, dict[str, str | None]] = field(default_factory=dict)
    unknown: int = 0
    """Updates/deletes of ids never seen (no ``before``, so no event)."""
    incomplete: int = 0
    """Changes that could not become an Address (a required field missing)."""
    sekvensnummer: int | None = None
    """The last sekvensnummer applied. Events at or below it are skipped (a restart that replays
    from an older position emits nothing twice and never rolls an address back)."""
    replayed: int = 0
    """Events skipped because they were at or below their entity's position."""
    positions: dict[str, list[int]] = field(default_factory=dict)
    """Per entity (``adgangsadresse``, ``adresse``, ``vejstykke``, …) the last (txid,
    sekvensnummer) applied. Entities are fetched one by one (DAWA's own guide does so), so each
    keeps its own position: a unit event is never "replayed" because a house event with a
    higher number came first."""
    roads: dict[str, str] = field(default_factory=dict)
    """Road names by ``kommunekode:vejkode`` (from vejstykke records): an adgangsadresse
    carries no road name of its own."""
    problems: list[str] = field(default_factory=list)
    """Changes that could not be turned into events, each naming its txid/sekvensnummer and
    why (e.g. a unit whose adgangsadresse is unknown). ``triage ingest`` reports them as
    errors: nothing is dropped silently."""

    def add(self, address: Mapping[str, Any]) -> None:
        """Seed from a DAWA record (``id`` …) or a canonical Address dict (``address_id`` …)."""
        if "address_id" in address:
            self.records[str(address["address_id"])] = {
                "kommunekode": _str(address.get("municipality_code")),
                "vejkode": _str(address.get("road_code")),
                "vejnavn": None, "husnr": _str(address.get("house_number")),
                "etage": _str(address.get("floor")), "dør": _str(address.get("door")),
                "postnr": _str(address.get("postcode")), "postnrnavn": None,
                "supplerendebynavn": None, "adgangsadresseid": None, "status": "1",
            }
        else:
            rec: dict[str, str | None] = {name: None for name in _FIELDS}
            rec.update(_record(address))
            self.records[str(address["id"])] = rec

    def get(self, address_id: str) -> dict[str, Any] | None:
        """The canonical Address of a known id, else None."""
        rec = self.records.get(address_id)
        return _address(address_id, rec) if rec is not None else None

    def __contains__(self, address_id: object) -> bool:
        return address_id in self.records

    def __len__(self) -> int:
        return len(self.records)

    def snapshot(self) -> dict[str, Any]:
        return {"records": {k: dict(v) for k, v in self.records.items()},
                "sekvensnummer": self.sekvensnummer,
                "positions": {k: list(v) for k, v in self.positions.items()},
                "roads": dict(self.roads)}

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> AddressBook:
        return cls(records={k: dict(v) for k, v in data.get("records", {}).items()},
                   sekvensnummer=data.get("sekvensnummer"),
                   positions={k: list(v) for k, v in data.get("positions", {}).items()},
                   roads=dict(data.get("roads", {})))


def _timestamp(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("tidspunkt missing")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # DAWA's schema: DateTimeUtc
    return parsed.isoformat()


def _kind(before: Mapping[str, str | None], after: Mapping[str, str | None]) -> tuple[
        str | None, list[str]]:
    changed = [f for f in _FIELDS if f not in ("status", "postnrnavn", "adgangsadresseid")
               and before.get(f) != after.get(f)]
    kinds = set()
    if _retired(after):
        kinds.add("address_retired")
    if "kommunekode" in changed:
        kinds.add("municipality_changed")
    if "postnr" in changed:
        kinds.add("postcode_changed")
    if {"husnr", "etage", "dør"} & set(changed):
        kinds.add("address_renumbered")
    if {"vejnavn", "vejkode"} & set(changed):
        kinds.add("address_renamed")
    for kind in _PRIORITY:
        if kind in kinds:
            return kind, changed
    return None, changed


class _Converter:
    def __init__(self, book: AddressBook) -> None:
        self.book = book

    def emit(self, ev: Mapping[str, Any], address_id: str,
             new: dict[str, str | None] | None) -> dict[str, Any] | None:
        """Compare the book's version of ``address_id`` with ``new`` (None = deleted)."""
        old = self.book.records.get(address_id)
        if new is None or _retired(new):
            self.book.records.pop(address_id, None)
        else:
            self.book.records[address_id] = new
        if old is None:
            if new is not None and ev.get("operation") != "insert":
                self.book.unknown += 1
                self.book.problems.append(
                    f"txid {ev.get('txid')} sekvensnummer {ev.get('sekvensnummer')}: "
                    f"{ev.get('operation')} of address {address_id}, never seen before: no "
                    "'before' to compare with (seed the book from an udtræk)")
            return None
        if _retired(old):
            return None
        if new is None:
            kind: str | None = "address_retired"
            changed: list[str] = []
        else:
            kind, changed = _kind(old, new)
        if kind is None:
            return None
        before = _address(address_id, old)
        after = None if kind == "address_retired" else _address(address_id, new or {})
        if before is None or (kind != "address_retired" and after is None):
            self.book.incomplete += 1
            return None
        try:
            registered_at = _timestamp(ev.get("tidspunkt"))
        except ValueError:
            # A poison event must not stop the stream (the poller would retry the same round
            # for ever): the change is a problem naming its position, like an unknown house.
            self.book.incomplete += 1
            self.book.problems.append(
                f"txid {ev.get('txid')} sekvensnummer {ev.get('sekvensnummer')}: "
                f"{kind} of address {address_id}: tidspunkt is missing or not ISO 8601")
            return None
        return {
            "event_id": event_id(ev.get("txid"), ev.get("sekvensnummer"), address_id),
            "source": "dar",
            "type": kind,
            "registered_at": registered_at,
            "address_id": address_id,
            "before": before,
            "after": after,
            "changes": changed,
            "txid": ev.get("txid"),
            "sekvensnummer": ev.get("sekvensnummer"),
        }

    def _replayed(self, ev: Mapping[str, Any], entity: str) -> bool:
        seq, txid = _int(ev.get("sekvensnummer")), _int(ev.get("txid"))
        position = [txid, seq]
        if position == [-1, -1]:
            return False
        last = self.book.positions.get(entity)
        if last is not None and position <= last:
            self.book.replayed += 1
            return True
        self.book.positions[entity] = position
        if seq >= 0 and (self.book.sekvensnummer is None or seq > self.book.sekvensnummer):
            self.book.sekvensnummer = seq
        return False

    def convert(self, ev: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        data = ev.get("data")
        operation = ev.get("operation")
        if not isinstance(data, Mapping) or operation not in ("insert", "update", "delete"):
            return
        entity = entity_of(ev)
        if self._replayed(ev, entity):
            return
        if entity == "vejstykke":
            yield from self._road(ev, data)
            return
        if entity in ("postnummer", "ejerlav", "other"):
            return
        address_id = _str(data.get("id"))
        if address_id is None:
            return
        provided = None if operation == "delete" else _record(data)
        if entity == "adgangsadresse":
            if provided is not None and not provided.get("vejnavn"):
                road = self.book.roads.get(_road_key(provided.get("kommunekode"),
                                                     provided.get("vejkode")))
                if road:
                    provided["vejnavn"] = road
            yield from self._units(ev, address_id, provided)
        new: dict[str, str | None] | None = None
        if provided is not None:
            # A record may omit fields (an adgangsadresse has no vejnavn): keep the known ones.
            merged: dict[str, str | None] = {name: None for name in _FIELDS}
            merged.update(self.book.records.get(address_id) or {})
            merged.update(provided)
            new = merged
            access = merged.get("adgangsadresseid")
            if entity == "adresse" and access and access != address_id:
                house = self.book.records.get(access)
                if house is None:
                    self.book.records[address_id] = merged
                    self.book.problems.append(
                        f"txid {ev.get('txid')} sekvensnummer {ev.get('sekvensnummer')}: "
                        f"adresse {address_id}: its adgangsadresse {access} is not known "
                        "(seed the book from an udtræk at the starting txid)")
                    self.book.incomplete += 1
                    return
                merged.update({f: house.get(f) for f in _ACCESS_FIELDS if f != "status"})
        if (event := self.emit(ev, address_id, new)) is not None:
            yield event

    def _units(self, ev: Mapping[str, Any], access_id: str,
               new: dict[str, str | None] | None) -> Iterator[dict[str, Any]]:
        """An adgangsadresse changed: apply it to every known adresse under it."""
        units = [k for k, v in self.book.records.items()
                 if v.get("adgangsadresseid") == access_id and k != access_id]
        for unit_id in units:
            old = self.book.records[unit_id]
            if new is None:
                unit_new: dict[str, str | None] | None = None
            else:
                unit_new = dict(old)
                unit_new.update({f: v for f, v in new.items() if f in _ACCESS_FIELDS})
            if (event := self.emit(ev, unit_id, unit_new)) is not None:
                yield event

    def _road(self, ev: Mapping[str, Any], data: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """A vejstykke changed: a new ``navn`` renames every known address on it."""
        kommune, kode, navn = (_str(data.get(k)) for k in ("kommunekode", "kode", "navn"))
        if navn is None or kommune is None or kode is None:
            return
        if ev.get("operation") != "delete":
            self.book.roads[_road_key(kommune, kode)] = navn
        if ev.get("operation") != "update":
            return
        kommune, kode = kommune.zfill(4), kode.zfill(4)
        for address_id, old in list(self.book.records.items()):
            on_road = ((old.get("kommunekode") or "").zfill(4) == kommune
                       and (old.get("vejkode") or "").zfill(4) == kode)
            if on_road and old.get("vejnavn") != navn and (
                    event := self.emit(ev, address_id, {**old, "vejnavn": navn})) is not None:
                yield event


def _int(value: Any) -> int:
    """An integer position, or -1 when absent (DAWA's 2017 format has no txid)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _road_key(kommune: str | None, kode: str | None) -> str:
    return f"{(kommune or '').zfill(4)}:{(kode or '').zfill(4)}"


ENTITY_ORDER = ("vejstykke", "postnummer", "adgangsadresse", "adresse")
"""Within one transaction, roads and houses are applied before the units that refer to them."""


def entity_of(ev: Mapping[str, Any]) -> str:
    """The DAWA entity of a replication event: given (``entitet``, as the poller and the file
    reader annotate it) or recognised from its data."""
    given = ev.get("entitet")
    if isinstance(given, str) and given:
        return given
    data = ev.get("data")
    if not isinstance(data, Mapping):
        return "other"
    if "husnr" in data or ("adgangsadresseid" in data and "etage" not in data
                           and "dør" not in data):
        return "adgangsadresse" if "etage" not in data and "dør" not in data \
            and "adgangsadresseid" not in data else "adresse"
    if "adgangsadresseid" in data or "etage" in data or "dør" in data:
        return "adresse"
    if "kode" in data and "kommunekode" in data:
        return "vejstykke"
    if "nr" in data:
        return "postnummer"
    return "other"


def ordered(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Events of several entities merged in DAWA's order: by ``txid``, then houses before
    units within a transaction, then ``sekvensnummer`` (a stable sort: equal keys keep their
    order). Events without a ``txid`` (DAWA's 2017 format) sort by ``sekvensnummer``."""
    def key(ev: Mapping[str, Any]) -> tuple[int, int, int]:
        txid, seq = _int(ev.get("txid")), _int(ev.get("sekvensnummer"))
        entity = entity_of(ev)
        rank = ENTITY_ORDER.index(entity) if entity in ENTITY_ORDER else len(ENTITY_ORDER)
        return (txid, rank if txid >= 0 else 0, seq)
    return sorted(events, key=key)


def read_replication_file(data: bytes) -> list[dict[str, Any]]:
    """Replication events from a file: a JSON object ``{entity: [events]}`` (as the sample and
    DAWA's per-entity fetches give them), a JSON list, or JSON Lines; each event annotated with
    its ``entitet`` and the whole merged by :func:`ordered`. Raises ValueError naming the
    line or item that is not an event object."""
    import orjson

    try:
        doc: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    if doc is None:
        lines = [(n, line) for n, line in enumerate(data.splitlines(), start=1) if line.strip()]
        items: list[dict[str, Any]] = []
        for number, line in lines:
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise ValueError(f"line {number}: not JSON") from None
            if not isinstance(item, dict):
                raise ValueError(f"line {number}: not an event object")
            items.append(item)
        return [dict(e) for e in ordered(items)]
    if isinstance(doc, dict):
        merged: list[dict[str, Any]] = []
        for entity, events in doc.items():
            if not isinstance(events, list):
                raise ValueError(f"entity {entity}: not a list of events")
            for number, item in enumerate(events, start=1):
                if not isinstance(item, dict):
                    raise ValueError(f"entity {entity} item {number}: not an event object")
                merged.append({**item, "entitet": entity})
        return [dict(e) for e in ordered(merged)]
    if isinstance(doc, list):
        for number, item in enumerate(doc, start=1):
            if not isinstance(item, dict):
                raise ValueError(f"item {number}: not an event object")
        return [dict(e) for e in ordered(doc)]
    raise ValueError("neither a JSON object of entities, a JSON list nor JSON Lines")


def convert_replication(events: Iterable[Mapping[str, Any]],
                        book: AddressBook) -> Iterator[dict[str, Any]]:
    """Canonical DAR events for a stream of DAWA replication events, in order.

    ``book`` is updated as the events are read (it is the state between calls). Events must come
    in order (:func:`ordered`: ``txid``, then sequence number); an event at or below its
    entity's last position is skipped, so replaying from an older position is harmless.
    """
    converter = _Converter(book)
    for ev in events:
        yield from converter.convert(ev)
