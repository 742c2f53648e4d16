"""Turning a CPR change extract into canonical CPR events (CONTRACT.md, ``source: "cpr"``).

Every 099 record (hændelse: code ``HAENDELSE``, derived marker ``AFLEDTMRK``, registration time
``TIMESTAMPU``) becomes one event, built from the records of the same person — joined wherever
they sit in the file (:mod:`connectors.cpr.person`). Which event a code becomes is **data**:
``event_codes.csv`` beside this module holds DOMAIN.md's table "Real CPR event codes" (code,
canonical type, the builder that reads the records, CPR's name). A code not in the table
becomes ``cpr_event_<CODE>`` (upper-case, as registered) with an ``unclassified_reason``: the
core raises it — never dropped, never suppressed.

Statuses and dates are read as registered *in this extract*: the emigrated person's A06 is an
emigration with its 005 departure date whether the status changed yesterday or last year.

Rules the table alone cannot say, all from DOMAIN.md:

* **Deaths annulled in the same extract.** An A21 followed, for the same person, by an A25
  (annullation af dødsfald) while the person's current status is alive is *not* a death: no
  ``died`` event is written for it (it is counted in the summary as skipped, with the reason),
  and the A25 becomes ``death_annulled``. An A25 that annuls something else (a marriage) becomes
  ``civil_status_changed`` to the restored status (012).
* **Derived copies** share their primary's code and ``TIMESTAMPU``; that is how a copy finds its
  primary anywhere in the file (an adoption's copies on the new and former parents, markers
  NF/NM/TF/TM as well as MO/FA, all of whom count as parents; a renumbering's copies on the
  spouse ÆG or the children BØ).
* **Number changes** (P03, P42, P43) take old → new from the person's 001 (status 60 with
  PNRGAELD) or 022 (an earlier number); a copy on a relative takes them from its primary. A
  number change the extract does not link (no status 60, no 022) is not guessed: it stays
  unclassified with that reason. ``cpr`` is the old number, as the contract says; a copy
  registered on a relative carries the relative in ``registered_on``.
* **Newborns** have no code of their own: a person born on or after the previous production
  date (000 PRODDTOFORRIG) with parents in 015 becomes ``child_added`` on the child, plus a
  derived copy (MO/FA) for each parent in the file whose 014 lists the child.

Identifiers: ``event_id`` is a keyed hash (:mod:`connectors.ids`) of the 099 record (PNR, code,
TIMESTAMPU, marker, the record's text), so the same record delivered again gets the same id and
the id cannot be recomputed from a CPR number without the key. Address ids are derived from the
CPR address (:func:`connectors.cpr.person.derived_address_id`). ``registered_at`` is TIMESTAMPU
in Europe/Copenhagen (+01:00 or +02:00); when it is blank (CPR leaves it blank on record
requests, A74/K74), midnight of the production date (000 PRODDTO).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from connectors.cpr.extract import ExtractError, ExtractRecord
from connectors.cpr.person import (
    COPENHAGEN,
    GroupedExtract,
    PersonRecords,
    derived_address_id,
    group_persons,
    parse_day,
    parse_timestamp,
    valid_cpr,
)
from connectors.ids import IdKey, keyed_id

__all__ = ["CODES", "PARENT_MARKERS", "CodeMapping", "Skipped", "derived_address_id",
           "parse_day", "parse_timestamp", "to_canonical", "to_canonical_grouped"]

CODES_FILE = Path(__file__).with_name("event_codes.csv")

PARENT_MARKERS = frozenset({"MO", "FA", "NF", "NM", "TF", "TM"})
"""Derived markers of a parent's copy: mother, father, and an adoption's new and former
parents (DOMAIN.md: they count as parents)."""
CIVIL_STATUSES = frozenset("UGFEPOLD")


@dataclass(frozen=True, slots=True)
class CodeMapping:
    """One row of ``event_codes.csv``."""

    code: str
    type: str
    build: str
    what: str | None
    cpr_name: str


def load_codes(path: Path = CODES_FILE) -> dict[str, CodeMapping]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter=";")
        return {row["code"]: CodeMapping(row["code"], row["type"], row["build"],
                                         row["what"] or None, row["cpr_name"]) for row in rows}


CODES: dict[str, CodeMapping] = load_codes()
"""DOMAIN.md's "Real CPR event codes", by code."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A 099 record that on purpose becomes no event (e.g. a death annulled in the same
    extract); the ingest summary lists it with its reason. Not an error."""

    line_number: int
    code: str
    reason: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.unit} {self.line_number}: {self.code}: {self.reason}"


class _Unclassified(Exception):
    """A mapped code whose records cannot back its typed event: the reason, no guess."""


@dataclass(slots=True)
class _Ctx:
    """One 099 record being converted: its person, the record, the common fields."""

    block: PersonRecords
    rec: ExtractRecord
    base: dict[str, Any]
    mapping: CodeMapping

    @property
    def code(self) -> str:
        return str(self.base["code"])

    @property
    def marker(self) -> str | None:
        marker = self.base["derived_marker"]
        return str(marker) if marker is not None else None

    @property
    def stamp(self) -> str:
        return self.rec.get("TIMESTAMPU")

    @property
    def day(self) -> date:
        return date.fromisoformat(self.base["registered_at"][:10])

    def event(self, type_: str, **fields: Any) -> dict[str, Any]:
        return dict(self.base, type=type_, **fields)


class _Converter:
    """Converts a grouped extract; knows the whole file, so copies find their primaries."""

    def __init__(self, grouped: GroupedExtract, key: IdKey | None) -> None:
        self.grouped = grouped
        self.key = key
        self.persons = grouped.by_pnr()
        self.primaries: dict[tuple[str, str], list[tuple[PersonRecords, ExtractRecord]]] = {}
        self.copies: dict[tuple[str, str], list[tuple[PersonRecords, ExtractRecord]]] = {}
        for block in grouped.persons:
            for rec in block.events:
                index = self.copies if rec.get("AFLEDTMRK") else self.primaries
                index.setdefault((self._code(rec), rec.get("TIMESTAMPU")), []).append(
                    (block, rec))
        self.children_added: set[str] = set()

    @staticmethod
    def _code(rec: ExtractRecord) -> str:
        return rec.get("HAENDELSE").strip().upper()

    # -- common fields -----------------------------------------------------------------------

    def _registered(self, stamp: str) -> datetime | None:
        """The registration time of a record: its timestamp, else midnight (Danish time) of
        the extract's production date (record 000), else None."""
        registered = parse_timestamp(stamp)
        production = self.grouped.header.production
        if registered is None and production is not None:
            registered = datetime(production.year, production.month, production.day,
                                  tzinfo=COPENHAGEN)
        return registered

    def base(self, block: PersonRecords, rec: ExtractRecord) -> dict[str, Any] | ExtractError:
        code = self._code(rec)
        marker = rec.get("AFLEDTMRK") or None
        stamp = rec.get("TIMESTAMPU")
        registered = self._registered(stamp)
        if registered is None:
            return ExtractError(rec.line_number, "099: no valid TIMESTAMPU and no production "
                                                 "date (record 000) to fall back on", rec.unit)
        return {
            "event_id": keyed_id("cpr-extract", block.pnr, code, stamp, marker,
                                 rec.raw.rstrip(), key=self.key),
            "source": "cpr",
            "type": "",
            "registered_at": registered.isoformat(),
            "cpr": block.pnr,
            "code": code or None,
            "derived_marker": marker,
        }

    @staticmethod
    def unclassified(base: dict[str, Any], reason: str) -> dict[str, Any]:
        code = base["code"]
        return dict(base, type=f"cpr_event_{code}" if code else "cpr_event_UNKNOWN",
                    unclassified_reason=reason)

    def primary_of(self, ctx: _Ctx) -> tuple[PersonRecords, ExtractRecord] | None:
        """The primary (no marker) record of a derived copy: same code, same TIMESTAMPU."""
        found = [p for p in self.primaries.get((ctx.code, ctx.stamp), ())
                 if p[0].pnr != ctx.block.pnr]
        return found[0] if len(found) == 1 else None

    # -- one 099 record ----------------------------------------------------------------------

    def convert(self, block: PersonRecords,
                rec: ExtractRecord) -> dict[str, Any] | ExtractError | Skipped:
        base = self.base(block, rec)
        if isinstance(base, ExtractError):
            return base
        mapping = CODES.get(base["code"] or "")
        if mapping is None:
            return self.unclassified(base, "code not in DOMAIN.md's table of CPR event codes")
        ctx = _Ctx(block, rec, base, mapping)
        try:
            return _BUILDERS[mapping.build](self, ctx)
        except _Unclassified as why:
            return self.unclassified(base, str(why))

    # -- builders (named in event_codes.csv) -------------------------------------------------

    def move(self, ctx: _Ctx, *, corrected: bool = False) -> dict[str, Any]:
        if ctx.marker is not None:
            raise _Unclassified("derived move: the carrier's own address does not describe "
                                "the move")
        to = ctx.block.address()
        if to is None:
            raise _Unclassified("no current address (record 002)")
        origin = ctx.block.previous_address(corrected=corrected)
        move_day = ctx.block.move_day() or ctx.day
        return ctx.event("address_changed", to=to, move_date=move_day.isoformat(),
                         **{"from": origin})

    def correction(self, ctx: _Ctx) -> dict[str, Any]:
        if ctx.block.one("002") is None and ctx.block.status == "80" \
                and ctx.block.one("005") is not None:
            # The person lives abroad (status 80, 005): the corrected address is the foreign
            # one; their Danish residence did not change.
            return ctx.event("master_data_changed", what="foreign_address")
        return self.move(ctx, corrected=True)

    def same_address(self, ctx: _Ctx) -> dict[str, Any]:
        address = ctx.block.address()
        if address is None:
            raise _Unclassified("no current address (record 002)")
        return ctx.event("address_changed", to=address, move_date=ctx.day.isoformat(),
                         **{"from": dict(address)})

    def arrival(self, ctx: _Ctx) -> dict[str, Any]:
        to = ctx.block.address()
        if to is None:
            raise _Unclassified("no current address (record 002)")
        move_day = ctx.block.move_day() or ctx.day
        return ctx.event("address_changed", to=to, move_date=move_day.isoformat(),
                         **{"from": None})

    def disappeared(self, ctx: _Ctx) -> dict[str, Any]:
        gone = ctx.block.one("007")
        day = parse_day(gone.get("FORSVINDDTO")) if gone else None
        if day is None and ctx.block.status == "70":
            day = ctx.block.status_day
        return ctx.event("disappeared", date=(day or ctx.day).isoformat())

    def emigrated(self, ctx: _Ctx) -> dict[str, Any]:
        departure = ctx.block.one("005")
        day = parse_day(departure.get("UDRDTO")) if departure else None
        if day is None and ctx.block.status == "80":
            day = ctx.block.status_day
        country = departure.get("UDR_LANDEKOD") or None if departure else None
        return ctx.event("emigrated", date=(day or ctx.day).isoformat(), country_code=country)

    def gone_by_status(self, ctx: _Ctx) -> dict[str, Any]:
        status = ctx.block.status
        if status == "80":
            return self.emigrated(ctx)
        if status == "70":
            return self.disappeared(ctx)
        raise _Unclassified(f"{ctx.code} maps by the person's new status (80 emigrated, 70 "
                            f"disappeared); the status is {status or 'missing'}")

    def _annulled_later(self, block: PersonRecords, code: str, stamp: str,
                        marker: str | None) -> bool:
        return any(self._code(r) == code and r.get("TIMESTAMPU") >= stamp
                   and (r.get("AFLEDTMRK") or None) == marker for r in block.events)

    def _death_annulled(self, block: PersonRecords, stamp: str) -> bool:
        """An A21 of ``block`` at ``stamp`` is annulled by a later A25 and the person lives."""
        return block.alive and self._annulled_later(block, "A25", stamp, None)

    def died(self, ctx: _Ctx) -> dict[str, Any] | Skipped:
        if ctx.marker is None:
            if self._death_annulled(ctx.block, ctx.stamp):
                return Skipped(ctx.rec.line_number, ctx.code,
                               "death annulled by A25 later in this extract; the person's "
                               f"status is {ctx.block.status} (alive)", ctx.rec.unit)
            day = ctx.block.status_day if ctx.block.status == "90" else None
            return ctx.event("died", date=(day or ctx.day).isoformat())
        primary = self.primary_of(ctx)
        if (primary is not None and self._death_annulled(primary[0], ctx.stamp)) \
                or self._annulled_later(ctx.block, "A25", ctx.stamp, ctx.marker):
            return Skipped(ctx.rec.line_number, ctx.code,
                           "copy of a death annulled later in this extract", ctx.rec.unit)
        civil = ctx.block.one("012")
        day = parse_day(civil.get("HAENSTART-CIVILSTAND")) if civil else None
        return ctx.event("died", date=(day or ctx.day).isoformat())

    def civil_annulment(self, ctx: _Ctx) -> dict[str, Any]:
        block = ctx.block
        if ctx.marker is None and block.alive and (
                any(self._code(r) == "A21" and r.get("TIMESTAMPU") <= ctx.stamp
                    and not r.get("AFLEDTMRK") for r in block.events)
                or "D" in block.annulled_civil_statuses()):
            return ctx.event("death_annulled", date=ctx.day.isoformat())
        return self.civil(ctx)

    def name(self, ctx: _Ctx) -> dict[str, Any]:
        return ctx.event("name_changed")

    def civil(self, ctx: _Ctx) -> dict[str, Any]:
        civil = ctx.block.one("012")
        if civil is None or civil.get("CIVST") not in CIVIL_STATUSES:
            raise _Unclassified("no usable civil status (record 012)")
        spouse_raw = civil.get("AEGTEPNR")
        spouse = valid_cpr(spouse_raw)
        if spouse_raw.strip("0") and spouse is None:
            raise _Unclassified("spouse PNR in record 012 is not valid")
        day = parse_day(civil.get("HAENSTART-CIVILSTAND")) or ctx.day
        return ctx.event("civil_status_changed", civil_status=civil.get("CIVST"),
                         spouse_cpr=spouse, date=day.isoformat())

    def child(self, ctx: _Ctx) -> dict[str, Any]:
        if ctx.marker is None:
            child_block = ctx.block
        elif ctx.marker in PARENT_MARKERS:
            primary = self.primary_of(ctx)
            if primary is None:
                raise _Unclassified("the child of this derived copy is not in the extract")
            child_block = primary[0]
        else:
            raise _Unclassified(f"derived marker {ctx.marker} on a child event")
        address = child_block.address()
        if address is None:
            raise _Unclassified("no address of the child (record 002)")
        parents = child_block.parents()
        for copy_block, rec in self.copies.get((ctx.code, ctx.stamp), ()):
            if rec.get("AFLEDTMRK") in PARENT_MARKERS and copy_block.pnr not in parents:
                parents.append(copy_block.pnr)
        self.children_added.add(child_block.pnr)
        day = child_block.parent_since() or ctx.day
        return ctx.event("child_added", child_cpr=child_block.pnr, parents=parents,
                         address=address, date=day.isoformat())

    def protection(self, ctx: _Ctx) -> dict[str, Any]:
        return ctx.event("address_protection_changed", protected=ctx.block.protected_on(ctx.day))

    def guardianship(self, ctx: _Ctx) -> dict[str, Any]:
        return ctx.event("guardianship_changed")

    def master_data(self, ctx: _Ctx) -> dict[str, Any]:
        return ctx.event("master_data_changed", what=ctx.mapping.what)

    def notice(self, ctx: _Ctx) -> dict[str, Any]:
        return ctx.event("registry_notice", what=ctx.mapping.what)

    def _numbers(self, block: PersonRecords, marker: str | None) -> tuple[str, str] | None:
        """(old, new) from the person's own records, or None."""
        if block.status == "60" and block.current_pnr:
            return block.pnr, block.current_pnr
        if marker in (None, "PN", "PT"):
            earlier = block.earlier_pnr()
            if earlier is not None:
                return earlier, block.pnr
        return None

    def renumbering(self, ctx: _Ctx) -> dict[str, Any]:
        numbers = self._numbers(ctx.block, ctx.marker)
        if numbers is None and ctx.marker is not None:
            primary = self.primary_of(ctx)
            if primary is not None:
                numbers = self._numbers(primary[0], None)
        if numbers is None:
            raise _Unclassified("the extract does not link an old and a new number (no status "
                                "60 with PNRGAELD, no earlier number in record 022)")
        old, new = numbers
        event = ctx.event("cpr_number_changed", cpr=old, new_cpr=new)
        if old != ctx.block.pnr:
            event["registered_on"] = ctx.block.pnr
        return event

    def annulment(self, ctx: _Ctx) -> dict[str, Any]:
        day = ctx.block.status_day if ctx.block.status in ("30", "50") else None
        return ctx.event("cpr_number_annulled", date=(day or ctx.day).isoformat())

    # -- newborns ----------------------------------------------------------------------------

    def newborns(self, block: PersonRecords) -> Iterator[dict[str, Any]]:
        """``child_added`` for a person born since the previous extract (no code of its own)."""
        previous = self.grouped.header.previous_production
        birth = block.birth_date
        parents = block.parents()
        if (previous is None or birth is None or birth < previous or not parents
                or block.pnr in self.children_added or not block.alive):
            return
        address = block.address()
        if address is None:
            return
        person = block.one("001")
        assert person is not None
        registered = self._registered(person.get("STATUSHAENSTART"))
        if registered is None:
            return
        common = {"source": "cpr", "type": "child_added",
                  "registered_at": registered.isoformat(), "code": None,
                  "child_cpr": block.pnr, "parents": parents, "address": address,
                  "date": birth.isoformat()}
        yield dict(common, event_id=keyed_id("cpr-newborn", block.pnr, birth, key=self.key),
                   cpr=block.pnr, derived_marker=None)
        for parent in parents:
            parent_block = self.persons.get(parent)
            if parent_block is None or block.pnr not in parent_block.children():
                continue
            marker = block.parent_role(parent)
            yield dict(common, event_id=keyed_id("cpr-newborn", block.pnr, birth, parent,
                                                 key=self.key),
                       cpr=parent, derived_marker=marker)


_BUILDERS: dict[str, Callable[[_Converter, _Ctx], dict[str, Any] | Skipped]] = {
    name: getattr(_Converter, name) for name in (
        "move", "correction", "same_address", "arrival", "disappeared", "emigrated",
        "gone_by_status", "died", "civil_annulment", "name", "civil", "child", "protection",
        "guardianship", "master_data", "notice", "renumbering", "annulment")
}
"""Builder names as ``event_codes.csv`` uses them."""

_unknown_builders = {m.build for m in CODES.values()} - set(_BUILDERS)
assert not _unknown_builders, f"event_codes.csv names unknown builders: {_unknown_builders}"


def to_canonical_grouped(grouped: GroupedExtract, *, key: IdKey | None = None,
                         ) -> Iterator[dict[str, Any] | ExtractError | Skipped]:
    """Canonical events (JSON-ready dicts) of a grouped extract, then its errors.

    Events come per person in order of first appearance, each person's in 099 order, then the
    newborn's ``child_added`` if the person is one.
    """
    converter = _Converter(grouped, key)
    for block in grouped.persons:
        for rec in block.events:
            yield converter.convert(block, rec)
    for block in grouped.persons:
        yield from converter.newborns(block)
    yield from grouped.errors


def to_canonical(records: Iterable[ExtractRecord | ExtractError], *, key: IdKey | None = None,
                 ) -> Iterator[dict[str, Any] | ExtractError | Skipped]:
    """Canonical events from parsed records (the whole file is read first: a person's records
    are joined wherever they sit); errors pass through at the end."""
    yield from to_canonical_grouped(group_persons(records), key=key)
