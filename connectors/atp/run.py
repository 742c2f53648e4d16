"""Running the ATP/UDK poller against the case system: ``triage poll-atp``.

Each round reads the active cases from the case system (so new case members are polled from
their first round), asks the § 8 benefit register (``POST /v1/udk/persons/lookup``, through the
resilient :class:`~connectors.casesystem.client.CaseSystemClient`) about every member, and
emits the differences as canonical ATP events — to Kafka (``atp.events``, keyed by CPR number)
or to a JSON Lines file (created ``0600``). The last record seen per person is kept in a state
file (``0600``: it holds CPR numbers and benefits), written atomically after every round, so a
restart emits nothing twice (and the event ids are deterministic besides). The case system's
bearer token comes from ``TRIAGE_CASESYSTEM_TOKEN`` / ``TRIAGE_CASESYSTEM_TOKEN_FILE``. A
person whose lookup fails is skipped for that round and counted; no event is invented.
When the case system cannot be asked for its cases in the first round and no state says whom to
poll, :class:`~connectors.casesystem.client.LookupUnavailable` is raised: a mistyped URL must
fail, not report zero events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from connectors.atp.poller import AtpPoller
from connectors.casesystem.client import CaseSystemClient, LookupUnavailable
from triage.private_files import open_private, write_private_atomic


@dataclass
class PollSummary:
    rounds: int = 0
    events: int = 0
    failures: int = 0


def _load_state(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


def _save_state(path: Path | None, state: dict[str, Any]) -> None:
    if path is None:
        return
    # atomic (a crash leaves the old state or the new, never half) and 0600: it holds every
    # case member's CPR number and benefits
    write_private_atomic(path, json.dumps(state, sort_keys=True).encode())


async def poll_atp(casesystem_url: str, *, bootstrap: str | None = None,
                   out: Path | None = None, state_path: Path | None = None,
                   interval: float = 60.0, rounds: int | None = None,
                   stop: asyncio.Event | None = None, token: str | None = None) -> PollSummary:
    """Poll until ``stop`` is set or ``rounds`` are done; exactly one of ``bootstrap``/``out``.
    ``token`` is the case system's bearer token (:mod:`connectors.casesystem.auth`)."""
    if (bootstrap is None) == (out is None):
        raise ValueError("give exactly one of bootstrap (Kafka) or out (a file)")
    stop = stop or asyncio.Event()
    summary = PollSummary()
    state = _load_state(state_path)
    producer: Any = None
    if bootstrap is not None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
    try:
        async def emit(event: dict[str, Any]) -> None:
            line = orjson.dumps(event)
            if producer is not None:
                await producer.send_and_wait("atp.events", value=line,
                                             key=event["cpr"].encode())
            else:
                assert out is not None
                with open_private(out, "ab") as handle:
                    handle.write(line + b"\n")
            summary.events += 1

        members: list[str] = []
        async with CaseSystemClient(casesystem_url, token=token) as client:
            while not stop.is_set():
                try:
                    members[:] = sorted({m.cpr for case in await client.all_cases()
                                         for m in case.members})
                except LookupUnavailable:
                    if summary.rounds == 0 and not state:
                        raise  # nobody known to poll: a wrong URL must not look like success
                    members[:] = sorted(state)  # the case system is down: poll whom we know
                poller = AtpPoller(client.udk, lambda: members, state, interval)
                await poller.run(emit, rounds=1)
                summary.failures += poller.stats.failures
                summary.rounds += 1
                _save_state(state_path, state)
                if rounds is not None and summary.rounds >= rounds:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
    finally:
        if producer is not None:
            await producer.stop()
    return summary
