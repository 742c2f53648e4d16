"""The records of one person in a CPR extract, joined wherever they sit in the file.

CPR delivers, per changed person, 001 (personoplysninger), the current data (002 address, 003
clear-text address, 004 protection, 005 emigration, 007 disappearance, 012 civil status, 014
children, 015 parents), history (022 earlier numbers, 023 earlier addresses, 029 earlier civil
statuses) and one 099 record per event. The records of a person are *not* always adjacent: in
the CPR office's own test extract every 003 record sits at the end of the file. So
:func:`group_persons` reads the whole file and joins each person's records by PNR before
anything is converted; :class:`PersonRecords` answers the questions the converters ask
("where does the person live, with which postcode", "which address did they leave").

Only the record types the converters read are kept (:data:`KEPT`), so memory grows with the
persons in the file, not with its history records.
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

ADDRESS_NAMESPACE = uuid.UUID("0d6b5a0e-8a3f-5c1d-b2a4-7e9f4c3d2b10")
"""Namespace of the derived (non-DAR) address ids."""

KEPT = frozenset({"001", "002", "003", "004", "005", "007", "008", "012", "014", "015", "022",
                  "023", "029", "099"})
"""Record types the converters use; the others are validated and counted, then let go."""

ALIVE_STATUSES = frozenset({"01", "03", "05", "07"})
"""CPR statuses of a living person registered in Denmark or Greenland."""

NAME_AND_ADDRESS_PROTECTION = "0001"
"""BESKYTTYPE of navne- og adressebeskyttelse (record 004)."""


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


def strip_zeros(value: str) -> str:
    """CPR zero-pads house numbers and floors ("016", "01"); DAR does not ("16", "1")."""
    stripped = value.lstrip("0")
    return stripped if stripped or not value else "0"


def derived_address_id(komkod: str, vejkod: str, husnr: str, etage: str, sidedoer: str) -> str:
    """Deterministic stand-in for the DAR address id of a CPR address.

    The classic extract carries no DAR address UUID, so the same CPR address (kommunekode,
    vejkode, husnummer, etage, sidedør, normalised) always gets the same UUIDv5. A real
    deployment looks the address up in DAR instead; these ids match only other ids derived here
    (the persons snapshot built from a full extract uses the same function).
    """
    key = "|".join((komkod.zfill(4), vejkod.zfill(4), strip_zeros(husnr).upper(),
                    strip_zeros(etage).lower(), sidedoer.lower()))
    return str(uuid.uuid5(ADDRESS_NAMESPACE, key))


def valid_cpr(value: str) -> str | None:
    """``value`` if it is a valid CPR number (not all zeros), else None."""
    if not value or not value.strip("0"):
        return None
    try:
        return cprnumber.validate(value)
    except cprnumber.InvalidCpr:
        return None


def _address(rec: ExtractRecord, postcode: str) -> dict[str, Any]:
    komkod, vejkod = rec.get("KOMKOD"), rec.get("VEJKOD")
    husnr, etage, door = rec.get("HUSNR"), rec.get("ETAGE"), rec.get("SIDEDOER")
    return {
        "address_id": derived_address_id(komkod, vejkod, husnr, etage, door),
        "municipality_code": komkod.zfill(4),
        "road_code": vejkod.zfill(4),
        "house_number": strip_zeros(husnr),
        "floor": strip_zeros(etage) or None,
        "door": door or None,
        "postcode": postcode,
    }


# --- one person --------------------------------------------------------------------------------


@dataclass
class PersonRecords:
    """Every kept record of one PNR in one extract, in file order per type."""

    pnr: str
    records: dict[str, list[ExtractRecord]] = field(default_factory=dict)

    def __repr__(self) -> str:  # never the PNR in clear
        return f"PersonRecords({cprnumber.mask(self.pnr)}, {sorted(self.records)})"

    def add(self, record: ExtractRecord) -> None:
        self.records.setdefault(record.record_type, []).append(record)

    def one(self, kind: str) -> ExtractRecord | None:
        found = self.records.get(kind)
        return found[0] if found else None

    def all(self, kind: str) -> list[ExtractRecord]:
        return self.records.get(kind, [])

    @property
    def events(self) -> list[ExtractRecord]:
        return self.all("099")

    # -- 001 -------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        person = self.one("001")
        return person.get("STATUS") if person else ""

    @property
    def status_day(self) -> date | None:
        person = self.one("001")
        return parse_day(person.get("STATUSHAENSTART")) if person else None

    @property
    def alive(self) -> bool:
        return self.status in ALIVE_STATUSES

    @property
    def current_pnr(self) -> str | None:
        """PNRGAELD when it names another valid number (status 60 or 50: the person goes on
        under that number), else None."""
        person = self.one("001")
        if person is None:
            return None
        current = valid_cpr(person.get("PNRGAELD"))
        return current if current and current != self.pnr else None

    @property
    def birth_date(self) -> date | None:
        person = self.one("001")
        return parse_day(person.get("FOED_DT")) if person else None

    # -- addresses -------------------------------------------------------------------------

    def address(self) -> dict[str, Any] | None:
        """The current address (002) with its postcode from the clear-text address (003, which
        may sit anywhere in the file), or None when the person has no Danish address."""
        rec = self.one("002")
        if rec is None or not rec.get("KOMKOD").strip("0") or not rec.get("VEJKOD").strip("0"):
            return None
        return _address(rec, self.postcode(rec))

    def postcode(self, rec: ExtractRecord) -> str:
        """POSTNR of the 003 record describing the same address as ``rec``, else ""."""
        key = (rec.get("KOMKOD").zfill(4), rec.get("VEJKOD").zfill(4),
               strip_zeros(rec.get("HUSNR")).upper())
        for clear in self.all("003"):
            if (clear.get("KOMKOD").zfill(4), clear.get("VEJKOD").zfill(4),
                    strip_zeros(clear.get("HUSNR")).upper()) == key and clear.get("POSTNR"):
                return clear.get("POSTNR")
        return ""

    def move_day(self) -> date | None:
        rec = self.one("002")
        return parse_day(rec.get("TILFLYDTO")) if rec else None

    def previous_address(self, *, corrected: bool = False) -> dict[str, Any] | None:
        """The address the person left: the latest historical address (023) not annulled.

        With ``corrected`` (A09, korrektion), a corrected-away record (ANNKOR ``K``) ending at
        the same time wins over a plain one. The change extract has no postcode for a previous
        address; it comes from a 003 record only when one describes it, else it is "".
        """
        best: tuple[str, int, ExtractRecord] | None = None
        for rec in self.all("023"):
            marker = rec.get("ANNKOR")
            if marker == "A" or not rec.get("KOMKOD").strip("0"):
                continue
            rank = 1 if corrected and marker == "K" else 0
            key = (rec.get("FRAFLYDTO"), rank)
            if best is None or key > best[:2]:
                best = (key[0], key[1], rec)
        if best is None:
            return None
        return _address(best[2], self.postcode(best[2]))

    # -- protection, civil status, relatives -----------------------------------------------

    def protected_on(self, day: date) -> bool:
        """Navne- og adressebeskyttelse (004 type 0001) in force on ``day``."""
        for rec in self.all("004"):
            if rec.get("BESKYTTYPE") != NAME_AND_ADDRESS_PROTECTION:
                continue
            start = parse_day(rec.get("START_DT-BESKYTTELSE"))
            end = parse_day(rec.get("SLET_DT-BESKYTTELSE"))
            if (start is None or start <= day) and (end is None or day < end):
                return True
        return False

    def annulled_civil_statuses(self) -> list[str]:
        """CIVST of every historical civil status annulled (029 with ANNKOR ``A``)."""
        return [rec.get("CIVST") for rec in self.all("029") if rec.get("ANNKOR") == "A"]

    def parents(self) -> list[str]:
        rec = self.one("015")
        if rec is None:
            return []
        found = (valid_cpr(rec.get("PNRMOR")), valid_cpr(rec.get("PNRFAR")))
        return [p for p in found if p]

    def parent_role(self, parent: str) -> str | None:
        """``"MO"`` or ``"FA"`` when ``parent`` is this person's mother or father (015)."""
        rec = self.one("015")
        if rec is None:
            return None
        if rec.get("PNRMOR") == parent:
            return "MO"
        if rec.get("PNRFAR") == parent:
            return "FA"
        return None

    def parent_since(self) -> date | None:
        """When the latest of the parent relations began (015 MOR_DT/FAR_DT): the birth, or
        the adoption."""
        rec = self.one("015")
        if rec is None:
            return None
        days = [d for d in (parse_day(rec.get("MOR_DT")), parse_day(rec.get("FAR_DT"))) if d]
        return max(days) if days else None

    def children(self) -> list[str]:
        return [c for c in (valid_cpr(r.get("BARNPNR")) for r in self.all("014")) if c]

    def earlier_pnr(self) -> str | None:
        """The person's latest earlier number (022), when it is a valid number."""
        latest: tuple[str, str] | None = None
        for rec in self.all("022"):
            number = valid_cpr(rec.get("HISTPNR"))
            if number and number != self.pnr:
                key = rec.get("SLUT_DT-HISTPNR")
                if latest is None or key > latest[0]:
                    latest = (key, number)
        return latest[1] if latest else None


@dataclass
class ExtractHeader:
    """What the start record says about the whole file."""

    production: date | None = None
    previous_production: date | None = None


@dataclass
class GroupedExtract:
    """A whole extract joined per person: the header, the persons in order of first
    appearance, and every error met on the way (in file order)."""

    header: ExtractHeader
    persons: list[PersonRecords]
    errors: list[ExtractError]
    records: int = 0

    def by_pnr(self) -> dict[str, PersonRecords]:
        return {p.pnr: p for p in self.persons}


def _error_record(rec: ExtractRecord) -> ExtractError:
    """CPR's own error record 910, reported (the input data may hold a PNR: not shown)."""
    text = scrub(rec.get("FEJLTXT-UDTRAEK")) or "no text"
    return ExtractError(rec.line_number, f"CPR error record 910, FEJLNR "
                                         f"{rec.get('FEJLNR') or '?'}: {text}", rec.unit)


def group_persons(items: Iterable[ExtractRecord | ExtractError]) -> GroupedExtract:
    """Join every person's records, wherever they sit in the file."""
    header = ExtractHeader()
    persons: dict[str, PersonRecords] = {}
    errors: list[ExtractError] = []
    count = 0
    for item in items:
        if isinstance(item, ExtractError):
            errors.append(item)
            continue
        count += 1
        kind = item.record_type
        if kind == "000":
            header = ExtractHeader(parse_day(item.get("PRODDTO")),
                                   parse_day(item.get("PRODDTOFORRIG")))
        elif kind == "910":
            errors.append(_error_record(item))
        pnr = item.pnr
        if pnr is None or kind not in KEPT:
            continue
        block = persons.get(pnr)
        if block is None:
            block = persons[pnr] = PersonRecords(pnr)
        block.add(item)
    return GroupedExtract(header, list(persons.values()), errors, count)


def iter_events(grouped: GroupedExtract) -> Iterator[tuple[PersonRecords, ExtractRecord]]:
    """Every 099 record with its person, persons in order of first appearance."""
    for block in grouped.persons:
        for rec in block.events:
            yield block, rec
