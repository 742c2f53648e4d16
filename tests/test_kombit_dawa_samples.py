"""KOMBIT's Beskedfordeler test messages and DAWA's replication events through their connectors,
including `triage poll-dar` against a real local HTTP server serving the DAWA replication API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from lxml import etree

from connectors.dar.poller import poll_dar
from connectors.dar.replication import AddressBook, convert_replication, read_replication_file
from connectors.envelope import EnvelopeError, convert_envelope
from connectors.envelope.kombit import SCHEMA_FILE, load_actions, parse_kombit, schema
from triage.cli import main
from triage.models.events import ChildAdded, InvalidEvent, PersonGone, UnknownEvent, parse_event

FIXTURES = Path(__file__).parent / "fixtures"
KOMBIT = FIXTURES / "kombit"
DAWA = FIXTURES / "dawa" / "replication-events-from-spec.json"


def message(n: int) -> bytes:
    return (KOMBIT / f"testbesked0{n}.xml").read_bytes()


async def no_lookup(cpr: str) -> dict[str, Any] | None:
    raise TimeoutError("no register")


def test_the_three_messages_are_valid_against_the_xsd() -> None:
    assert (KOMBIT / "Beskedkuvert.xsd").read_bytes() == SCHEMA_FILE.read_bytes()
    for n in (1, 2, 3):
        assert schema().validate(etree.fromstring(message(n)))


async def test_birth_death_and_birth_become_events_with_the_right_person_and_time() -> None:
    birth = await convert_envelope(parse_kombit(message(1)), no_lookup)
    assert isinstance(parse_event(orjson.dumps(birth)), ChildAdded)
    assert (birth["cpr"], birth["child_cpr"], birth["parents"]) == (
        "2204151234", "2204151234", ["2512484916"])  # urn:oio:cpr-nr:, RelateretObjekt
    assert birth["registered_at"] == "2016-03-13T08:00:00+01:00"  # Registreringstidspunkt
    assert birth["date"] == "2015-04-22" and birth["address"]["postcode"] == "1234"
    death = await convert_envelope(parse_kombit(message(2)), no_lookup)
    assert isinstance(parse_event(orjson.dumps(death)), PersonGone)
    assert (death["type"], death["cpr"], death["date"], death["registered_at"]) == (
        "died", "2204111236", "2016-03-16", "2016-03-16T09:00:00+01:00")
    # message 03 carries no person data: the lookup decides; a failed lookup is raised
    failed = await convert_envelope(parse_kombit(message(3)), no_lookup)
    assert isinstance(parse_event(orjson.dumps(failed)), UnknownEvent)
    assert failed["type"] == "cpr_event_UNKNOWN" and "lookup failed" in failed[
        "unclassified_reason"]
    assert failed["registered_at"] == "2016-08-13T08:00:00+02:00"  # summer time

    async def register(cpr: str) -> dict[str, Any]:
        return {"cpr": cpr, "status": "01", "birth_date": "2015-04-22",
                "address": {"kommunekode": "0851", "vejkode": "8512", "husnummer": "002",
                            "postnummer": "9000"}}

    looked_up = await convert_envelope(parse_kombit(message(3)), register)
    assert looked_up["type"] == "child_added" and looked_up["address"]["municipality_code"] \
        == "0851"
    assert looked_up["event_id"] != birth["event_id"]  # 01 and 03 share their BeskedId


def test_a_malformed_or_invalid_copy_gets_a_clear_error() -> None:
    broken = message(2).replace(b"</ns2:Beskedkuvert>", b"")
    with pytest.raises(EnvelopeError, match="not well-formed XML"):
        parse_kombit(broken)
    invalid = message(2).replace(b"<ns2:BeskedVersion>1.0</ns2:BeskedVersion>", b"")
    with pytest.raises(EnvelopeError, match=r"not valid against Beskedkuvert.xsd: line \d+"):
        parse_kombit(invalid)
    not_a_pnr = message(2).replace(b"urn:oio:cpr-nr:2204111236", b"urn:oio:cpr-nr:2204111")
    with pytest.raises(EnvelopeError) as err:
        parse_kombit(not_a_pnr)
    assert "2204111" not in str(err.value)


async def test_a_municipality_action_table_and_unknown_actions(tmp_path: Path) -> None:
    move = message(2).replace(b"298aa424-0a16-4a5a-956c-2bdab17fd11f",
                              b"0b0b0b0b-1111-4222-8333-444455556666")
    unknown = await convert_envelope(parse_kombit(move), no_lookup)
    assert unknown["type"] == "cpr_event_UNKNOWN"
    assert unknown["action"] == "0b0b0b0b-1111-4222-8333-444455556666"
    table = tmp_path / "actions.csv"
    table.write_text("uuid;event;name\n0b0b0b0b-1111-4222-8333-444455556666;A13;Navneændring\n")
    named = await convert_envelope(parse_kombit(move, actions=load_actions(table)), no_lookup)
    assert named["type"] == "name_changed" and named["code"] == "A13"


def test_envelope_repr_masks_the_cpr_number() -> None:
    env = parse_kombit(message(1))
    assert "2204151234" not in repr(env) and "2512484916" not in repr(env)
    assert "220415-****" in repr(env)


def test_ingest_envelope_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "events.jsonl"
    assert main(["ingest", "envelope", str(KOMBIT), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "records: 3" in err and "errors: 0" in err and "2204151234" not in err
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [e["type"] for e in events] == ["child_added", "died", "cpr_event_UNKNOWN"]
    assert out.stat().st_mode & 0o777 == 0o600
    persons = tmp_path / "persons.jsonl"
    persons.write_text(json.dumps({"cpr": "2204151234", "status": "01",
                                   "birth_date": "2015-04-22", "parents": ["2512484916"],
                                   "address": {"kommunekode": "0851", "vejkode": "8512",
                                               "husnummer": "2", "postnummer": "9000"}}) + "\n")
    assert main(["ingest", "envelope", str(KOMBIT), "--out", str(out), "--persons",
                 str(persons)]) == 0
    capsys.readouterr()
    types = [orjson.loads(line)["type"] for line in out.read_bytes().splitlines()]
    assert types == ["child_added", "died", "child_added"]
    bad = tmp_path / "bad.xml"
    bad.write_bytes(message(2)[:300])
    assert main(["ingest", "envelope", str(bad), "--out", str(out)]) == 1
    assert "error file bad.xml: not well-formed XML" in capsys.readouterr().err


# --- DAWA -------------------------------------------------------------------------------------

HOUSES = [  # the husnumre the sample's units refer to, as an udtræk would give them
    {"id": "0dd9a7db-c962-4952-b501-4820dadfc4a1", "status": 1, "kommunekode": "0751",
     "vejkode": "1234", "husnr": "5", "postnr": "8000"},
    {"id": "11111111-c962-4952-b501-4820dadfc4a1", "status": 1, "kommunekode": "0751",
     "vejkode": "5678", "husnr": "12", "postnr": "8200"},
]


def seeded() -> AddressBook:
    book = AddressBook()
    seed = [{"entitet": "adgangsadresse", "operation": "insert", "data": h,
             "tidspunkt": "2017-01-01T00:00:00Z"} for h in HOUSES]
    assert list(convert_replication(seed, book)) == []
    return book


def test_the_dawa_sample_without_its_houses_reports_each_unit_it_cannot_join() -> None:
    book = AddressBook()
    events = list(convert_replication(read_replication_file(DAWA.read_bytes()), book))
    assert [(e["type"], e["address_id"][:8]) for e in events] == [
        ("municipality_changed", "038edf0e"), ("address_retired", "038edf0e")]
    assert [p.split(":")[0] for p in book.problems] == [
        "txid None sekvensnummer 1", "txid None sekvensnummer 2"]
    assert all("adgangsadresse" in p and "is not known" in p for p in book.problems)


def test_units_join_their_husnummer_and_move_with_it() -> None:
    book = seeded()
    events = list(convert_replication(read_replication_file(DAWA.read_bytes()), book))
    unit = [e for e in events if e["address_id"].startswith("df870b7b")]
    moved, retired = unit
    assert moved["type"] == "postcode_changed"  # the most significant of its changes
    assert moved["before"]["road_code"] == "1234" and moved["before"]["floor"] == "st"
    # the unit moved to another husnummer: it takes that house's codes, not the old ones
    assert (moved["after"]["road_code"], moved["after"]["house_number"],
            moved["after"]["postcode"], moved["after"]["floor"]) == ("5678", "12", "8200", "1")
    assert retired["type"] == "address_retired" and retired["after"] is None
    assert book.problems == []
    for event in events:
        assert not isinstance(parse_event(orjson.dumps(event)), InvalidEvent)


def test_a_husnummer_change_reaches_each_unit_and_entities_keep_their_own_positions() -> None:
    book = seeded()
    units = [{"entitet": "adresse", "txid": 5, "sekvensnummer": i, "operation": "insert",
              "tidspunkt": "2017-02-01T00:00:00Z",
              "data": {"id": f"aaaaaaaa-0000-4000-8000-00000000000{i}", "etage": str(i),
                       "dør": "tv", "adgangsadresseid": HOUSES[0]["id"], "status": 1}}
             for i in (1, 2)]
    renumber = {"entitet": "adgangsadresse", "txid": 6, "sekvensnummer": 900,
                "operation": "update", "tidspunkt": "2017-02-02T00:00:00Z",
                "data": {**HOUSES[0], "husnr": "5A"}}
    unit_update = {"entitet": "adresse", "txid": 7, "sekvensnummer": 3, "operation": "update",
                   "tidspunkt": "2017-02-03T00:00:00Z",
                   "data": {**units[0]["data"], "dør": "th"}}
    # fetched entity by entity: all house events first, then all unit events
    from connectors.dar.replication import ordered

    events = list(convert_replication(ordered([renumber, *units, unit_update]), book))
    assert [(e["type"], e["address_id"][-1]) for e in events
            if e["address_id"].startswith("aaaa")] == [
        ("address_renumbered", "1"), ("address_renumbered", "2"), ("address_renumbered", "1")]
    assert events[-1]["after"]["door"] == "th" and events[-1]["after"]["house_number"] == "5A"
    assert book.replayed == 0  # unit sequence numbers below the house's are not "replayed"


def test_ingest_dar_replication_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "dar.jsonl"
    assert main(["ingest", "dar-replication", str(DAWA), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "records: 15" in err and "errors: 2" in err and "sekvensnummer 1" in err
    book = tmp_path / "book.json"
    book.write_text(json.dumps(seeded().snapshot()))
    assert main(["ingest", "dar-replication", str(DAWA), "--out", str(out), "--book",
                 str(book)]) == 0
    assert "errors: 0" in capsys.readouterr().err
    assert book.stat().st_mode & 0o777 == 0o600


class DawaService:
    """A DAWA-compatible replication API over the sample: txid = the event's sequence number."""

    def __init__(self) -> None:
        doc = json.loads(DAWA.read_text())
        self.events = {entity: [{**e, "txid": e["sekvensnummer"]} for e in events]
                       for entity, events in doc.items()}
        self.latest = 0
        self.requests: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/replikering/senestetransaktion", self.latest_tx)
        app.router.add_get("/replikering/udtraek", self.extract)
        app.router.add_get("/replikering/haendelser", self.changes)
        return app

    async def latest_tx(self, request: web.Request) -> web.Response:
        return web.json_response({"txid": self.latest, "tidspunkt": "2017-02-06T10:59:54Z"})

    async def extract(self, request: web.Request) -> web.Response:
        entity = request.query["entitet"]
        rows = HOUSES if entity == "adgangsadresse" else []
        return web.Response(body=b"\n".join(orjson.dumps(r) for r in rows),
                            content_type="application/x-ndjson")

    async def changes(self, request: web.Request) -> web.Response:
        entity = request.query["entitet"]
        self.requests.append(entity)
        low, high = int(request.query["txidfra"]), int(request.query["txidtil"])
        return web.json_response([e for e in self.events.get(entity, [])
                                  if low <= e["txid"] <= high])


async def test_poll_dar_against_a_local_dawa_compatible_service(tmp_path: Path) -> None:
    service = DawaService()
    runner = web.AppRunner(service.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    out, state = tmp_path / "dar.jsonl", tmp_path / "state.json"
    try:
        first = await poll_dar(base, out=out, state_path=state, rounds=1, interval=0)
        assert (first.rounds, first.events) == (1, 0)  # seeded from the udtræk
        service.latest = 15
        second = await poll_dar(base, out=out, state_path=state, rounds=1, interval=0)
        assert second.problems == [] and second.failures == 0
        events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        assert {e["address_id"][:8] for e in events} >= {"df870b7b", "038edf0e"}
        assert service.requests == ["vejstykke", "adgangsadresse", "adresse"]  # per entity
        again = await poll_dar(base, out=out, state_path=state, rounds=1, interval=0)
        assert again.events == 0  # nothing twice after a restart
        assert state.stat().st_mode & 0o777 == 0o600
        await runner.cleanup()
        down = await poll_dar(base, out=out, state_path=state, rounds=1, interval=0)
        assert (down.failures, down.events) == (1, 0)
    finally:
        await asyncio.shield(runner.cleanup())
