"""ATP / Udbetaling Danmark: canonical ATP events from polling the UDK § 8 register.

There is no ATP/UDK event stream. What exists is the municipality's access to the register of
"hvilke typer af kontante ydelser og økonomiske tilskud borgeren har modtaget de seneste 3
måneder, samt … størrelsen på ydelsen" (lov om Udbetaling Danmark § 8,
https://danskelove.dk/udbetaling-danmark-loven/8) and to eIndkomst (income). See
/work/shared/research/registries.md §3 ("Treat 'ATP events' … as derived events, produced by
polling or diffing those sources"). This module does exactly that for the members of active cases.

The record shape is the case system's ``POST /v1/udk/persons/lookup``::

    {"cpr": "…",
     "benefits": [{"benefit", "amount", "period_from", "period_to"}],
     "income": [{"amount", "income_type", "period"}]}

Pure part, :func:`diff_udk` (previous record or None, current record → canonical events):

* a benefit is identified by (``benefit``, ``period_from``);
* new benefit → ``benefit_started`` (or ``benefit_ended`` if it arrives with a ``period_to``
  already before the poll date);
* same benefit with another ``amount`` or ``period_to`` → ``benefit_changed`` (or
  ``benefit_ended`` when the new ``period_to`` is before the poll date);
* a benefit that disappeared → ``benefit_ended`` (with its last values, ``period_to`` possibly
  null), except one whose
  ``period_to`` had already passed: that one only aged out of the register's 3-month window;
* a new income line (``period``, ``income_type``, ``amount``) → ``income_reported``; a corrected
  amount for the same period and type is a new line. Repeated identical lines are counted.

A ``period_to`` that was set in the future and later passes is reported once, as
``benefit_changed`` when it was set; a pure diff does not re-report the passing of time.

Benefit names are normalised (lower case, æ→ae, ø→oe, å→aa, spaces and hyphens → ``_``), so
"Førtidspension" and "A-dagpenge" map to ``foertidspension`` and ``a_dagpenge``. Benefits outside
CONTRACT.md's list (e.g. kontanthjælp, which the municipality itself reports to the register) are
not ATP events and are skipped. Income types outside ``wage``/``pension``/``benefit``/``other``
become ``other``.

Event ids are keyed hashes (:mod:`connectors.ids`) of (cpr, type, benefit, period_from,
amount, period_to) or (cpr,
``income_reported``, period, income_type, amount, n): re-polling an unchanged register emits
nothing, and a restarted poller without state (``previous`` None → every benefit "started",
every income line "reported") re-emits the same ids, which the core drops as redeliveries.

Async part, :class:`AtpPoller`: fetches each case member's record, diffs it against the state,
stores the new record after its events are out. A fetch that raises or returns something that is
not a record for that person is counted in :attr:`PollStats.failures` and the person is skipped
for the round (no event is invented, the state is kept). ``None`` (person not in the register) is
counted in :attr:`PollStats.not_found` and skipped the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.ids import keyed_id
from triage import cprnumber
from triage.models.events import AtpBenefit

__all__ = ["ATP_NAMESPACE", "BENEFITS", "AtpPoller", "PollStats", "diff_udk"]

log = logging.getLogger(__name__)

ATP_NAMESPACE = uuid.UUID("0c6b8f7e-2d35-5b7a-8e3c-4f1a9d2b7c10")
"""Namespace of the UUID5 event ids (fixed: changing it would re-key every event)."""

BENEFITS: frozenset[str] = frozenset(AtpBenefit.__args__)  # type: ignore[attr-defined]
"""The benefit names CONTRACT.md allows on ATP events."""

INCOME_TYPES = frozenset({"wage", "pension", "benefit", "other"})
_TRANSLIT = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa"})

Fetch = Callable[[str], Awaitable[dict[str, Any] | None]]
Emit = Callable[[dict[str, Any]], Awaitable[None]]


def _benefit_name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    name = value.strip().lower().translate(_TRANSLIT)
    name = "_".join(name.replace("-", " ").replace("_", " ").split())
    return name if name in BENEFITS else None


def _date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("amount is not a number")
    try:
        amount = float(value)
    except OverflowError:  # json reads 10**400 as an int float() cannot hold
        raise ValueError("amount is out of range") from None
    if not math.isfinite(amount):  # NaN != NaN would re-report the benefit every round
        raise ValueError("amount is not a finite number")
    return amount


@dataclass(frozen=True, slots=True)
class _Benefit:
    benefit: str
    amount: float
    period_from: date
    period_to: date | None


def _benefits(record: Mapping[str, Any] | None) -> dict[tuple[str, date], _Benefit]:
    out: dict[tuple[str, date], _Benefit] = {}
    for line in (record or {}).get("benefits") or []:
        name = _benefit_name(line.get("benefit"))
        period_from = _date(line.get("period_from"))
        if name is None or period_from is None:
            continue
        out[(name, period_from)] = _Benefit(name, _amount(line.get("amount")), period_from,
                                            _date(line.get("period_to")))
    return out


def _period(value: Any) -> str | None:
    text = str(value or "")[:7]
    if len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit() \
            and 1 <= int(text[5:]) <= 12:
        return text
    return None


def _income(record: Mapping[str, Any] | None) -> Counter[tuple[str, str, float]]:
    lines: Counter[tuple[str, str, float]] = Counter()
    for line in (record or {}).get("income") or []:
        period = _period(line.get("period"))
        if period is None:
            continue
        kind = line.get("income_type")
        kind = kind if kind in INCOME_TYPES else "other"
        lines[(period, kind, _amount(line.get("amount")))] += 1
    return lines


def _id(*parts: Any) -> str:
    """A keyed hash of the parts (they hold the CPR number: connectors.ids)."""
    return keyed_id(str(ATP_NAMESPACE), *parts)


def _benefit_event(type_: str, b: _Benefit, cpr: str, registered_at: str) -> dict[str, Any]:
    period_to = b.period_to.isoformat() if b.period_to else None
    return {
        "event_id": _id(cpr, type_, b.benefit, b.period_from.isoformat(), b.amount, period_to),
        "source": "atp",
        "type": type_,
        "registered_at": registered_at,
        "cpr": cpr,
        "benefit": b.benefit,
        "amount": b.amount,
        "period_from": b.period_from.isoformat(),
        "period_to": period_to,
    }


def diff_udk(previous: Mapping[str, Any] | None, current: Mapping[str, Any], *, cpr: str,
             polled_at: datetime) -> list[dict[str, Any]]:
    """Canonical ATP events for what changed between two polls of one person's UDK record.

    ``polled_at`` must carry an offset; it is the events' ``registered_at`` and its date decides
    whether a ``period_to`` lies in the past. Raises ValueError on a malformed record or time.
    """
    if polled_at.tzinfo is None:
        raise ValueError("polled_at must carry an offset")
    cprnumber.validate(cpr)
    registered_at = polled_at.isoformat()
    today = polled_at.date()
    before, after = _benefits(previous), _benefits(current)
    events: list[dict[str, Any]] = []
    for key, b in after.items():
        ended = b.period_to is not None and b.period_to < today
        old = before.get(key)
        if old is None:
            events.append(_benefit_event("benefit_ended" if ended else "benefit_started", b, cpr,
                                         registered_at))
        elif (old.amount, old.period_to) != (b.amount, b.period_to):
            events.append(_benefit_event("benefit_ended" if ended else "benefit_changed", b, cpr,
                                         registered_at))
    for key, old in before.items():
        if key not in after and not (old.period_to is not None and old.period_to < today):
            # No longer in the register: ended, with its last values (period_to may be null:
            # the register does not say when, and this does not invent a date).
            events.append(_benefit_event("benefit_ended", old, cpr, registered_at))
    seen = _income(previous)
    for (period, kind, amount), count in sorted(_income(current).items()):
        for n in range(seen.get((period, kind, amount), 0), count):
            events.append({
                "event_id": _id(cpr, "income_reported", period, kind, amount, n),
                "source": "atp",
                "type": "income_reported",
                "registered_at": registered_at,
                "cpr": cpr,
                "amount": amount,
                "income_type": kind,
                "period": period,
            })
    return events


@dataclass
class PollStats:
    """Counters since the poller was created (never CPR numbers)."""

    rounds: int = 0
    fetched: int = 0
    failures: int = 0
    not_found: int = 0
    events: int = 0
    last_round_failures: int = 0


COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def copenhagen_now() -> datetime:
    """The poll time in Danish local time: "today" for a benefit's period is the Danish day,
    also in a container whose zone is UTC."""
    return datetime.now(COPENHAGEN)


class AtpPoller:
    """Poll the § 8 register for every case member and emit the differences as ATP events.

    ``fetch(cpr)`` returns the person's UDK record (or None); ``members()`` the CPR numbers to
    poll (case members, re-read every round); ``state`` maps cpr → last record seen and is the
    caller's to persist; ``interval`` is the pause between rounds, in seconds or a timedelta.
    """

    def __init__(self, fetch: Fetch, members: Callable[[], Iterable[str]],
                 state: dict[str, Any], interval: float | timedelta, *,
                 concurrency: int = 8,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.fetch = fetch
        self.members = members
        self.state = state
        self.interval = (interval.total_seconds() if isinstance(interval, timedelta)
                         else float(interval))
        self.concurrency = max(1, concurrency)
        self.clock = clock or copenhagen_now
        self.stats = PollStats()

    async def _one(self, cpr: str, polled_at: datetime, gate: asyncio.Semaphore,
                   ) -> tuple[str, dict[str, Any], list[dict[str, Any]]] | None:
        async with gate:
            try:
                record = await self.fetch(cpr)
            except Exception as exc:  # any failure: skip the person this round
                self._failed(cpr, type(exc).__name__)
                return None
        if record is None:
            self.stats.not_found += 1
            return None
        if not isinstance(record, Mapping) or record.get("cpr", cpr) != cpr:
            self._failed(cpr, "not a UDK record for this person")
            return None
        try:
            events = diff_udk(self.state.get(cpr), record, cpr=cpr, polled_at=polled_at)
        except (ValueError, TypeError, AttributeError) as exc:
            self._failed(cpr, f"malformed record ({type(exc).__name__})")
            return None
        self.stats.fetched += 1
        return cpr, dict(record), events

    def _failed(self, cpr: str, why: str) -> None:
        self.stats.failures += 1
        self.stats.last_round_failures += 1
        log.warning("udk fetch failed for %s: %s", cprnumber.mask(cpr), why)

    async def _round(self) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
        self.stats.rounds += 1
        self.stats.last_round_failures = 0
        polled_at = self.clock()
        gate = asyncio.Semaphore(self.concurrency)
        people = list(dict.fromkeys(self.members()))
        results = await asyncio.gather(*(self._one(c, polled_at, gate) for c in people))
        return [r for r in results if r is not None]

    async def poll_once(self) -> list[dict[str, Any]]:
        """One round: the events of every person that could be fetched; the state advances."""
        events: list[dict[str, Any]] = []
        for cpr, record, found in await self._round():
            events.extend(found)
            self.state[cpr] = record
        self.stats.events += len(events)
        return events

    async def run(self, emit: Emit, *, stop: asyncio.Event | None = None,
                  rounds: int | None = None) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set (or ``rounds`` are done).

        A person's state advances only after all of that person's events were emitted, so an
        ``emit`` that raises loses nothing: the next run re-emits the same (deterministic) ids.
        """
        stop = stop or asyncio.Event()
        done = 0
        while not stop.is_set():
            for cpr, record, found in await self._round():
                for event in found:
                    await emit(event)
                self.stats.events += len(found)
                self.state[cpr] = record
            done += 1
            if rounds is not None and done >= rounds:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
