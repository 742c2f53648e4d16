"""``triage ingest envelope FILE_OR_DIR``: business-event messages → canonical CPR events.

A file (or every ``.xml``, ``.json`` and ``.jsonl`` file of a directory, in name order)
holds one message: KOMBIT XML (it starts
with ``<``), or Datafordeler/SF1320 JSON — one envelope, a JSON list of envelopes, or JSON
Lines. Every message is one record; a message that cannot be read at all (not well-formed, not
valid against Beskedkuvert.xsd, no CPR number) is an error naming the file (and the item or
line in a file of several), with CPR numbers masked. Everything else becomes one canonical
event, unclassified when the person lookup cannot back it.

The person lookup is a persons file (``--persons``, CONTRACT.md's persons JSON Lines, e.g. made
by ``triage snapshot cpr-extract``); without one, a message that needs a lookup and carries no
person data of its own becomes unclassified ("person lookup failed") — raised by the core, never
guessed. Kafka: topic ``cpr.events``, key the CPR number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import orjson

from connectors.envelope.convert import EnvelopeError, PersonLookup, convert_envelope
from connectors.envelope.kombit import Action, load_actions, parse_kombit
from connectors.ids import IdKey
from connectors.output import IngestFailed, IngestSummary, checked, write_events

__all__ = ["TOPIC", "ingest_envelopes", "persons_lookup"]

TOPIC = "cpr.events"
MESSAGE_SUFFIXES = frozenset({".xml", ".json", ".jsonl"})
"""In a directory, the files read as messages (anything else, e.g. a schema, is left alone)."""


def persons_lookup(path: str | PathLike[str] | None) -> PersonLookup:
    """A lookup over a persons JSON Lines file (or one that knows nobody)."""
    persons: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            lines = Path(path).read_bytes().splitlines()
        except OSError as exc:
            raise IngestFailed(f"{path}: cannot read: {exc.strerror}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise IngestFailed(f"{path}:{number}: not valid JSON") from None
            if isinstance(record, dict) and isinstance(record.get("cpr"), str):
                persons[record["cpr"]] = record

    async def lookup(cpr: str) -> dict[str, Any] | None:
        if path is None:
            raise LookupError("no persons file to look the person up in")
        return persons.get(cpr)

    return lookup


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                      and p.suffix.lower() in MESSAGE_SUFFIXES)
    return [path]


def _messages(path: Path) -> Iterator[tuple[str, bytes | Mapping[str, Any] | EnvelopeError]]:
    """(where, message) for every message of one file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield f"file {path.name}", EnvelopeError(f"cannot read: {exc.strerror}")
        return
    if data.lstrip()[:1] == b"<":
        yield f"file {path.name}", data
        return
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, list):
        for number, item in enumerate(doc, start=1):
            yield f"file {path.name} item {number}", (
                item if isinstance(item, Mapping) else EnvelopeError("not a JSON object"))
        return
    if isinstance(doc, Mapping):
        yield f"file {path.name}", doc
        return
    lines = [(n, line) for n, line in enumerate(data.splitlines(), start=1) if line.strip()]
    if len(lines) <= 1:
        yield f"file {path.name}", EnvelopeError("neither XML nor JSON")
        return
    for number, line in lines:
        yield f"file {path.name} line {number}", line


async def _convert(path: Path, summary: IngestSummary, lookup: PersonLookup,
                   actions: Mapping[str, Action], key: IdKey | None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for file in _files(path):
        for where, message in _messages(file):
            summary.records += 1
            if isinstance(message, EnvelopeError):
                summary.errors.append(f"{where}: {message}")
                continue
            try:
                envelope = (parse_kombit(message, actions=actions, key=key)
                            if isinstance(message, bytes) and message.lstrip()[:1] == b"<"
                            else message)
                events.append(await convert_envelope(envelope, lookup))
            except EnvelopeError as exc:
                summary.errors.append(f"{where}: {exc}")
    return events


def ingest_envelopes(path: str | PathLike[str], *, out: Path | None = None,
                     bootstrap: str | None = None, persons: str | PathLike[str] | None = None,
                     actions: str | PathLike[str] | None = None,
                     key: IdKey | None = None) -> IngestSummary:
    """Convert every message under ``path`` and write the events (see the module doc)."""
    summary = IngestSummary()
    try:
        table = load_actions(actions)
    except EnvelopeError as exc:
        raise IngestFailed(str(exc)) from None
    lookup = persons_lookup(persons)
    events = asyncio.run(_convert(Path(path), summary, lookup, table, key))
    write_events(checked(events, summary, "cpr"), out=out, bootstrap=bootstrap, topic=TOPIC)
    return summary
