"""Turning CPR extract records into canonical CPR events (CONTRACT.md, ``source: "cpr"``).

The extract delivers, per person, a block of records that starts with 001 (CPR always sends 001
and 099 for a changed person) followed by the person's current data (002 address, 005
emigration, 008 names, 012 civil status, 014 children, 015 parents, …) and one 099 record per
event (hændelseskode ``HAENDELSE``, derived marker ``AFLEDTMRK``, registration time
``TIMESTAMPU``). :func:`to_canonical` groups the records per person and turns **each 099 record**
into one event, reading the data it needs from the same block:

==========================  =================================================================
099 code / condition        canonical event
==========================  =================================================================
A01 (flytning), primary     ``address_changed``: ``to`` from 002, ``move_date`` from TILFLYDTO,
                            ``from`` null (the classic extract carries no previous address
                            beyond the previous kommunekode FRAFLYKOMKOD)
A13 (navneændring)          ``name_changed``
A19 / A20 / A23             ``civil_status_changed``: ``civil_status`` CIVST, ``spouse_cpr``
                            AEGTEPNR (null when blank), ``date`` HAENSTART-CIVILSTAND, all from
                            the carrier's own 012 (a derived ÆG/PA copy describes the spouse)
A21 (dødsfald)              ``died``; primary: ``date`` from 001 STATUSHAENSTART when STATUS is
                            90; a derived ÆG/PA copy is kept as ``died`` on the survivor with its
                            marker (the core resolves it to the spouse)
A35 (adoption), primary     ``child_added`` with ``cpr`` = ``child_cpr`` = the child, ``parents``
                            from the child's 015 (PNRMOR, PNRFAR), ``address`` from its 002
A35 derived MO/FA           the parent's copy of the primary above, matched in the same file
                            through the parent's 014 child records (BARNPNR)
any other code, primary,    STATUS 90 → ``died``, 80 → ``emigrated`` (``country_code`` and
status 90/80/70 changed     ``date`` from 005 UDR_LANDEKOD/UDRDTO), 70 → ``disappeared``
since the last extract      (``date`` from 007 FORSVINDDTO): once per block
anything else               ``cpr_event_<code>`` with ``code`` set — unclassified, raised by the
                            core; never dropped
==========================  =================================================================

When a mapped code lacks the data its typed event needs (an A01 without 002, an A19 without 012,
a derived A01, an A35 copy whose child cannot be identified), the event is *not* guessed: it
becomes the unclassified ``cpr_event_<code>`` event with an ``unmapped_reason`` field (ignored by
the core), so it is raised rather than lost.

Births: the public sources do not name the hændelseskode of a birth, so only A35 is mapped to
``child_added`` (:data:`CHILD_CODES`); add the birth code there once it is confirmed from the
Udtræksvejledning. A parent-only extract (the child not subscribed) lists all the parent's
children in 014 and cannot tell which is new, so such a copy stays unclassified.

Identifiers:

* ``event_id`` is a UUIDv5 of (PNR, code, TIMESTAMPU, derived marker, the 099 record's text), so
  re-ingesting the same file — or the same record delivered again in a later file — gives the
  same id, and the core treats it as a redelivery.
* ``address_id``: the classic extract has no DAR address UUID. It is derived deterministically
  (UUIDv5 of kommunekode, vejkode, husnummer, etage, sidedør, normalised) so that the same
  CPR address always gets the same id. A real deployment must look the address up in DAR
  (Datafordeler ``CprAdresse.daradresse`` / DAWA ``adgangsadresser`` by kommunekode + vejkode +
  husnr) instead: these derived ids do not match DAR ids held elsewhere (e.g. a register
  snapshot built from DAR).
* ``registered_at``: TIMESTAMPU of the 099 record in Europe/Copenhagen time (+01:00 or +02:00);
  when it is missing or not a valid time, midnight of the extract's production date (000
  PRODDTO).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.cpr.extract import ExtractError, ExtractRecord, scrub
from triage import cprnumber

COPENHAGEN = ZoneInfo("Europe/Copenhagen")

EVENT_NAMESPACE = uuid.UUID("6f1d3c1e-52a4-5b8e-9c57-3b0f1f2a0c99")
"""Namespace of the UUIDv5 event ids (fixed forever: changing it changes every id)."""
ADDRESS_NAMESPACE = uuid.UUID("0d6b5a0e-8a3f-5c1d-b2a4-7e9f4c3d2b10")
"""Namespace of the derived (non-DAR) address ids."""

MOVE_CODES = frozenset({"A01"})
NAME_CODES = frozenset({"A13"})
CIVIL_CODES = frozenset({"A19", "A20", "A23"})
DEATH_CODES = frozenset({"A21"})
CHILD_CODES = frozenset({"A35"})
MAPPED_CODES = MOVE_CODES | NAME_CODES | CIVIL_CODES | DEATH_CODES | CHILD_CODES

PARENT_MARKERS = {"MO", "FA"}
CIVIL_STATUSES = frozenset("UGFEPOLD")
GONE_BY_STATUS = {"90": "died", "80": "emigrated", "70": "disappeared"}


# --- small converters ------------------------------------------------------------------------


def parse_timestamp(value: str) -> datetime | None:
    """``yyyyMMddHHmm`` (CPR local time) → aware datetime in Europe/Copenhagen, or None."""
    if len(value) != 12 or not value.isdigit() or value == "0" * 12:
        return None
    try:
        naive = datetime.strptime(value, "%Y%m%d%H%M")
    except ValueError:
        return None
    return naive.replace(tzinfo=COPENHAGEN)


def parse_day(value: str) -> date | None:
    """``yyyyMMdd``, ``yyyyMMddHHmm`` or ``yyyy-MM-dd`` → date, or None when blank/invalid."""
    text = value.replace("-", "")[:8]
    if len(text) != 8 or not text.isdigit() or text == "0" * 8:
        return None
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _strip_zeros(value: str) -> str:
    """CPR zero-pads house numbers and floors ("016", "01"); DAR does not ("16", "1")."""
    stripped = value.lstrip("0")
    return stripped if stripped or not value else "0"


def derived_address_id(komkod: str, vejkod: str, husnr: str, etage: str, sidedoer: str) -> str:
    """Deterministic stand-in for the DAR address id of a CPR address (see module doc)."""
    key = "|".join((komkod.zfill(4), vejkod.zfill(4), _strip_zeros(husnr).upper(),
                    _strip_zeros(etage).lower(), sidedoer.lower()))
    return str(uuid.uuid5(ADDRESS_NAMESPACE, key))


def _valid_cpr(value: str) -> str | None:
    if not value:
        return None
    try:
        return cprnumber.validate(value)
    except cprnumber.InvalidCpr:
        return None


# --- per-person blocks -----------------------------------------------------------------------


@dataclass
class _Block:
    """The records of one person in one extract."""

    pnr: str
    first: dict[str, ExtractRecord] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    events: list[ExtractRecord] = field(default_factory=list)

    def add(self, record: ExtractRecord) -> None:
        kind = record.record_type
        if kind == "099":
            self.events.append(record)
        elif kind == "014":
            self.children.append(record.get("BARNPNR"))
        else:
            self.first.setdefault(kind, record)

    def rec(self, kind: str) -> ExtractRecord | None:
        return self.first.get(kind)


@dataclass
class _Extract:
    """What the start record says about the whole file."""

    production: date | None = None
    previous_production: date | None = None


@dataclass
class _PendingCopy:
    """A parent's derived copy of a child event, resolved at the end of the file."""

    base: dict[str, Any]
    line_number: int
    children: tuple[str, ...]


class _Converter:
    def __init__(self) -> None:
        self.extract = _Extract()
        self.primaries: list[dict[str, Any]] = []  # child_added primaries seen in this file
        self.pending: list[_PendingCopy] = []

    # -- common fields -------------------------------------------------------------------

    def base(self, block: _Block, rec: ExtractRecord) -> dict[str, Any] | ExtractError:
        code = rec.get("HAENDELSE").upper()
        marker = rec.get("AFLEDTMRK") or None
        stamp = rec.get("TIMESTAMPU")
        registered = parse_timestamp(stamp)
        if registered is None and self.extract.production is not None:
            prod = self.extract.production
            registered = datetime(prod.year, prod.month, prod.day, tzinfo=COPENHAGEN)
        if registered is None:
            return ExtractError(rec.line_number, "099: no valid TIMESTAMPU and no production "
                                                 "date (record 000) to fall back on")
        key = "|".join((block.pnr, code, stamp, marker or "", rec.raw.rstrip()))
        return {
            "event_id": str(uuid.uuid5(EVENT_NAMESPACE, key)),
            "source": "cpr",
            "type": "",
            "registered_at": registered.isoformat(),
            "cpr": block.pnr,
            "code": code or None,
            "derived_marker": marker,
        }

    @staticmethod
    def unclassified(base: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        code = base["code"]
        event = dict(base, type=f"cpr_event_{code.lower()}" if code else "cpr_event_unknown")
        if reason:
            event["unmapped_reason"] = reason
        return event

    # -- data from the block ---------------------------------------------------------------

    @staticmethod
    def address(block: _Block) -> dict[str, Any] | None:
        rec = block.rec("002")
        if rec is None or not rec.get("KOMKOD") or not rec.get("VEJKOD"):
            return None
        komkod, vejkod = rec.get("KOMKOD"), rec.get("VEJKOD")
        husnr, etage, door = rec.get("HUSNR"), rec.get("ETAGE"), rec.get("SIDEDOER")
        postcode = ""
        clear = block.rec("003")  # klarskriftadresse: the only place with POSTNR
        if clear is not None and (clear.get("KOMKOD"), clear.get("VEJKOD")) == (komkod, vejkod):
            postcode = clear.get("POSTNR")
        return {
            "address_id": derived_address_id(komkod, vejkod, husnr, etage, door),
            "municipality_code": komkod.zfill(4),
            "road_code": vejkod.zfill(4),
            "house_number": _strip_zeros(husnr),
            "floor": _strip_zeros(etage) or None,
            "door": door or None,
            "postcode": postcode,
        }

    def status_is_new(self, status_date: date | None) -> bool:
        """Whether 001's status changed since the previous extract (PRODDTOFORRIG)."""
        previous = self.extract.previous_production
        return previous is None or status_date is None or status_date >= previous

    # -- one 099 record --------------------------------------------------------------------

    def convert(self, block: _Block, rec: ExtractRecord,
                gone_done: list[bool]) -> dict[str, Any] | ExtractError | None:
        base = self.base(block, rec)
        if isinstance(base, ExtractError):
            return base
        code, marker = base["code"], base["derived_marker"]
        event_day = date.fromisoformat(base["registered_at"][:10])
        person = block.rec("001")
        status = person.get("STATUS") if person else ""
        status_day = parse_day(person.get("STATUSHAENSTART")) if person else None

        if code in MOVE_CODES:
            if marker is not None:
                return self.unclassified(base, "derived move: the carrier's own address "
                                               "does not describe the move")
            to = self.address(block)
            if to is None:
                return self.unclassified(base, "no current address (record 002)")
            rec002 = block.rec("002")
            move_day = parse_day(rec002.get("TILFLYDTO")) if rec002 else None
            return dict(base, type="address_changed", to=to,
                        move_date=(move_day or event_day).isoformat(), **{"from": None})

        if code in NAME_CODES:
            return dict(base, type="name_changed")

        if code in CIVIL_CODES:
            civil = block.rec("012")
            if civil is None or civil.get("CIVST") not in CIVIL_STATUSES:
                return self.unclassified(base, "no usable civil status (record 012)")
            spouse_raw = civil.get("AEGTEPNR")
            spouse = _valid_cpr(spouse_raw)
            if spouse_raw and spouse is None:
                return self.unclassified(base, "spouse PNR in record 012 is not valid")
            day = parse_day(civil.get("HAENSTART-CIVILSTAND")) or event_day
            return dict(base, type="civil_status_changed", civil_status=civil.get("CIVST"),
                        spouse_cpr=spouse, date=day.isoformat())

        if code in DEATH_CODES:
            if marker is None:
                gone_done[0] = True
                day = status_day if status == "90" and status_day else event_day
            else:
                civil = block.rec("012")
                day = (parse_day(civil.get("HAENSTART-CIVILSTAND")) if civil else None) \
                    or event_day
            return dict(base, type="died", date=day.isoformat())

        if code in CHILD_CODES:
            return self.child(block, rec, base, event_day)

        if marker is None and status in GONE_BY_STATUS and not gone_done[0] \
                and self.status_is_new(status_day):
            gone_done[0] = True
            return self.gone(block, base, status, status_day or event_day)

        return self.unclassified(base)

    def gone(self, block: _Block, base: dict[str, Any], status: str,
             day: date) -> dict[str, Any]:
        kind = GONE_BY_STATUS[status]
        event = dict(base, type=kind, date=day.isoformat())
        if kind == "emigrated":
            departure = block.rec("005")
            event["country_code"] = None
            if departure is not None:
                event["country_code"] = departure.get("UDR_LANDEKOD") or None
                event["date"] = (parse_day(departure.get("UDRDTO")) or day).isoformat()
        elif kind == "disappeared":
            gone = block.rec("007")
            if gone is not None:
                event["date"] = (parse_day(gone.get("FORSVINDDTO")) or day).isoformat()
        return event

    def child(self, block: _Block, rec: ExtractRecord, base: dict[str, Any],
              event_day: date) -> dict[str, Any] | None:
        marker = base["derived_marker"]
        if marker is None:
            parents_rec = block.rec("015")
            parents = [p for p in (
                _valid_cpr(parents_rec.get("PNRMOR")) if parents_rec else None,
                _valid_cpr(parents_rec.get("PNRFAR")) if parents_rec else None,
            ) if p]
            address = self.address(block)
            if address is None:
                return self.unclassified(base, "no address of the child (record 002)")
            event = dict(base, type="child_added", child_cpr=block.pnr, parents=parents,
                         address=address, date=event_day.isoformat())
            self.primaries.append(event)
            return event
        if marker in PARENT_MARKERS:
            self.pending.append(_PendingCopy(base, rec.line_number, tuple(block.children)))
            return None  # resolved in finish(), once every primary of the file is known
        return self.unclassified(base, f"derived marker {marker} on a child event")

    def finish(self) -> Iterator[dict[str, Any]]:
        """Resolve the parents' derived copies of child events against the primaries."""
        for copy in self.pending:
            parent, code = copy.base["cpr"], copy.base["code"]
            matches = [p for p in self.primaries
                       if p["code"] == code and parent in p["parents"]
                       and (not copy.children or p["child_cpr"] in copy.children)]
            if len(matches) != 1:
                yield self.unclassified(copy.base, "the child of this derived copy is not in "
                                                   "the extract" if not matches else
                                        "several children match this derived copy")
                continue
            primary = matches[0]
            yield dict(copy.base, type="child_added", child_cpr=primary["child_cpr"],
                       parents=list(primary["parents"]), address=dict(primary["address"]),
                       date=primary["date"])

    # -- the block -------------------------------------------------------------------------

    def block(self, block: _Block) -> Iterator[dict[str, Any] | ExtractError]:
        gone_done = [False]
        for rec in block.events:
            result = self.convert(block, rec, gone_done)
            if result is not None:
                yield result

    def start(self, rec: ExtractRecord) -> None:
        self.extract = _Extract(parse_day(rec.get("PRODDTO")),
                                parse_day(rec.get("PRODDTOFORRIG")))


def _error_record(rec: ExtractRecord) -> ExtractError:
    """CPR's own error record 910, reported (the input data may hold a PNR: not shown)."""
    text = scrub(rec.get("FEJLTXT-UDTRAEK")) or "no text"
    return ExtractError(rec.line_number, f"CPR error record 910, FEJLNR "
                                         f"{rec.get('FEJLNR') or '?'}: {text}")


def to_canonical(
    records: Iterable[ExtractRecord | ExtractError],
) -> Iterator[dict[str, Any] | ExtractError]:
    """Canonical CPR events (JSON-ready dicts) from parsed records; errors pass through.

    Events come out in file order, one per 099 record, except the parents' derived copies of
    child events, which come out at the end of the file (they need the child's own block).
    """
    conv = _Converter()
    current: _Block | None = None
    for rec in records:
        if isinstance(rec, ExtractError):
            yield rec
            continue
        kind = rec.record_type
        pnr = rec.pnr
        if pnr is None:
            if current is not None:
                yield from conv.block(current)
                current = None
            if kind == "000":
                conv.start(rec)
            elif kind == "910":
                yield _error_record(rec)
            continue
        if current is None or kind == "001" or pnr != current.pnr:
            if current is not None:
                yield from conv.block(current)
            current = _Block(pnr)
        current.add(rec)
    if current is not None:
        yield from conv.block(current)
    yield from conv.finish()
