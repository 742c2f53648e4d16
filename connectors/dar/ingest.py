"""``triage ingest dar-replication FILE``: DAWA-compatible replication events → DAR events.

The file holds replication events as a DAWA-compatible service serves them: one JSON object of
entities (``{"adgangsadresse": [...], "adresse": [...], ...}``, one list per entity as they are
fetched entity by entity), a JSON list, or JSON Lines. They are merged in DAWA's order
(``txid``, then houses before units, then ``sekvensnummer``) and converted through an
:class:`~connectors.dar.replication.AddressBook`, optionally loaded from and saved to ``--book``
(the udtræk the stream starts from, and each entity's position). Every change that cannot
become an event — a unit whose house is unknown, an update of an address never seen — is an
error naming its txid and sequence number. Kafka: topic ``dar.events``, key the address id.
"""

from __future__ import annotations

import json
import os
from os import PathLike
from pathlib import Path

from connectors.dar.replication import AddressBook, convert_replication, read_replication_file
from connectors.output import IngestFailed, IngestSummary, checked, open_private, write_events

__all__ = ["TOPIC", "ingest_dar_replication", "load_book", "save_book"]

TOPIC = "dar.events"


def load_book(path: Path | None) -> AddressBook:
    if path is None or not path.exists():
        return AddressBook()
    try:
        return AddressBook.restore(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise IngestFailed(f"{path}: not a usable address book: {exc}") from None


def save_book(path: Path | None, book: AddressBook) -> None:
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp) as handle:
        handle.write(json.dumps(book.snapshot(), sort_keys=True).encode())
    os.replace(tmp, path)  # atomic: the old state or the new, never half


def ingest_dar_replication(path: str | PathLike[str], *, out: Path | None = None,
                           bootstrap: str | None = None,
                           book_path: Path | None = None) -> IngestSummary:
    summary = IngestSummary()
    try:
        events = read_replication_file(Path(path).read_bytes())
    except OSError as exc:
        raise IngestFailed(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        summary.errors.append(f"file {Path(path).name}: {exc}")
        return summary
    summary.records = len(events)
    book = load_book(book_path)
    converted = list(convert_replication(events, book))
    summary.errors += book.problems
    if book.replayed:
        summary.skipped.append(f"{book.replayed} events at or below their entity's position "
                               "(already applied)")
    write_events(checked(converted, summary, "address_id"), out=out, bootstrap=bootstrap,
                 topic=TOPIC)
    save_book(book_path, book)
    return summary
