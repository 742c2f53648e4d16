"""A persons snapshot from a full CPR extract: the register the service starts from.

A municipality can order a full extract of its residents in the same fixed-width family as the
change extract (records 001, 002, 003, 012, …; every form :mod:`connectors.cpr.extract` reads).
:func:`persons_from_extract` turns each person in it into a CONTRACT.md persons record —
``cpr``, ``address`` (current 002 with the postcode from 003; null for someone not living in
Denmark), ``civil_status`` and ``spouse_cpr`` (012), ``birth_date`` (001 FOED_DT), ``status``
(001) — with the same derived address ids the change-extract connector gives, so events and
snapshot agree. A person whose number is no longer in use (status 30 annulled, 50 deleted as a
double number, 60 changed: the person goes on under PNRGAELD) is left out and listed as skipped.

``triage snapshot cpr-extract FILE --out persons.jsonl`` writes the file (mode 0600).
"""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

import orjson

from connectors.cpr.extract import read_extract
from connectors.cpr.person import PersonRecords, group_persons, valid_cpr
from connectors.output import IngestFailed, IngestSummary, open_private
from triage.models.events import parse_record
from triage.models.reference import PersonRecord

__all__ = ["persons_from_extract", "write_persons"]

RETIRED_NUMBER = frozenset({"30", "50", "60"})


def _person(block: PersonRecords) -> dict[str, Any]:
    civil = block.one("012")
    status = civil.get("CIVST") if civil else ""
    birth = block.birth_date
    return {
        "cpr": block.pnr,
        "address": block.address() if block.alive else None,
        "civil_status": status if status in "UGFEPOLD" and status else "U",
        "spouse_cpr": valid_cpr(civil.get("AEGTEPNR")) if civil else None,
        "birth_date": birth.isoformat() if birth else None,
        "status": block.status,
    }


def persons_from_extract(path: str | PathLike[str],
                         summary: IngestSummary) -> Iterator[dict[str, Any]]:
    grouped = group_persons(read_extract(path))
    summary.records = grouped.records
    summary.errors += [str(e) for e in grouped.errors]
    for block in grouped.persons:
        person = block.one("001")
        if person is None:
            summary.errors.append(f"{block.all(next(iter(block.records)))[0].where}: person "
                                  "without record 001")
            continue
        if block.status in RETIRED_NUMBER:
            summary.skipped.append(f"{person.where}: status {block.status}: the number is no "
                                   "longer in use")
            continue
        record = _person(block)
        try:
            parse_record(PersonRecord, record)
        except ValueError as exc:
            summary.errors.append(f"{person.where}: {exc}")
            continue
        summary.events += 1
        summary.by_type["person"] += 1
        yield record


def write_persons(path: str | PathLike[str], out: Path) -> IngestSummary:
    summary = IngestSummary()
    try:
        handle = open_private(out)
    except OSError as exc:
        raise IngestFailed(f"{out}: cannot write: {exc.strerror}") from None
    with handle:
        for record in persons_from_extract(path, summary):
            handle.write(orjson.dumps(record) + b"\n")
    return summary
