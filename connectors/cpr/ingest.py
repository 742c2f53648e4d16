"""Ingesting a CPR change extract: file → canonical events → JSON Lines file or Kafka.

:func:`ingest_cpr_extract` is what ``triage ingest cpr-extract FILE (--out FILE | --kafka
BOOTSTRAP)`` calls. It reads the file in whichever form it was delivered
(:mod:`connectors.cpr.extract`), joins each person's records, converts every 099 record
(:mod:`connectors.cpr.events`), checks every produced event with
:func:`triage.models.events.parse_event` (an event the service would reject is reported as an
error, never sent), and returns an :class:`~connectors.output.IngestSummary` with the counts,
the skipped records and every error by line or record. Errors are never skipped silently.

Kafka: topic ``cpr.events``, key the CPR number (UTF-8), value the event as JSON (UTF-8).
"""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from connectors.cpr.events import Skipped, to_canonical_grouped
from connectors.cpr.extract import ExtractError, read_extract
from connectors.cpr.person import group_persons
from connectors.ids import IdKey
from connectors.output import IngestSummary, checked, write_events

__all__ = ["TOPIC", "IngestSummary", "convert_file", "ingest_cpr_extract"]

TOPIC = "cpr.events"


def convert_file(path: str | PathLike[str], summary: IngestSummary, *,
                 key: IdKey | None = None) -> Iterator[dict[str, Any]]:
    """The canonical events of the extract at ``path``; records, skips and errors counted in
    ``summary``."""
    grouped = group_persons(read_extract(path))
    summary.records = grouped.records
    for item in to_canonical_grouped(grouped, key=key):
        if isinstance(item, ExtractError):
            summary.errors.append(str(item))
        elif isinstance(item, Skipped):
            summary.skipped.append(str(item))
        else:
            yield item


def ingest_cpr_extract(
    path: str | PathLike[str],
    *,
    out: Path | None = None,
    bootstrap: str | None = None,
    topic: str = TOPIC,
    key: IdKey | None = None,
    allow_trimmed: bool = True,
) -> IngestSummary:
    """Convert the extract at ``path`` and write the events to ``out`` (JSON Lines, mode 0600)
    or produce them to Kafka at ``bootstrap`` ("host:port"). Exactly one of the two.

    ``allow_trimmed`` is accepted for callers of the first version: trimmed lines are always
    padded now. Raises :class:`~connectors.output.IngestFailed` when nothing can be written.
    """
    del allow_trimmed
    summary = IngestSummary()
    events = convert_file(path, summary, key=key)
    write_events(checked(events, summary, "cpr"), out=out, bootstrap=bootstrap, topic=topic)
    return summary
