"""CPR numbers for the simulated population.

A CPR number is ten digits DDMMYYSSSS. The first serial digit (the 7th digit) encodes the century
together with YY (CPR's rule, applied by :func:`triage.cprnumber.birth_date`), and the last digit
is odd for men and even for women. Numbers issued before 2007 satisfy "modulus 11" (the weighted
digit sum 4,3,2,7,6,5,4,3,2,1 is divisible by 11); CPR has since issued numbers without it. The
generator issues mostly modulus-11 numbers and, for 1 January birth dates only (the date CPR uses
when an immigrant's birth date is unknown), deliberately some without, so a service that wrongly
enforces the check digit shows up in the benchmark.

:class:`CprIssuer` hands out unique numbers from the simulation's seeded ``random.Random``.
"""

from __future__ import annotations

import random
from datetime import date

from triage import cprnumber

WEIGHTS = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)


def century_digits(year: int) -> tuple[str, ...]:
    """The 7th digits that make CPR's century rule read a two-digit year as ``year``."""
    yy = year % 100
    if 1900 <= year <= 1999:
        return ("0", "1", "2", "3", "4", "9") if yy >= 37 else ("0", "1", "2", "3")
    if 2000 <= year <= 2036:
        return ("4", "5", "6", "7", "8", "9")
    if 2037 <= year <= 2057:
        return ("5", "6", "7", "8")
    if 1858 <= year <= 1899:
        return ("5", "6", "7", "8")
    raise ValueError(f"CPR numbers cannot encode birth year {year}")


def has_modulus11(cpr: str) -> bool:
    """True when the number satisfies the old modulus-11 check."""
    return sum(w * int(d) for w, d in zip(WEIGHTS, cpr, strict=True)) % 11 == 0


def birth_date_of(cpr: str) -> date:
    """The birth date a CPR number encodes (the service's own century rule)."""
    return cprnumber.birth_date(cpr)


class CprIssuer:
    """Issues unique, valid CPR numbers from a seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._issued: set[str] = set()

    def issue(self, birth: date, female: bool, modulus11: bool = True) -> str:
        """A new number for someone born on ``birth``; without modulus 11 only on 1 January."""
        if not modulus11 and (birth.month, birth.day) != (1, 1):
            raise ValueError("numbers without modulus 11 are only issued for 1 January")
        rng = self._rng
        prefix = birth.strftime("%d%m") + f"{birth.year % 100:02d}"
        digits = century_digits(birth.year)
        parities = range(0, 10, 2) if female else range(1, 10, 2)
        base = sum(w * int(d) for w, d in zip(WEIGHTS, prefix, strict=False))
        for _ in range(10_000):
            d7 = rng.choice(digits)
            d8 = rng.randrange(10)
            d9 = rng.randrange(10)
            partial = base + 4 * int(d7) + 3 * d8 + 2 * d9
            if modulus11:
                d10 = (-partial) % 11
                if d10 == 10 or d10 not in parities:
                    continue
            else:
                d10 = rng.choice([d for d in parities if (partial + d) % 11])
            cpr = f"{prefix}{d7}{d8}{d9}{d10}"
            if cpr not in self._issued:
                self._issued.add(cpr)
                return cpr
        raise RuntimeError(f"no free CPR number left for {birth}")  # pragma: no cover
