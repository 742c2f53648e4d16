"""connectors.dar: DAWA replication events → canonical DAR events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from connectors.dar import AddressBook, convert_replication, event_id
from triage.models.events import DarEvent, InvalidEvent, parse_event

FIXTURES = Path(__file__).parent / "fixtures" / "dar"
A = "0a3f50a0-3c6f-32b8-e044-0003ba298018"
B = "0a3f50a1-44b2-32b8-e044-0003ba298018"
C = "0a3f50a2-0c1d-32b8-e044-0003ba298018"
ACCESS = "0a3f507a-93e7-32b8-e044-0003ba298018"
D1 = "0a3f50b1-1111-32b8-e044-0003ba298018"
D2 = "0a3f50b2-2222-32b8-e044-0003ba298018"
NEW = "0a3f50ff-9999-32b8-e044-0003ba298018"


def seeded_book() -> AddressBook:
    book = AddressBook()
    for record in json.loads((FIXTURES / "extract.json").read_text(encoding="utf-8")):
        book.add(record)
    return book


def replication() -> list[dict[str, Any]]:
    lines = (FIXTURES / "replication.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def validated(event: dict[str, Any]) -> DarEvent:
    parsed = parse_event(orjson.dumps(event))
    assert not isinstance(parsed, InvalidEvent), parsed.error
    assert isinstance(parsed, DarEvent)
    return parsed


def test_replication_stream_gives_the_expected_events() -> None:
    book = seeded_book()
    events = list(convert_replication(replication(), book))
    assert [(e["type"], e["address_id"]) for e in events] == [
        ("address_renamed", A),
        ("address_renumbered", B),
        ("postcode_changed", C),
        ("municipality_changed", C),
        ("address_retired", B),
        ("address_retired", A),
    ]
    for event in events:
        validated(event)


def test_rename() -> None:
    book = seeded_book()
    [event] = convert_replication(replication()[1:2], book)
    assert event["type"] == "address_renamed"
    assert event["before"]["label"].startswith("Kongensgade 12")
    assert event["after"]["label"].startswith("Kong Christians Gade 12")
    assert event["before"]["address_id"] == event["after"]["address_id"] == A
    assert event["registered_at"] == "2023-09-14T10:01:00+00:00"
    assert event["changes"] == ["vejnavn"]
    validated(event)


def test_renumber_keeps_offset() -> None:
    [event] = convert_replication(replication()[2:3], seeded_book())
    assert event["type"] == "address_renumbered"
    assert (event["before"]["house_number"], event["after"]["house_number"]) == ("7", "7A")
    assert event["registered_at"] == "2023-09-14T10:02:00+02:00"
    validated(event)


def test_postcode_and_municipality_change() -> None:
    book = seeded_book()
    postcode, municipality = convert_replication(replication()[3:5], book)
    assert postcode["type"] == "postcode_changed"
    assert (postcode["before"]["postcode"], postcode["after"]["postcode"]) == ("6740", "6705")
    assert municipality["type"] == "municipality_changed"
    assert municipality["before"]["municipality_code"] == "0561"
    assert municipality["after"]["municipality_code"] == "0573"
    assert municipality["after"]["road_code"] == "0917"
    validated(postcode)
    parsed = validated(municipality)
    assert parsed.after is not None and parsed.after.municipality_code == "0573"


def test_retire_by_status_and_by_delete() -> None:
    book = seeded_book()
    stream = replication()
    events = list(convert_replication(stream[2:3] + stream[5:], book))[1:]
    assert [(e["type"], e["address_id"]) for e in events] == [
        ("address_retired", B), ("address_retired", A)]
    for event in events:
        assert event["after"] is None
        assert validated(event).after is None
    assert B not in book and A not in book


def test_insert_of_new_address_is_ignored_but_remembered() -> None:
    book = seeded_book()
    assert list(convert_replication(replication()[:1], book)) == []
    assert NEW in book
    rename = {"txid": 9100, "sekvensnummer": 60001, "tidspunkt": "2023-09-15T08:00:00Z",
              "operation": "update",
              "data": {**replication()[0]["data"], "vejnavn": "Nystormgade"}}
    [event] = convert_replication([rename], book)
    assert event["type"] == "address_renamed" and event["address_id"] == NEW


def test_event_ids_are_deterministic() -> None:
    first = [e["event_id"] for e in convert_replication(replication(), seeded_book())]
    again = [e["event_id"] for e in convert_replication(replication(), seeded_book())]
    assert first == again
    assert len(set(first)) == len(first)
    assert first[0] == event_id(9002, 50002, A)


def test_replaying_into_the_same_book_emits_nothing_new() -> None:
    book = seeded_book()
    list(convert_replication(replication(), book))
    before = book.snapshot()
    assert list(convert_replication(replication()[:5], book)) == []
    assert book.replayed == 5
    assert book.snapshot() == before  # nothing rolled back


def test_unknown_address_update_is_counted_not_emitted() -> None:
    book = AddressBook()
    assert list(convert_replication(replication()[1:2], book)) == []
    assert book.unknown == 1
    assert A in book  # remembered from now on


def test_vejstykke_rename_renames_every_address_on_the_road() -> None:
    book = seeded_book()
    road = {"txid": 9200, "sekvensnummer": 70001, "tidspunkt": "2023-10-01T00:00:00Z",
            "operation": "update",
            "data": {"id": "e1e1e1e1-ab12-4c34-85a7-3d702167468e", "kommunekode": "0561",
                     "kode": "0101", "navn": "Torvegade", "adresseringsnavn": "Torvegade",
                     "navngivenvej_id": "f2f2f2f2-ab12-4c34-85a7-3d702167468e"}}
    events = list(convert_replication([road], book))
    assert sorted(e["address_id"] for e in events) == sorted([D1, D2])
    assert {e["type"] for e in events} == {"address_renamed"}
    for event in events:
        assert event["after"]["label"].startswith("Torvegade 1")
        validated(event)


def test_adgangsadresse_renumber_applies_to_its_units() -> None:
    book = seeded_book()
    access = {"txid": 9300, "sekvensnummer": 80001, "tidspunkt": "2023-10-02T00:00:00Z",
              "operation": "update",
              "data": {"id": ACCESS, "status": 1, "kommunekode": "0561", "vejkode": "0101",
                       "husnr": "1B", "supplerendebynavn": None, "postnr": "6760",
                       "ejerlavkode": 1234, "matrikelnr": "5a"}}
    events = list(convert_replication([access], book))
    assert sorted(e["address_id"] for e in events) == sorted([D1, D2])
    for event in events:
        assert event["type"] == "address_renumbered"
        assert event["after"]["house_number"] == "1B"
        assert event["after"]["floor"] in ("st", "1")  # the units keep their floor/door
        validated(event)


def test_book_snapshot_roundtrip() -> None:
    book = seeded_book()
    list(convert_replication(replication()[:2], book))
    restored = AddressBook.restore(json.loads(json.dumps(book.snapshot())))
    assert restored.get(A) == book.get(A)
    assert len(restored) == len(book)
    assert restored.sekvensnummer == 50002
