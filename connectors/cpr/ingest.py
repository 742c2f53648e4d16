"""Ingesting a CPR change extract: file → canonical events → JSON Lines file or Kafka.

:func:`ingest_cpr_extract` is what ``triage ingest cpr-extract FILE [--out FILE | --kafka
BOOTSTRAP]`` calls. It streams the file (memory stays flat, except for the parents' copies of
child events, held until the end of the file), checks every produced event with
:func:`triage.models.events.parse_event` (an event the service would reject is reported as an
error, never sent), and returns an :class:`IngestSummary` with the counts and every error by line.
Errors are never skipped silently: the caller prints ``summary.errors``.

Kafka: topic ``cpr.events``, key the CPR number (UTF-8), value the event as JSON (UTF-8).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import orjson

from connectors.cpr.events import to_canonical
from connectors.cpr.extract import ExtractError, ExtractRecord, read_extract
from triage.models.events import InvalidEvent, parse_event

TOPIC = "cpr.events"


@dataclass
class IngestSummary:
    """What one ingest did: records read, events written, errors by line."""

    records: int = 0
    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    errors: list[ExtractError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        """Human-readable summary lines (CPR-free), for the CLI to print."""
        out = [f"records: {self.records}", f"events: {self.events}",
               f"errors: {len(self.errors)}"]
        out += [f"  {kind}: {n}" for kind, n in sorted(self.by_type.items())]
        out += [f"error {err}" for err in self.errors]
        return out


def _events(path: str | PathLike[str], summary: IngestSummary, *,
            allow_trimmed: bool) -> Iterator[tuple[dict[str, Any], bytes]]:
    """(event, JSON bytes) for every valid event; records and errors counted in ``summary``."""

    def counted() -> Iterable[ExtractRecord | ExtractError]:
        for item in read_extract(path, allow_trimmed=allow_trimmed):
            if isinstance(item, ExtractRecord):
                summary.records += 1
            yield item

    for item in to_canonical(counted()):
        if isinstance(item, ExtractError):
            summary.errors.append(item)
            continue
        body = orjson.dumps(item)
        parsed = parse_event(body)
        if isinstance(parsed, InvalidEvent):  # a bug here, not in the file: still reported
            summary.errors.append(ExtractError(0, f"produced an invalid {item.get('type')} "
                                                  f"event: {parsed.error}"))
            continue
        summary.events += 1
        summary.by_type[item["type"]] += 1
        yield item, body


def ingest_cpr_extract(
    path: str | PathLike[str],
    *,
    out: Path | None = None,
    bootstrap: str | None = None,
    topic: str = TOPIC,
    allow_trimmed: bool = False,
) -> IngestSummary:
    """Convert the extract at ``path`` and write the events to ``out`` (JSON Lines) or produce
    them to Kafka at ``bootstrap`` ("host:port"). Exactly one of the two must be given.

    Not for use inside a running event loop (it runs its own); use
    :func:`aingest_cpr_extract` there.
    """
    if (out is None) == (bootstrap is None):
        raise ValueError("give exactly one of out or bootstrap")
    if out is not None:
        summary = IngestSummary()
        with Path(out).open("wb") as handle:
            for _event, body in _events(path, summary, allow_trimmed=allow_trimmed):
                handle.write(body + b"\n")
        return summary
    assert bootstrap is not None
    return asyncio.run(aingest_cpr_extract(path, bootstrap=bootstrap, topic=topic,
                                           allow_trimmed=allow_trimmed))


async def aingest_cpr_extract(
    path: str | PathLike[str],
    *,
    bootstrap: str,
    topic: str = TOPIC,
    allow_trimmed: bool = False,
    batch: int = 1000,
) -> IngestSummary:
    """Produce the extract's events to Kafka, keyed by CPR number; wait for every ack."""
    from aiokafka import AIOKafkaProducer

    summary = IngestSummary()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending: list[asyncio.Future[Any]] = []
        for event, body in _events(path, summary, allow_trimmed=allow_trimmed):
            pending.append(await producer.send(topic, value=body, key=event["cpr"].encode()))
            if len(pending) >= batch:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return summary
