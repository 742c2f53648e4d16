"""Reading a CPR change extract (P12170) into typed records or errors, in every delivered form.

The extract is a file of fixed-width records, encoded ISO-8859-1 (latin-1): Danish letters æ, ø,
å are one byte each, so a record's length in characters is its length in bytes. Each record
starts with its 3-digit record type; the layouts are in :mod:`connectors.cpr.layout`.

The registry delivers the same extract in several forms, and all of them are read alike:

* **lines** ending in LF or CRLF (the CRLF original ends in the DOS end-of-file byte 0x1A, which
  is ignored wherever it stands at the end of the file);
* lines whose **trailing spaces were trimmed** (as the file often is after passing through
  tools, and as the CPR office's own test extract is stored): padded back to the record's
  documented length, never refused — a record's trailing fields are blank, so nothing is lost;
* **fixed-length records without line terminators** (the form delivered over FTP): when the
  file holds no line feed, records are cut by the length their record type documents.

:func:`parse_extract` validates every record — a known record type, the documented length (a
shorter one padded, a longer one accepted only when the overflow is blank), digits (or blanks)
in numeric fields, a valid CPR number in the PNR field (any number with a valid date: modulus 11
is never required) — and yields an :class:`ExtractRecord` for a good record and an
:class:`ExtractError` for a corrupt one. A corrupt record never stops the parse. At the end it
checks the file's own bookkeeping: a start record 000 first, an end record 999 last, and the
999's count (``TAELLER``: the records between 000 and 999) equal to the records actually read,
so a truncated copy, or one with a record deleted, is an error.

Every error names its line (or, without terminators, its record number) and never contains a CPR
number in clear; where it names one it is masked (``DDMMYY-****``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import BinaryIO, Literal

from connectors.cpr.layout import LAYOUTS, RecordLayout
from triage import cprnumber

ENCODING = "latin-1"
"""CPR extracts are ISO-8859-1."""

DOS_EOF = "\x1a"
"""The DOS end-of-file byte (Ctrl-Z) the CRLF original ends with."""

Unit = Literal["line", "record", "file"]

_TEN_DIGITS = re.compile(r"\d{10}|\d{6}-\d{4}")
"""Ten digits, or DDMMYY-SSSS: the dashed form is a CPR number too (an envelope's ``objektID``
may carry it), and lxml's schema errors echo an element's value."""
_PEEK = 1 << 16


def scrub(text: str) -> str:
    """Mask every 10-digit run and every DDMMYY-SSSS in ``text`` (a CPR number never leaves in
    clear)."""
    return _TEN_DIGITS.sub(lambda m: cprnumber.mask(m.group()), text)


@dataclass(frozen=True, slots=True)
class ExtractRecord:
    """One valid record: its type, 1-based position and its fields (blank-stripped).

    ``line_number`` is the line number, or the record number in a file without line
    terminators (``unit`` says which)."""

    line_number: int
    record_type: str
    fields: dict[str, str] = field(repr=False)
    raw: str = field(repr=False, compare=False)
    unit: Unit = "line"

    @property
    def layout(self) -> RecordLayout:
        return LAYOUTS[self.record_type]

    @property
    def pnr(self) -> str | None:
        """The CPR number the record is about (None for 000, 910, 999)."""
        return self.fields.get("PNR") if self.layout.person else None

    @property
    def where(self) -> str:
        return f"{self.unit} {self.line_number}"

    def get(self, name: str) -> str:
        """A field's stripped value ("" when blank). Raises KeyError for an unknown name."""
        return self.fields[name]

    def __repr__(self) -> str:  # never show the PNR in clear
        return (f"ExtractRecord({self.where}, type={self.record_type}, "
                f"pnr={cprnumber.mask(self.pnr) if self.pnr else None})")


@dataclass(frozen=True, slots=True)
class ExtractError:
    """A record (or, for file-level problems, the file) that could not be used, and why.

    ``message`` never contains a CPR number in clear.
    """

    line_number: int
    message: str
    unit: Unit = "line"

    def __str__(self) -> str:
        if self.unit == "file":
            return f"file: {self.message}"
        return f"{self.unit} {self.line_number}: {self.message}"


def parse_line(line: str, line_number: int, *, unit: Unit = "line",
               allow_trimmed: bool = True) -> ExtractRecord | ExtractError:
    """Validate and cut one record (without its line terminator).

    ``allow_trimmed`` is kept for callers of the first version; trimmed records are always
    padded now.
    """
    del allow_trimmed
    record_type = line[:3]
    layout = LAYOUTS.get(record_type)
    if layout is None:
        shown = record_type if record_type.isdigit() else repr(scrub(record_type))
        return ExtractError(line_number, f"unknown record type {shown}", unit)
    if len(line) < layout.length:
        line = line.ljust(layout.length)
    elif len(line) > layout.length:
        if line[layout.length:].strip():
            return ExtractError(line_number, f"record {record_type}: length {len(line)}, "
                                             f"expected {layout.length}", unit)
        line = line[: layout.length]
    values: dict[str, str] = {}
    problems: list[str] = []
    for spec in layout.fields:
        raw = spec.cut(line)
        value = raw.strip()
        # ASCII only: str.isdigit() also accepts latin-1's '²', '³', '¹', which int() refuses
        if spec.numeric and value and not (raw.isascii() and raw.isdigit()):
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
        return ExtractError(line_number, f"record {record_type}: " + "; ".join(problems), unit)
    return ExtractRecord(line_number, record_type, values, line, unit)


def split_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of every record line: terminators and a final 0x1A removed, blank
    lines at the very end of the file dropped (a blank line inside the file is kept: it is an
    error)."""
    blanks: list[int] = []
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if text.endswith(DOS_EOF):
            text = text.rstrip(DOS_EOF).rstrip("\r\n")
        if not text.strip():
            blanks.append(number)
            continue
        for blank in blanks:
            yield blank, ""
        blanks.clear()
        yield number, text


def split_fixed(text: str) -> Iterator[tuple[int, str] | ExtractError]:
    """(record number, text) of each record in a file without line terminators, cut by the
    length its record type documents. An unknown type ends the file: without terminators there
    is no way to find where the next record starts."""
    text = text.rstrip(DOS_EOF + "\r\n ")
    position, number = 0, 0
    while position < len(text):
        number += 1
        layout = LAYOUTS.get(text[position : position + 3])
        if layout is None:
            shown = scrub(text[position : position + 3])
            yield ExtractError(number, f"unknown record type {shown!r} at byte {position + 1}; "
                                       "the rest of the file cannot be cut into records",
                               "record")
            return
        yield number, text[position : position + layout.length]
        position += layout.length


def parse_extract(lines: Iterable[str], *, unit: Unit = "line",
                  allow_trimmed: bool = True) -> Iterator[ExtractRecord | ExtractError]:
    """Parse decoded lines of an extract (or, with ``unit="record"``, pre-cut records), in
    order: a record or an error each, then the file's bookkeeping errors."""
    del allow_trimmed
    items: Iterable[tuple[int, str] | ExtractError] = (
        split_lines(lines) if unit == "line" else enumerate(lines, start=1))
    yield from _checked(items, unit)


def _checked(items: Iterable[tuple[int, str] | ExtractError],
             unit: Unit) -> Iterator[ExtractRecord | ExtractError]:
    seen_start = seen_end = False
    between = 0  # records between 000 and 999, readable or not
    last = 0
    for item in items:
        if isinstance(item, ExtractError):
            yield item
            continue
        number, text = item
        last = number
        if not text.strip():
            between += 1
            yield ExtractError(number, "empty line", unit)
            continue
        result = parse_line(text, number, unit=unit)
        kind = result.record_type if isinstance(result, ExtractRecord) else text[:3]
        if seen_end:
            yield ExtractError(number, f"record {scrub(kind)} after end record 999", unit)
            continue
        if kind == "000" and isinstance(result, ExtractRecord):
            if seen_start or between:
                yield ExtractError(number, "start record 000 is not the first record", unit)
            seen_start = True
            yield result
            continue
        if kind == "999" and isinstance(result, ExtractRecord):
            seen_end = True
            yield result
            yield from _count_check(result, between, unit)
            continue
        if not seen_start and not between:
            yield ExtractError(number, "the file does not start with start record 000", unit)
        between += 1
        yield result
    if last and not seen_end:
        yield ExtractError(last + 1, "no end record 999: the file is truncated", unit)


def _count_check(end: ExtractRecord, between: int,
                 unit: Unit) -> Iterator[ExtractError]:
    counted = end.get("TAELLER")
    if not (counted.isascii() and counted.isdigit()):  # '²' is isdigit() but no int()
        yield ExtractError(end.line_number, "end record 999: TAELLER is not a number", unit)
    elif int(counted) != between:
        yield ExtractError(end.line_number,
                           f"end record 999 counts {int(counted)} records, the file holds "
                           f"{between}: records are missing or added (a truncated or damaged "
                           "copy)", unit)


def read_extract(path: str | PathLike[str], *,
                 allow_trimmed: bool = True) -> Iterator[ExtractRecord | ExtractError]:
    """Parse the extract file at ``path`` (ISO-8859-1) in whichever form it was delivered."""
    del allow_trimmed
    with Path(path).open("rb") as handle:
        yield from read_extract_stream(handle)


def read_extract_stream(handle: BinaryIO) -> Iterator[ExtractRecord | ExtractError]:
    """Like :func:`read_extract`, from an open binary stream. Lines are streamed; a file
    without line terminators is read whole (it has no line to stream by)."""
    head = handle.read(_PEEK)
    if b"\n" not in head:
        rest = handle.read()
        text = (head + rest).decode(ENCODING)
        yield from _checked(split_fixed(text), "record")
        return

    def lines() -> Iterator[str]:
        pending = head
        while True:
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.decode(ENCODING) + "\n"
            chunk = handle.read(_PEEK)
            if not chunk:
                break
            pending += chunk
        if pending:
            yield pending.decode(ENCODING)

    yield from _checked(split_lines(lines()), "line")
