"""CPR numbers: validation and masking.

A CPR number (personnummer) is ten digits DDMMYYSSSS. CONTRACT.md: a valid number is ten digits
whose first six are a real date, the century read from the 7th digit as CPR defines it. Nothing
else is checked:

* never modulus 11 — CPR has issued numbers without the check digit since 2007;
* never a comparison with today — a child registered on its birthday is valid at any hour, in
  any year a replay runs, whatever the service's time zone. python-stdnum's ``dk.cpr.validate``
  rejects a birth date after ``date.today()`` ("not born yet"), so it is not used; its
  ``get_birth_date`` (the century rule alone) is.

A CPR number is personal data. It never appears in clear in logs, metrics labels, task titles or
error messages: use :func:`mask` (``DDMMYY-****``), and raise :class:`InvalidCpr`, whose message
never contains the number.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from stdnum.dk import cpr as _stdnum_cpr
from stdnum.exceptions import ValidationError


class InvalidCpr(ValueError):
    """A value that is not a usable CPR number. The message never echoes the value."""


def birth_date(value: str) -> date:
    """The birth date a ten-digit number encodes (DDMMYY, century from the 7th digit as CPR
    defines it); :class:`InvalidCpr` when the digits are no real date. Independent of today."""
    try:
        return _stdnum_cpr.get_birth_date(value)
    except (ValidationError, ValueError):
        raise InvalidCpr("not a valid CPR number: the first six digits are not a real date "
                         "(DDMMYY)") from None


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
