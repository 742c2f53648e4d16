"""CPR numbers: validation and masking.

A CPR number (personnummer) is ten digits DDMMYYSSSS. We accept every number with a valid
embedded birth date, as CPR requires: numbers without modulus-11 check digit have been issued
since 2007, so the check digit is never enforced. python-stdnum's ``dk.cpr.validate`` does exactly
that (digits, length, a real date with the century rule, not in the future).

A CPR number is personal data. It never appears in clear in logs, metrics labels, task titles or
error messages: use :func:`mask` (``DDMMYY-****``), and raise :class:`InvalidCpr`, whose message
never contains the number.
"""

from __future__ import annotations

from functools import lru_cache

from stdnum.dk import cpr as _stdnum_cpr
from stdnum.exceptions import ValidationError


class InvalidCpr(ValueError):
    """A value that is not a usable CPR number. The message never echoes the value."""


@lru_cache(maxsize=262_144)
def validate(value: str) -> str:
    """Return ``value`` if it is a valid CPR number, else raise :class:`InvalidCpr`.

    Cached: the same few thousand numbers recur in every stream, and validation sits on the
    hot path of every event.
    """
    if not isinstance(value, str) or len(value) != 10 or not value.isdigit():
        raise InvalidCpr("must be 10 digits (DDMMYYSSSS)")
    try:
        _stdnum_cpr.validate(value)
    except ValidationError as exc:
        # stdnum's messages describe the defect ("does not contain valid birth date
        # information"), never the number itself.
        raise InvalidCpr(f"not a valid CPR number: {str(exc).lower().rstrip('.')}") from None
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
