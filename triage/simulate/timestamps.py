"""Event time: seconds since the epoch inside the generator, RFC 3339 strings in the events.

The simulation clock is a plain ``int`` (UTC seconds). Registries stamp events differently, and
the corpus keeps that variety on purpose: CPR and most ATP events carry Danish local time with its
offset (``+01:00`` in winter, ``+02:00`` in summer, EU rules: last Sunday of March and October at
01:00 UTC), DAR events carry UTC with milliseconds and a ``Z``. Every one of them has an offset, as
CONTRACT.md requires. Computed by hand (no tz database), so output never depends on the machine.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache

HOUR = 3600
DAY = 24 * HOUR


def to_seconds(day: date) -> int:
    """Midnight UTC of ``day`` as epoch seconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def to_date(ts: int) -> date:
    """The Danish local calendar date at epoch second ``ts``."""
    return datetime.fromtimestamp(ts + copenhagen_offset(ts), tz=UTC).date()


@cache
def _summer_time(year: int) -> tuple[int, int]:
    """Epoch seconds when summer time starts and ends in ``year`` (01:00 UTC, last Sundays)."""

    def last_sunday(month: int) -> date:
        last = date(year, month, 31)
        return last - timedelta(days=(last.weekday() + 1) % 7)

    start = to_seconds(last_sunday(3)) + HOUR
    end = to_seconds(last_sunday(10)) + HOUR
    return start, end


def copenhagen_offset(ts: int) -> int:
    """UTC offset of Europe/Copenhagen at ``ts`` in seconds (3600 or 7200)."""
    year = datetime.fromtimestamp(ts, tz=UTC).year
    start, end = _summer_time(year)
    return 2 * HOUR if start <= ts < end else HOUR


def local(ts: int) -> str:
    """``2025-03-04T09:12:44+01:00``: Danish local time with its offset."""
    offset = copenhagen_offset(ts)
    stamp = datetime.fromtimestamp(ts + offset, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}+{offset // HOUR:02d}:00"


def utc(ts: int, millis: int | None = None) -> str:
    """``2025-03-04T08:12:44Z``, or ``…44.123Z`` with milliseconds."""
    stamp = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}Z" if millis is None else f"{stamp}.{millis:03d}Z"
