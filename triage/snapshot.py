"""Reading the reference data files (persons and cases JSON Lines) into a register and cases.

Reference data must be trustworthy — every decision leans on it — so a file that cannot be read,
or a record that does not validate, stops the run with one line naming the file, the line and
the problem (never a CPR number). Compare input events, where one bad line is an ``invalid``
decision and the run goes on.

Speed (issue 13): a municipality's persons snapshot is read at every start and every replay, so
a person line in its ordinary shape is decoded by msgspec's compiled decoder and checked by hand
(:func:`person_of`: :func:`triage.cprnumber.is_valid` — a set lookup — and the status; one
:class:`Address` per address written alike) instead of by pydantic. Anything else — a wrong
type, a missing field, a value pydantic would coerce — goes through
:class:`~triage.models.reference.PersonRecord`, so every error message (and every coercion)
comes from the same model as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TypeVar

import msgspec
import orjson

from triage.cases import CaseFields, CaseIndex
from triage.cprnumber import is_valid as is_valid_cpr
from triage.gcpolicy import paused
from triage.models.address import Address, Model
from triage.models.events import CivilStatus, parse_record
from triage.models.reference import Benefit, CaseRecord, PersonRecord, Role
from triage.register import Person, Register

M = TypeVar("M", bound=Model)


class ReferenceDataError(Exception):
    """Reference data that cannot be used. ``str()`` is one line for the operator."""


def read_records(path: str | Path, model: type[M]) -> Iterator[M]:
    """Every record of a JSON Lines file, validated by ``model``."""
    for number, line in _lines(path):
        yield _modelled(model, line, path, number)


def read_persons(path: str | Path) -> Iterator[Person]:
    """The persons snapshot as register entries: :func:`person_of` for the ordinary record,
    :class:`PersonRecord` (and its error messages) for everything else."""
    addresses: Addresses = {}
    for number, line in _lines(path):
        person = person_of(line, addresses)
        if person is None:
            record = _modelled(PersonRecord, line, path, number)
            person = Person(record.cpr, record.address, record.civil_status, record.spouse_cpr,
                            record.status)
        yield person


class _AddressLine(msgspec.Struct, frozen=True):
    """An address as a persons line writes it, in the ordinary shape: text fields strings, the
    optional ones strings or null (unknown fields are ignored, as :class:`Address` ignores
    them). Hashable: equal lines share one :class:`Address`. It mirrors the model's fields
    (required ones first, as msgspec wants); a test checks that the two agree."""

    address_id: str
    municipality_code: str
    road_code: str
    house_number: str
    postcode: str
    floor: str | None = None
    door: str | None = None
    label: str | None = None


class _PersonLine(msgspec.Struct):
    """A persons line in the ordinary shape of :class:`PersonRecord`: the same fields, types
    and defaults (a test checks that they agree); the CPR numbers, the status and the address
    codes are checked afterwards."""

    cpr: str
    address: _AddressLine | None = None
    civil_status: CivilStatus = "U"
    spouse_cpr: str | None = None
    birth_date: date | None = None
    status: str = "01"


class _ExactAddressLine(_AddressLine, frozen=True, forbid_unknown_fields=True):
    """:class:`_AddressLine` without unknown fields (see :func:`_decoded`)."""


class _ExactPersonLine(_PersonLine, forbid_unknown_fields=True):
    """:class:`_PersonLine` without unknown fields, here or in its address (see
    :func:`_decoded`)."""

    address: _ExactAddressLine | None = None


_decode_person = msgspec.json.Decoder(_PersonLine).decode
_decode_exact_person = msgspec.json.Decoder(_ExactPersonLine).decode
Addresses = dict[_AddressLine, Address]
"""The addresses read so far: an address line and its :class:`Address`."""
_STATUSES = frozenset(f"{code:02}" for code in range(100))
"""The statuses the fast path accepts: two ASCII digits (the model's pattern admits more, and
judges those itself)."""


def person_of(line: bytes, addresses: Addresses | None = None) -> Person | None:
    """A persons line in its ordinary shape as a register entry, checked exactly as
    :class:`PersonRecord` checks it — or None when the line is anything else (then the model
    decides, and names the problem). Never raises; accepts only what the model accepts, with
    the values the model would produce.

    The line is decoded by msgspec's compiled decoder into :class:`_PersonLine` (types, the
    civil status, the birth date as a real ``YYYY-MM-DD`` date), then the CPR numbers are
    checked by :func:`triage.cprnumber.is_valid` and the status against two digits.
    ``addresses`` shares one (immutable) :class:`Address` among the persons whose address is
    written alike: a household's address is validated once."""
    record = _decoded(line, _decode_exact_person, _decode_person)
    if record is None:  # not JSON, or not the ordinary shape: for the model
        return None
    cpr, spouse = record.cpr, record.spouse_cpr
    if (not is_valid_cpr(cpr) or (spouse is not None and not is_valid_cpr(spouse))
            or record.status not in _STATUSES):
        return None
    address: Address | None = None
    if record.address is not None:
        address = addresses.get(record.address) if addresses is not None else None
        if address is None:
            address = _address_of(record.address)
            if address is None:
                return None
            if addresses is not None:
                addresses[record.address] = address
    return Person(cpr, address, record.civil_status, spouse, record.status)


def _address_of(line: _AddressLine) -> Address | None:
    """The :class:`Address` of an address line whose codes are four ASCII digits, validated by
    the model itself; None for anything else."""
    for code in (line.municipality_code, line.road_code):
        if len(code) != 4 or not (code.isascii() and code.isdigit()):
            return None
    try:
        return Address.model_validate(msgspec.structs.asdict(line))
    except ValueError:  # pydantic's ValidationError: the model names it for the whole record
        return None


def read_cases(path: str | Path) -> Iterator[CaseFields]:
    """The cases file: :func:`case_of` for the ordinary record, :class:`CaseRecord` (and its
    error messages) for everything else."""
    for number, line in _lines(path):
        case = case_of(line)
        yield case if case is not None else _modelled(CaseRecord, line, path, number)


class _MemberLine(msgspec.Struct):
    cpr: str
    role: Role


class _CaseLine(msgspec.Struct):
    """A cases line in the ordinary shape of :class:`CaseRecord`: the same fields and types (a
    test checks that they agree); lengths, the municipality code and the CPR numbers are
    checked afterwards."""

    case_id: str
    benefit: Benefit
    municipality_code: str
    unit: str
    members: list[_MemberLine]

    @property
    def applicant(self) -> str | None:
        return next((m.cpr for m in self.members if m.role == "applicant"), None)


class _ExactMemberLine(_MemberLine, forbid_unknown_fields=True):
    """:class:`_MemberLine` without unknown fields (see :func:`_decoded`)."""


class _ExactCaseLine(_CaseLine, forbid_unknown_fields=True):
    """:class:`_CaseLine` without unknown fields, here or in its members (see
    :func:`_decoded`)."""

    members: list[_ExactMemberLine]  # type: ignore[assignment]  # read only, never appended


_decode_case = msgspec.json.Decoder(_CaseLine).decode
_decode_exact_case = msgspec.json.Decoder(_ExactCaseLine).decode


def case_of(line: bytes) -> _CaseLine | None:
    """A cases line in its ordinary shape, checked exactly as :class:`CaseRecord` checks it —
    or None when it is anything else (then the model decides, and names the problem)."""
    case = _decoded(line, _decode_exact_case, _decode_case)
    if case is None:
        return None
    code = case.municipality_code
    if (not case.case_id or not case.unit or not case.members
            or len(code) != 4 or not (code.isascii() and code.isdigit())
            or not all(is_valid_cpr(m.cpr) for m in case.members)):
        return None
    return case


S = TypeVar("S", bound=msgspec.Struct)


def _decoded(line: bytes, exact: Callable[[bytes], S], lenient: Callable[[bytes], S]) -> S | None:
    """``line`` decoded by the compiled decoder, or None where the model's JSON parser would
    not read it either.

    msgspec checks every value it decodes but only skips over the value of an unknown field,
    and there it let through what orjson (the model's parser) refuses as not valid JSON: bytes
    that are not UTF-8, a number beyond a double (``1e400``, 400 digits). And it recurses into
    deep nesting until Python's RecursionError. So a line is decoded ``exact`` — no unknown
    field anywhere, everything checked — and only a line orjson reads is decoded ``lenient``,
    unknown fields ignored as the model ignores them."""
    try:
        return exact(line)
    except msgspec.DecodeError:
        pass
    try:
        orjson.loads(line)
        return lenient(line)
    except (orjson.JSONDecodeError, msgspec.DecodeError, RecursionError):
        return None


def _lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` for every non-blank line."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ReferenceDataError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def _modelled(model: type[M], line: bytes, path: str | Path, number: int) -> M:
    """Line ``number`` of ``path`` parsed and validated by ``model``; ReferenceDataError naming
    the file, the line and the problem."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ReferenceDataError(f"{path}:{number}: not valid JSON") from None
    try:
        return parse_record(model, data)  # type: ignore[return-value]
    except ValueError as exc:
        raise ReferenceDataError(f"{path}:{number}: {exc}") from None


def load_reference(persons: str | Path, cases: str | Path) -> CaseIndex:
    """The register from ``persons`` and the case index from ``cases``, ready for the core
    (read with the garbage collector paused: :func:`triage.gcpolicy.paused`)."""
    with paused():
        return _load_reference(persons, cases)


def _load_reference(persons: str | Path, cases: str | Path) -> CaseIndex:
    register = Register.of_people(read_persons(persons))
    index = CaseIndex(register)
    seen: set[str] = set()
    for number, record in enumerate(read_cases(cases), start=1):
        if record.case_id in seen:
            raise ReferenceDataError(f"{cases}: case {record.case_id} appears twice "
                                     f"(second time in record {number})")
        if record.applicant is None:
            raise ReferenceDataError(f"{cases}: case {record.case_id} has no applicant")
        seen.add(record.case_id)
        index.add(record)
    return index
