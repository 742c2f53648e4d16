"""connectors.envelope: SF1320_A / Datafordeler CPR Hændelsesbesked → canonical CPR events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.envelope import EnvelopeError, convert_envelope, parse_envelope
from triage.models.events import (
    AddressChanged,
    CivilStatusChanged,
    InvalidEvent,
    MasterDataChanged,
    PersonGone,
    UnknownEvent,
    parse_event,
)

FIXTURES = Path(__file__).parent / "fixtures" / "envelope"
APPLICANT = "0101801234"
SPOUSE = "0202821235"

OLD_HOME = {"address_id": "0a3f50a0-3c6f-32b8-e044-0003ba298018", "municipality_code": "0561",
            "road_code": "1234", "house_number": "12", "floor": "2", "door": "tv",
            "postcode": "6700", "label": "Kongensgade 12, 2. tv, 6700 Esbjerg"}
NEW_HOME = {"address_id": "0a3f50a1-44b2-32b8-e044-0003ba298018", "municipality_code": "0561",
            "road_code": "0456", "house_number": "7", "floor": None, "door": None,
            "postcode": "6705", "label": "Stormgade 7, 6705 Esbjerg Ø"}


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def validated(event: dict[str, Any]) -> Any:
    parsed = parse_event(orjson.dumps(event))
    assert not isinstance(parsed, InvalidEvent), parsed.error
    return parsed


def lookup_returning(person: dict[str, Any] | None):
    calls: list[str] = []

    async def lookup(cpr: str) -> dict[str, Any] | None:
        calls.append(cpr)
        return person

    lookup.calls = calls  # type: ignore[attr-defined]
    return lookup


async def failing_lookup(cpr: str) -> dict[str, Any] | None:
    raise TimeoutError("register did not answer")


def person(**extra: Any) -> dict[str, Any]:
    base = {"cpr": APPLICANT, "address": NEW_HOME, "previous_address": OLD_HOME,
            "civil_status": "U", "spouse_cpr": None, "status": "01", "move_date": "2024-03-01"}
    base.update(extra)
    return base


def test_parse_envelope_reads_datafordeler_fields() -> None:
    env = parse_envelope(load("move_within_municipality.json"))
    assert env.message_id == "6f1c2a4e-8d3b-4c61-9a0e-5b7d2e1f3a90"
    assert env.cpr == APPLICANT
    assert env.code == "A01"
    assert (env.municipality_before, env.municipality_after) == ("0561", "0561")
    assert env.registered_at.isoformat() == "2024-03-04T06:12:33+01:00"


async def test_move_within_municipality_uses_lookup() -> None:
    lookup = lookup_returning(person())
    event = await convert_envelope(load("move_within_municipality.json"), lookup)
    assert lookup.calls == [APPLICANT]  # type: ignore[attr-defined]
    assert event["type"] == "address_changed"
    assert event["event_id"] == "6f1c2a4e-8d3b-4c61-9a0e-5b7d2e1f3a90"
    assert event["registered_at"] == "2024-03-04T06:12:33+01:00"
    assert event["from"]["address_id"] == OLD_HOME["address_id"]
    assert event["to"]["address_id"] == NEW_HOME["address_id"]
    assert event["move_date"] == "2024-03-01"
    parsed = validated(event)
    assert isinstance(parsed, AddressChanged)
    assert parsed.cpr == APPLICANT and parsed.code == "A01"


async def test_move_accepts_bytes_and_datafordeler_cpr_adresse() -> None:
    cpr_adresse = {"daradresse": NEW_HOME["address_id"], "cprkommunekode": "561",
                   "cprvejkode": "456", "husnummer": "007 ".strip(), "etage": None,
                   "sidedoer": None, "postnummer": 6705}
    lookup = lookup_returning(person(address=cpr_adresse, previous_address=None,
                                     move_date=None))
    raw = (FIXTURES / "move_within_municipality.json").read_bytes()
    event = await convert_envelope(raw, lookup)
    assert event["type"] == "address_changed"
    assert event["from"] is None  # previous address unknown → null, as CONTRACT.md allows
    assert event["to"]["municipality_code"] == "0561"
    assert event["to"]["road_code"] == "0456"
    assert event["move_date"] == "2024-03-04"  # falls back to the registration date
    assert isinstance(validated(event), AddressChanged)


@pytest.mark.parametrize("lookup", [failing_lookup, lookup_returning(None),
                                    lookup_returning({})])
async def test_lookup_failure_gives_unclassified_event_never_dropped(lookup: Any) -> None:
    event = await convert_envelope(load("move_within_municipality.json"), lookup)
    assert event["type"] == "cpr_event_A01"
    assert event["event_id"] == "6f1c2a4e-8d3b-4c61-9a0e-5b7d2e1f3a90"
    assert event["cpr"] == APPLICANT
    assert "lookup" in event["unclassified_reason"]
    parsed = validated(event)
    assert isinstance(parsed, UnknownEvent)
    assert parsed.persons == (APPLICANT,)


@pytest.mark.parametrize("stale", [
    # the replica still shows the old address
    {"address": OLD_HOME, "previous_address": OLD_HOME},
    # the replica's address lies in another municipality than KommuneNuvaerende
    {"address": {**NEW_HOME, "municipality_code": "0101"}},
    # no address at all
    {"address": None},
])
async def test_lookup_that_does_not_reflect_the_move_is_unclassified(stale: dict) -> None:
    event = await convert_envelope(load("move_within_municipality.json"),
                                   lookup_returning(person(**stale)))
    assert event["type"] == "cpr_event_A01"
    assert isinstance(validated(event), UnknownEvent)


async def test_death_with_transliterated_keys() -> None:
    lookup = lookup_returning(person(status="90", status_date="2024-05-12", civil_status="D"))
    event = await convert_envelope(load("death_transliterated.json"), lookup)
    assert event["type"] == "died"
    assert event["date"] == "2024-05-12"
    assert event["registered_at"] == "2024-05-12T22:40:00+00:00"
    parsed = validated(event)
    assert isinstance(parsed, PersonGone) and parsed.type == "died"


@pytest.mark.parametrize("lookup", [failing_lookup, lookup_returning(person(status="01"))])
async def test_death_the_lookup_does_not_confirm_is_raised_unclassified(lookup: Any) -> None:
    event = await convert_envelope(load("death_transliterated.json"), lookup)
    assert event["type"] == "cpr_event_A21"  # the lookup decides; never a guessed death
    assert isinstance(validated(event), UnknownEvent)


async def test_marriage_derived_copy_pnr_from_related_object() -> None:
    lookup = lookup_returning(person(civil_status="G", spouse_cpr=SPOUSE,
                                     civil_status_date="2024-05-31"))
    event = await convert_envelope(load("marriage_derived.json"), lookup)
    assert event["type"] == "civil_status_changed"
    assert event["cpr"] == APPLICANT  # objektID is a UUID; the PNR is in RelateretObjekt
    assert event["civil_status"] == "G"
    assert event["spouse_cpr"] == SPOUSE
    assert event["date"] == "2024-05-31"
    assert event["derived_marker"] == "ÆG"
    parsed = validated(event)
    assert isinstance(parsed, CivilStatusChanged) and parsed.derived


async def test_marriage_with_stale_civil_status_is_unclassified() -> None:
    event = await convert_envelope(load("marriage_derived.json"),
                                   lookup_returning(person(civil_status="U")))
    assert event["type"] == "cpr_event_A19"
    assert isinstance(validated(event), UnknownEvent)


async def test_unmapped_code_is_unclassified() -> None:
    event = await convert_envelope(load("adoption_unmapped.json"), lookup_returning(None))
    assert event["type"] == "cpr_event_A35"
    assert event["cpr"] == SPOUSE
    assert isinstance(validated(event), UnknownEvent)


def _with_action(action: str, objekt_id: str = APPLICANT) -> dict[str, Any]:
    doc = load("adoption_unmapped.json")
    reg = doc["Message"]["Grunddatabesked"]["Hændelsesbesked"]["Beskedkuvert"][
        "Filtreringsdata"]["Objektregistrering"][0]
    reg["objekthandling"] = action
    reg["objektID"] = objekt_id
    return doc


@pytest.mark.parametrize(("action", "type_", "model"), [
    ("Navneændring;KommuneTidligere:0561; KommuneNuvaerende:0561", "name_changed",
     MasterDataChanged),
    ("cpr.businessevent.A13", "name_changed", MasterDataChanged),
    ("Udrejse;KommuneTidligere:0561; KommuneNuvaerende:", "emigrated", PersonGone),
    ("Forsvinden;KommuneTidligere:0561; KommuneNuvaerende:0561", "disappeared", PersonGone),
    ("Skilsmisse;KommuneTidligere:0561; KommuneNuvaerende:0561", "civil_status_changed",
     CivilStatusChanged),
    ("Genindrejse;KommuneTidligere:; KommuneNuvaerende:0561", "address_changed",
     AddressChanged),
    ("Noget helt andet;KommuneTidligere:; KommuneNuvaerende:0561", "cpr_event_UNKNOWN",
     UnknownEvent),
])
async def test_business_events_by_name(action: str, type_: str, model: type) -> None:
    status = {"Udrejse": "80", "Forsvinden": "70"}.get(action.split(";")[0], "01")
    lookup = lookup_returning(person(civil_status="F", country_code="5120",
                                     status_date="2024-06-30", status=status))
    event = await convert_envelope(_with_action(action), lookup)
    assert event["type"] == type_
    assert isinstance(validated(event), model)
    if type_ == "emigrated":
        assert event["country_code"] == "5120" and event["date"] == "2024-06-30"


async def test_pnr_with_hyphen_is_accepted() -> None:
    event = await convert_envelope(_with_action("A13", "010180-1234"), lookup_returning(None))
    assert event["cpr"] == APPLICANT


async def test_envelope_without_pnr_raises() -> None:
    with pytest.raises(EnvelopeError) as err:
        await convert_envelope(_with_action("A01", "9a6f0e1c-7b2d-4e5f-8a9b-0c1d2e3f4a5b"),
                               lookup_returning(person()))
    assert APPLICANT not in str(err.value)


@pytest.mark.parametrize("bad", [b"not json", b"[]", b'{"Message": {}}',
                                 b'{"Haendelsesbesked": {"Beskedkuvert": {}}}'])
def test_unusable_envelopes_raise(bad: bytes) -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(bad)


def test_naive_timestamp_is_danish_local_time() -> None:
    doc = _with_action("A13")
    doc["Message"]["Grunddatabesked"]["Hændelsesbesked"]["Beskedkuvert"]["Filtreringsdata"][
        "Objektregistrering"][0]["registreringstid"] = "2024-07-01T08:00:00.1234567"
    env = parse_envelope(doc)
    assert env.registered_at.utcoffset() is not None
    assert env.registered_at.isoformat() == "2024-07-01T08:00:00.123456+02:00"  # summer
