"""``triage poll-dar``: poll a DAWA-compatible replication service for address changes.

DAWA closed on 17 August 2026; its replication protocol lives on in DAWA-compatible services fed
from Datafordeler. The poller speaks that protocol (DAWA's replication guide), against a
configurable base URL:

* ``GET {base}/replikering/senestetransaktion`` → ``{"txid": N, …}``: the newest transaction;
* first round only, ``GET {base}/replikering/udtraek?entitet=E&txid=N`` for each entity
  (vejstykke, adgangsadresse, adresse): the state at ``N``, loaded into the address book;
* every later round, ``GET {base}/replikering/haendelser?entitet=E&txidfra=A&txidtil=B`` for
  each entity — fetched entity by entity, as the guide does — then merged in order (``txid``,
  houses before units, ``sekvensnummer``) and converted
  (:func:`~connectors.dar.replication.convert_replication`).

Events go to Kafka (``dar.events``, key the address id) or are appended to a JSON Lines file.
The state — the address book, each entity's position and the last txid — is written after every
round to ``--state`` (mode 0600, atomically), so a restart emits nothing twice. A round whose
requests fail is counted and retried next round from the same txid: no event is invented, none
is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from connectors.dar.replication import (
    AddressBook,
    convert_replication,
    ordered,
)
from connectors.output import IngestFailed, open_private

__all__ = ["ENTITIES", "DarPollSummary", "poll_dar", "poll_round"]

ENTITIES = ("vejstykke", "adgangsadresse", "adresse")
"""The entities polled, in the order they are applied within one transaction."""


@dataclass
class DarPollSummary:
    rounds: int = 0
    events: int = 0
    failures: int = 0
    problems: list[str] = field(default_factory=list)


def _load_state(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _save_state(path: Path | None, state: dict[str, Any]) -> None:
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp) as handle:
        handle.write(json.dumps(state, sort_keys=True).encode())
    os.replace(tmp, path)


def _rows(response: httpx.Response) -> list[dict[str, Any]]:
    """A JSON array, or NDJSON (DAWA serves both)."""
    response.raise_for_status()
    text = response.content.strip()
    if not text:
        return []
    if text[:1] == b"[":
        rows = orjson.loads(text)
    else:
        rows = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    return [r for r in rows if isinstance(r, dict)]


async def poll_round(client: httpx.AsyncClient, base: str, state: dict[str, Any],
                     ) -> list[dict[str, Any]]:
    """One round: the events since ``state["txid"]`` (state updated in place)."""
    book = AddressBook.restore(state.get("book", {}))
    answer = (await client.get(f"{base}/replikering/senestetransaktion")).json()
    latest = answer.get("txid") if isinstance(answer, dict) else None
    if not isinstance(latest, int) or isinstance(latest, bool):
        # {"txid": "9500"} would fail later as str <= int (TypeError, not a failed round)
        raise ValueError("senestetransaktion did not answer an integer txid")
    if "txid" not in state:
        for entity in ENTITIES:
            response = await client.get(f"{base}/replikering/udtraek",
                                        params={"entitet": entity, "txid": latest})
            seed = [{"entitet": entity, "operation": "insert", "data": row,
                     "tidspunkt": "1970-01-01T00:00:00Z"} for row in _rows(response)]
            list(convert_replication(seed, book))
        for entity in ENTITIES:
            book.positions[entity] = [latest, -1]
        state.update(book=book.snapshot(), txid=latest)
        return []
    since = int(state["txid"])
    if latest <= since:
        return []
    fetched: list[dict[str, Any]] = []
    for entity in ENTITIES:
        response = await client.get(f"{base}/replikering/haendelser", params={
            "entitet": entity, "txidfra": since + 1, "txidtil": latest})
        fetched += [{**row, "entitet": entity} for row in _rows(response)]
    before = len(book.problems)
    events = list(convert_replication(ordered(fetched), book))
    state["problems"] = book.problems[before:]
    book.problems.clear()
    state.update(book=book.snapshot(), txid=latest)
    return events


async def poll_dar(base: str, *, bootstrap: str | None = None, out: Path | None = None,
                   state_path: Path | None = None, interval: float = 300.0,
                   rounds: int | None = None, stop: asyncio.Event | None = None,
                   transport: httpx.AsyncBaseTransport | None = None) -> DarPollSummary:
    """Poll until ``stop`` is set or ``rounds`` are done; exactly one of ``bootstrap``/``out``."""
    if (bootstrap is None) == (out is None):
        raise ValueError("give exactly one of bootstrap (Kafka) or out (a file)")
    base = base.rstrip("/")
    stop = stop or asyncio.Event()
    summary = DarPollSummary()
    state = _load_state(state_path)
    producer: Any = None
    if bootstrap is not None:
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:
            await producer.stop()
            raise IngestFailed(f"cannot reach Kafka at {bootstrap}: "
                               f"{type(exc).__name__}") from None
    try:
        async with httpx.AsyncClient(timeout=10.0, transport=transport) as client:
            while not stop.is_set():
                attempt = json.loads(json.dumps(state))  # a failed round leaves state as it was
                try:
                    events = await poll_round(client, base, attempt)
                except (httpx.HTTPError, ValueError, KeyError):
                    summary.failures += 1
                else:
                    for event in events:
                        line = orjson.dumps(event)
                        if producer is not None:
                            await producer.send_and_wait("dar.events", value=line,
                                                         key=event["address_id"].encode())
                        else:
                            assert out is not None
                            with out.open("ab") as handle:
                                handle.write(line + b"\n")
                        summary.events += 1
                    summary.problems += attempt.pop("problems", [])
                    state = attempt
                    _save_state(state_path, state)
                summary.rounds += 1
                if rounds is not None and summary.rounds >= rounds:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
    finally:
        if producer is not None:
            await producer.stop()
    return summary
