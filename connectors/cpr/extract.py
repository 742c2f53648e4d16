"""Reading a CPR change extract (P12170) line by line into typed records or errors.

The extract is a text file of fixed-width records, encoded ISO-8859-1 (latin-1): Danish letters
æ, ø, å are one byte each, so a record's length in characters is its length in bytes. Each line
starts with its 3-digit record type; the layouts are in :mod:`connectors.cpr.layout`.

:func:`parse_extract` validates every line — a known record type, the exact documented length,
digits (or blanks) in numeric fields, a valid CPR number in the PNR field (any number with a
valid date: modulus 11 is never required) — and yields an :class:`ExtractRecord` for a good line
and an :class:`ExtractError` for a corrupt one. A corrupt line never stops the parse: the rest of
the file is still read. An error message never contains a CPR number; where it names one it is
masked (``DDMMYY-****``, :func:`triage.cprnumber.mask`).

Lines whose trailing blanks were trimmed (some tools do) are errors by default, because their
length is wrong; pass ``allow_trimmed=True`` to pad them back to the documented length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from connectors.cpr.layout import LAYOUTS, RecordLayout
from triage import cprnumber

ENCODING = "latin-1"
"""CPR extracts are ISO-8859-1."""

_TEN_DIGITS = re.compile(r"\d{10}")


def scrub(text: str) -> str:
    """Mask every 10-digit run in ``text`` (a CPR number never leaves in clear)."""
    return _TEN_DIGITS.sub(lambda m: cprnumber.mask(m.group()), text)


@dataclass(frozen=True, slots=True)
class ExtractRecord:
    """One valid record: its type, 1-based line number and its fields (blank-stripped)."""

    line_number: int
    record_type: str
    fields: dict[str, str] = field(repr=False)
    raw: str = field(repr=False, compare=False)

    @property
    def layout(self) -> RecordLayout:
        return LAYOUTS[self.record_type]

    @property
    def pnr(self) -> str | None:
        """The CPR number the record is about (None for 000, 910, 999)."""
        return self.fields.get("PNR") if self.layout.person else None

    def get(self, name: str) -> str:
        """A field's stripped value ("" when blank). Raises KeyError for an unknown name."""
        return self.fields[name]

    def __repr__(self) -> str:  # never show the PNR in clear
        return (f"ExtractRecord(line={self.line_number}, type={self.record_type}, "
                f"pnr={cprnumber.mask(self.pnr) if self.pnr else None})")


@dataclass(frozen=True, slots=True)
class ExtractError:
    """A line (or, for file-level problems, a position) that could not be used, and why.

    ``message`` never contains a CPR number in clear.
    """

    line_number: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line_number}: {self.message}"


def parse_line(line: str, line_number: int, *,
               allow_trimmed: bool = False) -> ExtractRecord | ExtractError:
    """Validate and cut one line (without its line terminator)."""
    if not line.strip():
        return ExtractError(line_number, "empty line")
    record_type = line[:3]
    layout = LAYOUTS.get(record_type)
    if layout is None:
        shown = record_type if record_type.isdigit() else repr(scrub(record_type))
        return ExtractError(line_number, f"unknown record type {shown}")
    if allow_trimmed and len(line) < layout.length:
        line = line.ljust(layout.length)
    if len(line) != layout.length:
        return ExtractError(
            line_number,
            f"record {record_type}: length {len(line)}, expected {layout.length}",
        )
    values: dict[str, str] = {}
    problems: list[str] = []
    for spec in layout.fields:
        raw = spec.cut(line)
        value = raw.strip()
        if spec.numeric and value and not raw.isdigit():
            problems.append(f"{spec.name} (position {spec.start}, length {spec.length}) "
                            "is not numeric")
        values[spec.name] = value
    if layout.person and not problems:
        pnr = values["PNR"]
        try:
            cprnumber.validate(pnr)
        except cprnumber.InvalidCpr as exc:
            problems.append(f"PNR {cprnumber.mask(pnr)}: {exc}")
    if problems:
        return ExtractError(line_number, f"record {record_type}: " + "; ".join(problems))
    return ExtractRecord(line_number, record_type, values, line)


def parse_extract(lines: Iterable[str], *,
                  allow_trimmed: bool = False) -> Iterator[ExtractRecord | ExtractError]:
    """Parse decoded lines of an extract, in order: a record or an error per line.

    Line terminators (``\\n``, ``\\r\\n``) are removed; nothing else is. After the last line,
    a missing end record 999 (a truncated file) is reported as an error at the line after the
    last one.
    """
    line_number = 0
    seen_end = False
    for line_number, line in enumerate(lines, start=1):
        result = parse_line(line.rstrip("\r\n"), line_number, allow_trimmed=allow_trimmed)
        if isinstance(result, ExtractRecord):
            if result.record_type == "999":
                seen_end = True
            elif seen_end:
                yield ExtractError(line_number, f"record {result.record_type} after end "
                                                "record 999")
                continue
        yield result
    if line_number and not seen_end:
        yield ExtractError(line_number + 1, "no end record 999: the file may be truncated")


def read_extract(path: str | PathLike[str], *,
                 allow_trimmed: bool = False) -> Iterator[ExtractRecord | ExtractError]:
    """Parse the extract file at ``path`` (ISO-8859-1), streaming."""
    with Path(path).open(encoding=ENCODING, newline="") as handle:
        yield from parse_extract(handle, allow_trimmed=allow_trimmed)
