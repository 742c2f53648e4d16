"""CPR numbers: validation and masking.

A CPR number (personnummer) is ten digits DDMMYYSSSS. CONTRACT.md: a valid number is ten digits
whose first six are a real date, the century read from the 7th digit as CPR defines it. Nothing
else is checked:

* never modulus 11 — CPR has issued numbers without the check digit since 2007;
* never a comparison with today — a child registered on its birthday is valid at any hour, in
  any year a replay runs, whatever the service's time zone. python-stdnum's ``dk.cpr.validate``
  rejects a birth date after ``date.today()`` ("not born yet"), so it is not used. Its century
  rule (``get_birth_date``) is the one :func:`birth_date` implements, in a few integer
  operations: the check runs once per person of the snapshot and per new number in the stream,
  and stdnum's took ≈ 15 µs a number (issue 13).

A CPR number is personal data. It never appears in clear in logs, metrics labels, task titles or
error messages: use :func:`mask` (``DDMMYY-****``), and raise :class:`InvalidCpr`, whose message
never contains the number.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import TypeGuard


class InvalidCpr(ValueError):
    """A value that is not a usable CPR number. The message never echoes the value."""


def birth_date(value: str) -> date:
    """The birth date a ten-digit number encodes (DDMMYY, century from the 7th digit as CPR
    defines it); :class:`InvalidCpr` when the digits are no real date. Independent of today.

    The century, from the 7th digit (the first of the serial) and YY: 5–8 with YY ≥ 58 → 1800s;
    0–3, or 4 and 9 with YY ≥ 37 → 1900s; otherwise 2000s (stdnum's rule, which a test checks
    this against for every date and 7th digit)."""
    if len(value) != 10 or not (value.isascii() and value.isdigit()):
        raise InvalidCpr(_NOT_A_DATE)
    try:
        return date(_year(value), int(value[2:4]), int(value[0:2]))
    except ValueError:
        raise InvalidCpr(_NOT_A_DATE) from None


def _year(value: str) -> int:
    """The four-digit birth year of ten digits: YY and the century from the 7th digit."""
    year = int(value[4:6])
    seventh = value[6]
    if year >= 58 and seventh in "5678":
        return year + 1800
    if seventh in "0123" or (year >= 37 and seventh in "49"):
        return year + 1900
    return year + 2000


_NOT_A_DATE = "not a valid CPR number: the first six digits are not a real date (DDMMYY)"
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DAY_AND_MONTH = frozenset(f"{day:02}{month:02}" for month, days in
                           enumerate(_DAYS_IN_MONTH, start=1) for day in range(1, days + 1))
"""Every DDMM of a year that has a 29 February (366 strings)."""


def is_valid(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a valid CPR number — :func:`validate`'s answer without an exception
    or a cache, in a set lookup for all but 29 February (for reading a whole snapshot, where
    every number is new: issue 13)."""
    if type(value) is not str or len(value) != 10 or not (value.isascii() and value.isdigit()):
        return False
    day_and_month = value[:4]
    if day_and_month == "2902":
        year = _year(value)
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return day_and_month in _DAY_AND_MONTH


@lru_cache(maxsize=262_144)
def validate(value: str) -> str:
    """Return ``value`` if it is a valid CPR number, else raise :class:`InvalidCpr`.

    Cached: the same few thousand numbers recur in every stream, and validation sits on the
    hot path of every event. The answer depends on the value alone (never on the clock), so
    caching it is sound.
    """
    if not isinstance(value, str) or len(value) != 10 or not (value.isascii()
                                                              and value.isdigit()):
        raise InvalidCpr("must be 10 digits (DDMMYYSSSS)")
    birth_date(value)
    return value


def mask(value: str | None) -> str:
    """``DDMMYY-****``: the birth date stays readable for a caseworker, the serial never shows."""
    if not value:
        return "<none>"
    return f"{value[:6]}-****" if len(value) >= 6 else "******-****"


def has_modulus11(value: str) -> bool:
    """Whether the number satisfies the old modulus-11 rule (for diagnostics only)."""
    weights = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)
    return sum(int(d) * w for d, w in zip(value, weights, strict=True)) % 11 == 0


_CPR_SHAPED = re.compile(r"(?<!\d)(\d{6})-?\d{4}(?!\d)")


def mask_in_text(text: str) -> str:
    """Free text (an operator's comment, a message) with everything shaped like a CPR number —
    ten digits, or six, a dash and four — masked as ``DDMMYY-****``."""
    return _CPR_SHAPED.sub(r"\1-****", text)
