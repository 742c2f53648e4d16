"""Reading the reference data files (persons and cases JSON Lines) into a register and cases.

Reference data must be trustworthy — every decision leans on it — so a file that cannot be read,
or a record that does not validate, stops the run with one line naming the file, the line and
the problem (never a CPR number). Compare input events, where one bad line is an ``invalid``
decision and the run goes on.

Speed (issue 13): a municipality's persons snapshot is read at every start and every replay, so
a person record in its ordinary shape is checked by hand (:func:`person_of`: a few dictionary
reads, :func:`triage.cprnumber.is_valid` — a set lookup — and remembered birth dates; one
:class:`Address` per address record written alike) instead of by pydantic. Anything else — a
wrong type, a missing field, a value pydantic would coerce — goes through
:class:`~triage.models.reference.PersonRecord`, so every error message (and every coercion)
comes from the same model as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TypeVar

import orjson

from triage.cases import CaseIndex
from triage.cprnumber import is_valid as is_valid_cpr
from triage.gcpolicy import paused
from triage.models.address import Address, Model
from triage.models.events import parse_record
from triage.models.reference import CaseRecord, PersonRecord
from triage.register import Person, Register

M = TypeVar("M", bound=Model)


class ReferenceDataError(Exception):
    """Reference data that cannot be used. ``str()`` is one line for the operator."""


def read_records(path: str | Path, model: type[M]) -> Iterator[M]:
    """Every record of a JSON Lines file, validated by ``model``."""
    for number, data in _json_lines(path):
        yield _validated(model, data, f"{path}:{number}")


def read_persons(path: str | Path) -> Iterator[Person]:
    """The persons snapshot as register entries: :func:`person_of` for the ordinary record,
    :class:`PersonRecord` (and its error messages) for everything else."""
    addresses: Addresses = {}
    for number, data in _json_lines(path):
        person = person_of(data, addresses)
        if person is None:
            record = _validated(PersonRecord, data, f"{path}:{number}")
            person = Person(record.cpr, record.address, record.civil_status, record.spouse_cpr,
                            record.status)
        yield person


Addresses = dict[str, tuple[dict[str, object], Address]]
"""The addresses read so far, by ``address_id``: the record as written and its :class:`Address`."""


_CIVIL_STATUSES = frozenset("UGFEPOLD")
_STATUSES = frozenset(f"{code:02}" for code in range(100))
"""The statuses the fast path accepts: two ASCII digits (the model's pattern admits more, and
judges those itself)."""
_ADDRESS_TEXTS = ("address_id", "house_number", "postcode")
_ADDRESS_CODES = ("municipality_code", "road_code")
_ADDRESS_OPTIONAL = ("floor", "door", "label")


def person_of(data: object, addresses: Addresses | None = None) -> Person | None:
    """A persons record in its ordinary shape as a register entry, checked exactly as
    :class:`PersonRecord` checks it — or None when the record is anything else (then the model
    decides, and names the problem). Never raises; accepts only what the model accepts, with
    the values the model would produce. ``addresses`` shares one (immutable) :class:`Address`
    among the persons registered at it: a household's address is validated once."""
    if type(data) is not dict:
        return None
    get = data.get
    cpr = get("cpr")
    spouse = get("spouse_cpr")
    civil_status = get("civil_status", "U")
    status = get("status", "01")
    born = get("birth_date")
    if (not is_valid_cpr(cpr) or (spouse is not None and not is_valid_cpr(spouse))
            or type(civil_status) is not str or civil_status not in _CIVIL_STATUSES
            or type(status) is not str or status not in _STATUSES
            or (born is not None and not _iso_date(born))):
        return None
    address = get("address")
    if address is not None:
        if type(address) is not dict:
            return None
        address = _shared_address(address, addresses)
        if address is None:
            return None
    return Person(cpr, address, civil_status, spouse, status)


def _shared_address(data: dict[str, object], addresses: Addresses | None) -> Address | None:
    """The :class:`Address` of an address record (:func:`_address_of`), the same object as for
    an earlier record written alike (equal as JSON, so validated alike)."""
    address_id = data.get("address_id")
    if addresses is None or type(address_id) is not str:
        return _address_of(data)
    known = addresses.get(address_id)
    if known is not None and known[0] == data:
        return known[1]
    address = _address_of(data)
    if address is not None:
        addresses[address_id] = (data, address)
    return address


def _address_of(data: dict[str, object]) -> Address | None:
    """An address in its ordinary shape (text fields strings, codes four digits), validated
    by :class:`Address` itself; None for anything else."""
    for key in _ADDRESS_TEXTS:
        if type(data.get(key)) is not str:
            return None
    for key in _ADDRESS_CODES:
        code = data.get(key)
        if type(code) is not str or len(code) != 4 or not code.isdigit():
            return None
    for key in _ADDRESS_OPTIONAL:
        value = data.get(key)
        if value is not None and type(value) is not str:
            return None
    return Address.model_validate(data)


def _iso_date(value: object) -> bool:
    """A ``YYYY-MM-DD`` string naming a real date (what the model reads as a date too);
    remembered, since a snapshot repeats birth dates."""
    if type(value) is not str:
        return False
    known = _DATES.get(value)
    if known is None:
        known = _is_iso_date(value)
        if len(_DATES) < _DATES_KEPT:
            _DATES[value] = known
    return known


def _is_iso_date(value: str) -> bool:
    if len(value) != 10 or value[4] != "-" or value[7] != "-" or not value.isascii() \
            or not (value[:4].isdigit() and value[5:7].isdigit() and value[8:].isdigit()):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


_DATES: dict[str, bool] = {}
_DATES_KEPT = 100_000
"""At most this many answers of :func:`_iso_date` are kept (≈ 270 years of days)."""


def _json_lines(path: str | Path) -> Iterator[tuple[int, object]]:
    """``(line number, parsed JSON)`` for every non-blank line."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ReferenceDataError(f"{path}: cannot read: {exc.strerror}") from None
    loads = orjson.loads
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = loads(line)
            except orjson.JSONDecodeError:
                raise ReferenceDataError(f"{path}:{number}: not valid JSON") from None
            yield number, data


def _validated(model: type[M], data: object, where: str) -> M:
    try:
        return parse_record(model, data)  # type: ignore[return-value]
    except ValueError as exc:
        raise ReferenceDataError(f"{where}: {exc}") from None


def load_reference(persons: str | Path, cases: str | Path) -> CaseIndex:
    """The register from ``persons`` and the case index from ``cases``, ready for the core
    (read with the garbage collector paused: :func:`triage.gcpolicy.paused`)."""
    with paused():
        return _load_reference(persons, cases)


def _load_reference(persons: str | Path, cases: str | Path) -> CaseIndex:
    register = Register.of_people(read_persons(persons))
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
