"""Where ingested events go, and the summary every ``triage ingest`` command prints.

CONTRACT.md "Operator surfaces": the summary (records, events by type, skipped, errors) goes to
standard error; every error names its line or record; the exit status is 0 when every record
became an event (or was skipped for a reason that is not an error), 1 when more records failed
than ``--max-errors`` (after writing everything that did convert), 2 for unusable arguments —
including a Kafka broker that cannot be reached, reported as one line.

Events go to a JSON Lines file (created with mode 0600: it holds CPR numbers) or to Kafka
(topic per source, keyed as CONTRACT.md says), every send acknowledged before the command ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from triage.models.events import InvalidEvent, parse_event
from triage.stream.settings import HEARTBEAT, KIND_HEADER

__all__ = ["IngestFailed", "IngestSummary", "open_private", "write_events"]


class IngestFailed(Exception):
    """The events could not be written at all (e.g. Kafka unreachable): one line, exit 2."""


@dataclass
class IngestSummary:
    """What one ingest did: records read, events written by type, skipped records with their
    reason, and errors (each naming its line, record or file)."""

    records: int = 0
    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        """Human-readable summary lines (CPR-free), for the CLI to print to stderr."""
        out = [f"records: {self.records}", f"events: {self.events}"]
        out += [f"  {kind}: {n}" for kind, n in sorted(self.by_type.items())]
        out.append(f"skipped: {len(self.skipped)}")
        out += [f"  skipped {why}" for why in self.skipped]
        out.append(f"errors: {len(self.errors)}")
        out += [f"error {err}" for err in self.errors]
        out += self.notes
        return out

    def exit_status(self, max_errors: int = 0) -> int:
        return 1 if len(self.errors) > max_errors else 0


def open_private(path: Path) -> Any:
    """Open ``path`` for writing, created (or truncated) with mode 0600: it holds CPR numbers."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
    return os.fdopen(fd, "wb")


def checked(events: Iterable[dict[str, Any]], summary: IngestSummary,
            key_field: str) -> Iterable[tuple[bytes, bytes]]:
    """(key, JSON) of every event the service would accept; a rejected one is a bug here, not
    in the input, and is reported as an error all the same (never sent)."""
    for event in events:
        body = orjson.dumps(event)
        parsed = parse_event(body)
        if isinstance(parsed, InvalidEvent):
            summary.errors.append(f"produced an invalid {event.get('type')} event: "
                                  f"{parsed.error}")
            continue
        summary.events += 1
        summary.by_type[str(event["type"])] += 1
        yield str(event.get(key_field) or "").encode(), body


def in_event_time(events: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A registry file is one batch: its events in ``registered_at`` order (ties keep the
    file's order), so a batch that lists them by person costs the service no lateness."""
    def registered_at(item: tuple[bytes, bytes]) -> datetime:
        return datetime.fromisoformat(orjson.loads(item[1])["registered_at"])

    return sorted(events, key=registered_at)


def write_events(events: Iterable[tuple[bytes, bytes]], *, out: Path | None,
                 bootstrap: str | None, topic: str) -> None:
    """Write (key, value) pairs to ``out`` or produce them to ``topic`` at ``bootstrap``, in
    event-time order (:func:`in_event_time`)."""
    if (out is None) == (bootstrap is None):
        raise ValueError("give exactly one of out or bootstrap")
    events = in_event_time(events)
    latest = datetime.fromisoformat(orjson.loads(events[-1][1])["registered_at"]) \
        if events else None
    if out is not None:
        try:
            handle = open_private(out)
        except OSError as exc:
            raise IngestFailed(f"{out}: cannot write: {exc.strerror}") from None
        with handle:
            for _key, body in events:
                handle.write(body + b"\n")
        return
    assert bootstrap is not None
    asyncio.run(produce(events, bootstrap=bootstrap, topic=topic, heartbeat_at=latest))


async def produce(events: Iterable[tuple[bytes, bytes]] | AsyncIterator[tuple[bytes, bytes]],
                  *, bootstrap: str, topic: str, batch: int = 1000,
                  heartbeat_at: datetime | None = None) -> None:
    """Produce to Kafka, keyed; wait for every acknowledgement. Unreachable → IngestFailed.

    With ``heartbeat_at`` (a batch's latest ``registered_at``), end with a heartbeat on every
    partition of ``topic``: the batch is complete up to that time, so the worker decides its
    last events at once instead of waiting out the allowed lateness by the wall clock."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                request_timeout_ms=10_000)
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # the failure is reported once, below
    try:
        await producer.start()
    except (KafkaError, OSError) as exc:
        await producer.stop()
        raise IngestFailed(f"cannot reach Kafka at {bootstrap}: {type(exc).__name__}") from None
    finally:
        client_log.setLevel(level)
    try:
        pending: list[asyncio.Future[Any]] = []
        items = events if hasattr(events, "__aiter__") else _aiter(events)
        async for key, body in items:
            pending.append(await producer.send(topic, value=body, key=key))
            if len(pending) >= batch:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        if heartbeat_at is not None:
            value = heartbeat_at.isoformat().encode()
            for partition in sorted(await producer.partitions_for(topic)):
                await (await producer.send(topic, value=value, partition=partition,
                                           headers=[(KIND_HEADER, HEARTBEAT)]))
    except KafkaError as exc:
        raise IngestFailed(f"Kafka at {bootstrap} failed while producing to {topic}: "
                           f"{type(exc).__name__}") from None
    finally:
        await producer.stop()


async def _aiter(items: Iterable[tuple[bytes, bytes]]) -> AsyncIterator[tuple[bytes, bytes]]:
    for item in items:
        yield item
