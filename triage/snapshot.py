"""Reading the reference data files (persons and cases JSON Lines) into a register and cases.

Reference data must be trustworthy — every decision leans on it — so a file that cannot be read,
or a record that does not validate, stops the run with one line naming the file, the line and
the problem (never a CPR number). Compare input events, where one bad line is an ``invalid``
decision and the run goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import orjson

from triage.cases import CaseIndex
from triage.models.address import Model
from triage.models.events import parse_record
from triage.models.reference import CaseRecord, PersonRecord
from triage.register import Register

M = TypeVar("M", bound=Model)


class ReferenceDataError(Exception):
    """Reference data that cannot be used. ``str()`` is one line for the operator."""


def read_records(path: str | Path, model: type[M]) -> Iterator[M]:
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ReferenceDataError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise ReferenceDataError(f"{path}:{number}: not valid JSON") from None
            try:
                yield parse_record(model, data)  # type: ignore[misc]
            except ValueError as exc:
                raise ReferenceDataError(f"{path}:{number}: {exc}") from None


def load_reference(persons: str | Path, cases: str | Path) -> CaseIndex:
    """The register from ``persons`` and the case index from ``cases``, ready for the core."""
    register = Register(read_records(persons, PersonRecord))
    index = CaseIndex(register)
    seen: set[str] = set()
    for number, record in enumerate(read_records(cases, CaseRecord), start=1):
        if record.case_id in seen:
            raise ReferenceDataError(f"{cases}: case {record.case_id} appears twice "
                                     f"(second time in record {number})")
        if record.applicant is None:
            raise ReferenceDataError(f"{cases}: case {record.case_id} has no applicant")
        seen.add(record.case_id)
        index.add(record)
    return index
