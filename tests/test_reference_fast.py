"""The fast persons reader (issue 13) accepts exactly what :class:`PersonRecord` accepts, with the
same values, and leaves every other record — and so every error message — to the model."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import orjson
import pytest
from stdnum.dk import cpr as stdnum_cpr

from triage import cprnumber
from triage.models.address import Address
from triage.models.events import parse_record
from triage.models.reference import CaseMember, CaseRecord, PersonRecord
from triage.register import Person
from triage.snapshot import (
    Addresses,
    ReferenceDataError,
    _AddressLine,
    _CaseLine,
    _MemberLine,
    _PersonLine,
    case_of,
    person_of,
    read_cases,
    read_persons,
)

ADDRESS = {"address_id": "a-1", "municipality_code": "0561", "road_code": "0129",
           "house_number": "62", "floor": None, "door": "tv", "postcode": "6715",
           "label": "Søhaven 62, 6715 Esbjerg N"}
PERSON = {"cpr": "3004774360", "address": ADDRESS, "civil_status": "G",
          "spouse_cpr": "0509226164", "birth_date": "1977-04-30", "status": "01"}


def as_model(data: dict[str, object]) -> Person:
    record = parse_record(PersonRecord, data)
    assert isinstance(record, PersonRecord)
    return Person(record.cpr, record.address, record.civil_status, record.spouse_cpr,
                  record.status)


def test_the_century_rule_is_stdnums_for_every_date_and_seventh_digit() -> None:
    for day, month, yy, seventh in itertools.product(range(0, 33, 1), range(0, 14),
                                                     range(0, 100, 3), "0123456789"):
        number = f"{day:02}{month:02}{yy:02}{seventh}000"
        try:
            expected: date | None = stdnum_cpr.get_birth_date(number)
        except Exception:
            expected = None
        try:
            ours: date | None = cprnumber.birth_date(number)
        except cprnumber.InvalidCpr:
            ours = None
        assert ours == expected, number
        assert cprnumber.is_valid(number) is (expected is not None), number


def test_the_quick_check_knows_29_february_by_century() -> None:
    assert cprnumber.is_valid("2902004000")  # 7th digit 4, YY 00: 2000, a leap year
    assert not cprnumber.is_valid("2902000000")  # 7th digit 0, YY 00: 1900, no leap year
    assert not cprnumber.is_valid("2902904000")  # 7th digit 4, YY 90: 1990
    assert cprnumber.is_valid("2902645800")  # 7th digit 5, YY 64: 1864, a leap year
    for odd in (None, 3004774360, "300477436", "30047743６0", "3004774360 "):
        assert not cprnumber.is_valid(odd)


@pytest.mark.parametrize("change", [
    {}, {"address": None}, {"spouse_cpr": None}, {"birth_date": None},
    {"extra": [1, 2]}, {"address": {**ADDRESS, "label": None, "unknown": 1}},
])
def test_an_ordinary_record_reads_as_the_model_reads_it(change: dict[str, object]) -> None:
    data = {**PERSON, **change}
    fast = person_of(orjson.dumps(data))
    assert fast is not None
    assert fast == as_model(data)


def test_absent_optional_fields_take_the_models_defaults() -> None:
    data = {"cpr": PERSON["cpr"]}
    assert person_of(orjson.dumps(data)) == as_model(data)


def test_a_repeated_key_counts_as_the_model_counts_it() -> None:
    """The last of two values wins, in the decoder as in the JSON parser the model reads."""
    line = orjson.dumps(PERSON)[:-1] + b', "civil_status": "F"}'
    fast = person_of(line)
    assert fast is not None and fast == as_model(orjson.loads(line))
    assert fast.civil_status == "F"


@pytest.mark.parametrize("change", [
    {"cpr": "3213901234"}, {"cpr": 3004774360}, {"cpr": "30047743６0"},
    {"spouse_cpr": "123"}, {"civil_status": "X"}, {"civil_status": None},
    {"status": "1"}, {"status": 1}, {"birth_date": "1977-02-30"}, {"birth_date": 1977},
    {"birth_date": "1977-04-30T00:00:00"},
    {"address": "Søhaven 62"}, {"address": {**ADDRESS, "municipality_code": 561}},
    {"address": {**ADDRESS, "road_code": "129"}}, {"address": {**ADDRESS, "floor": 1}},
    {"address": {k: v for k, v in ADDRESS.items() if k != "postcode"}},
    {"address": {**ADDRESS, "road_code": "٠١٢٩"}}, {"status": "٠١"},
    {"address": {**ADDRESS, "house_number": None}}, {"birth_date": "1977-4-30"},
])
def test_anything_else_is_left_to_the_model(change: dict[str, object]) -> None:
    """Odd records (wrong, coercible or missing values) are not judged by the fast path."""
    assert person_of(orjson.dumps({**PERSON, **change})) is None


@pytest.mark.parametrize("line", [b"", b"[1]", b"null", b'{"cpr": "3004774360"', b"\xff",
                                  b'{"cpr": "3004774360"} x'])
def test_a_line_that_is_no_json_object_is_left_to_the_model(line: bytes) -> None:
    assert person_of(line) is None


def test_the_file_reader_coerces_and_reports_as_the_model_does(tmp_path: Path) -> None:
    persons = tmp_path / "persons.jsonl"
    coercible = {**PERSON, "address": {**ADDRESS, "municipality_code": 561}}
    persons.write_bytes(orjson.dumps(PERSON) + b"\n\n" + orjson.dumps(coercible) + b"\n"
                        + b'{"cpr": "3213901234", "address": null}\n')
    read = read_persons(persons)
    assert next(read) == as_model(PERSON)
    second = next(read)
    assert second == as_model(coercible) and second.address is not None
    assert second.address.municipality_code == "0561"
    with pytest.raises(ReferenceDataError) as raised:
        next(read)
    assert str(raised.value) == f"{persons}:4: cpr: not a valid CPR number: the first six " \
                                "digits are not a real date (DDMMYY)"


def test_a_household_shares_one_address() -> None:
    addresses: Addresses = {}
    one = person_of(orjson.dumps(PERSON), addresses)
    two = person_of(orjson.dumps({**PERSON, "cpr": "0509226164",
                                  "address": dict(reversed(ADDRESS.items()))}), addresses)
    assert one is not None and two is not None and one.address is two.address


def test_an_address_id_written_with_other_content_is_read_as_written() -> None:
    addresses: Addresses = {}
    one = person_of(orjson.dumps(PERSON), addresses)
    other = {**ADDRESS, "label": "Søhaven 62, 1. tv, 6715 Esbjerg N", "floor": "1"}
    two = person_of(orjson.dumps({**PERSON, "cpr": "0509226164", "address": other}), addresses)
    three = person_of(orjson.dumps({**PERSON, "cpr": "0101901234"}), addresses)
    assert one is not None and two is not None and three is not None
    assert two.address == as_model({**PERSON, "address": other}).address
    assert two.address != one.address and three.address == one.address


@pytest.mark.parametrize(("line", "model"), [(_PersonLine, PersonRecord), (_AddressLine, Address)])
def test_the_decoders_structs_mirror_the_models(line: type, model: type) -> None:
    """The compiled decoder's structs have the models' fields and defaults: a field added to
    a model and not to its struct (or the other way round) fails here, not in production."""
    defaults = dict(zip(line.__struct_fields__[len(line.__struct_fields__)
                                               - len(line.__struct_defaults__):],
                        line.__struct_defaults__, strict=True))
    assert set(line.__struct_fields__) == set(model.model_fields)
    for name, field in model.model_fields.items():
        if field.is_required():
            assert name not in defaults, name
        else:
            assert defaults[name] == field.default, name


CASE = {"case_id": "KH-1", "benefit": "kontanthjaelp", "municipality_code": "0561",
        "unit": "jobcenter", "members": [{"cpr": "3004774360", "role": "applicant"},
                                         {"cpr": "0509226164", "role": "spouse"}]}


def case_fields(case: object) -> tuple[object, ...]:
    members = tuple((m.cpr, m.role) for m in case.members)  # type: ignore[attr-defined]
    return (case.case_id, case.benefit, case.municipality_code,  # type: ignore[attr-defined]
            case.unit, members, case.applicant)  # type: ignore[attr-defined]


@pytest.mark.parametrize("change", [{}, {"extra": 1}, {"members": [CASE["members"][1]]}])
def test_an_ordinary_case_reads_as_the_model_reads_it(change: dict[str, object]) -> None:
    data = {**CASE, **change}
    fast = case_of(orjson.dumps(data))
    assert fast is not None
    assert case_fields(fast) == case_fields(parse_record(CaseRecord, data))


@pytest.mark.parametrize("change", [
    {"case_id": ""}, {"unit": ""}, {"members": []}, {"municipality_code": 561},
    {"municipality_code": "561"}, {"benefit": "folkepension"}, {"case_id": 7},
    {"members": [{"cpr": "3213901234", "role": "applicant"}]},
    {"members": [{"cpr": "3004774360", "role": "boss"}]}, {"members": None},
])
def test_any_other_case_is_left_to_the_model(change: dict[str, object]) -> None:
    assert case_of(orjson.dumps({**CASE, **change})) is None


def test_the_cases_reader_coerces_and_reports_as_the_model_does(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_bytes(orjson.dumps(CASE) + b"\n" + orjson.dumps({**CASE, "municipality_code": 561})
                      + b"\n" + orjson.dumps({**CASE, "members": []}) + b"\n")
    read = read_cases(cases)
    assert case_fields(next(read)) == case_fields(parse_record(CaseRecord, CASE))
    assert next(read).municipality_code == "0561"
    with pytest.raises(ReferenceDataError) as raised:
        next(read)
    assert str(raised.value).startswith(f"{cases}:3: members:")


def test_the_case_structs_mirror_the_model() -> None:
    assert set(_CaseLine.__struct_fields__) == set(CaseRecord.model_fields)
    assert set(_MemberLine.__struct_fields__) == set(CaseMember.model_fields)
    assert not _CaseLine.__struct_defaults__ and not _MemberLine.__struct_defaults__
    assert all(f.is_required() for f in CaseRecord.model_fields.values())
