"""The CPR change-extract connector: fixed-width parsing, canonical events, JSONL and Kafka.

Every record is built from the documented layout (connectors.cpr.layout) by :func:`build`, which
places each value at its field's position — no hand-typed fixed-width strings.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.cpr.events import Skipped, derived_address_id, to_canonical
from connectors.cpr.extract import ExtractError, ExtractRecord, parse_extract, read_extract
from connectors.cpr.ingest import ingest_cpr_extract
from connectors.cpr.layout import LAYOUTS, check_layouts
from triage import cprnumber
from triage.models.events import InvalidEvent, UnknownEvent, parse_event

FIXTURES = Path(__file__).parent / "fixtures" / "cpr"

# Synthetic numbers (valid dates). NO_MOD11 is a 1 January number without modulus 11.
MOVER = "1502851235"
WIFE = "0304901122"
HUSBAND = "1107881339"
NO_MOD11 = "0101001001"
DEAD = "2206401001"
EMIGRANT = "0908921002"
CHILD = "0105151003"
MOTHER = WIFE


def build(code: str, **values: str) -> str:
    """One record of type ``code`` with ``values`` (field name → value) at their positions.

    Field names with a hyphen are passed with "_" ("START_DT_PERSON" → "START_DT-PERSON").
    Numeric fields are right-aligned and zero-padded, text fields left-aligned and blank-padded.
    """
    layout = LAYOUTS[code]
    line = [" "] * layout.length
    given = {name.replace("_", "-"): v for name, v in values.items()}
    given |= {name: v for name, v in values.items()}
    for spec in layout.fields:
        value = code if spec.name == "RECORDTYPE" else given.get(spec.name, "")
        if not value:
            continue
        assert len(value) <= spec.length, (code, spec.name)
        text = value.rjust(spec.length, "0") if spec.numeric else value.ljust(spec.length)
        line[spec.start - 1 : spec.end] = list(text)
    return "".join(line)


def start(prod: str = "20240315", previous: str = "20240314") -> str:
    return build("000", SORTFELT_10="0000000000", OPGAVENR="123456", PRODDTO=prod,
                 PRODDTOFORRIG=previous)


def end(count: int = 0) -> str:
    return build("999", SORTFELT_10="9999999999", TAELLER=str(count).rjust(8, "0"))


def person(pnr: str, status: str = "01", status_at: str = "") -> str:
    return build("001", PNR=pnr, PNRGAELD=pnr, STATUS=status, STATUSHAENSTART=status_at,
                 KOEN="M")


def address(pnr: str, komkod: str = "0561", vejkod: str = "1234", husnr: str = "012",
            etage: str = "02", door: str = "tv", moved: str = "202403141200") -> str:
    return build("002", PNR=pnr, KOMKOD=komkod, VEJKOD=vejkod, HUSNR=husnr, ETAGE=etage,
                 SIDEDOER=door, TILFLYDTO=moved, FRAFLYKOMKOD="0101")


def event(pnr: str, code: str, stamp: str = "202403141530", marker: str = "") -> str:
    return build("099", PNR=pnr, TIMESTAMPU=stamp, HAENDELSE=code, AFLEDTMRK=marker)


def counted(lines: list[str]) -> list[str]:
    """``lines`` with the end record's count set to the records between 000 and 999."""
    if lines and lines[-1].startswith("999"):
        return [*lines[:-1], end(len(lines) - 2)]
    return lines


def canonical(lines: list[str]) -> tuple[list[dict[str, Any]], list[ExtractError]]:
    events: list[dict[str, Any]] = []
    errors: list[ExtractError] = []
    for item in to_canonical(parse_extract(counted(lines))):
        if isinstance(item, Skipped):
            continue
        (errors if isinstance(item, ExtractError) else events).append(item)  # type: ignore[arg-type]
    for ev in events:  # every event must be valid for the service
        parsed = parse_event(orjson.dumps(ev))
        assert not isinstance(parsed, InvalidEvent), (ev["type"], parsed.error)
    return events, errors


def test_layouts_are_consistent() -> None:
    check_layouts()
    assert LAYOUTS["099"].length == 45 and LAYOUTS["002"].length == 306
    assert (LAYOUTS["002"].field("TILFLYDTO").start, LAYOUTS["002"].field("TILFLYDTO").length) \
        == (70, 12)
    assert LAYOUTS["099"].field("HAENDELSE").start == 26
    assert LAYOUTS["001"].field("STATUS").start == 24


def test_move_a01_becomes_address_changed() -> None:
    events, errors = canonical([start(), person(MOVER), address(MOVER), event(MOVER, "A01"),
                                end()])
    assert errors == []
    [ev] = events
    assert ev["type"] == "address_changed" and ev["cpr"] == MOVER and ev["code"] == "A01"
    assert ev["from"] is None and ev["move_date"] == "2024-03-14"
    assert ev["derived_marker"] is None
    assert ev["to"] == {
        "address_id": derived_address_id("0561", "1234", "012", "02", "tv"),
        "municipality_code": "0561", "road_code": "1234", "house_number": "12",
        "floor": "2", "door": "tv", "postcode": "",
    }
    assert ev["registered_at"] == "2024-03-14T15:30:00+01:00"


def test_postcode_taken_from_clear_address_record_and_summer_offset() -> None:
    clear = build("003", PNR=MOVER, POSTNR="6700", KOMKOD="0561", VEJKOD="1234", HUSNR="012")
    events, _ = canonical([start(), person(MOVER), address(MOVER), clear,
                           event(MOVER, "A01", stamp="202407011000"), end()])
    assert events[0]["to"]["postcode"] == "6700"
    assert events[0]["registered_at"] == "2024-07-01T10:00:00+02:00"


def test_danish_letters_round_trip_through_latin1(tmp_path: Path) -> None:
    name = build("008", PNR=MOVER, FORNVN="Søren Ærø", EFTERNVN="Å Bødkersgård",
                 NVNHAENSTART="202403141200")
    path = tmp_path / "extract.txt"
    lines = counted([start(), person(MOVER), name, event(MOVER, "A13"), end()])
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    assert len(path.read_bytes().split(b"\r\n")[2]) == LAYOUTS["008"].length  # 1 byte/letter
    records = list(read_extract(path))
    assert all(isinstance(r, ExtractRecord) for r in records)
    rec = records[2]
    assert isinstance(rec, ExtractRecord)
    assert rec.get("FORNVN") == "Søren Ærø" and rec.get("EFTERNVN") == "Å Bødkersgård"
    [ev] = [e for e in to_canonical(records) if not isinstance(e, ExtractError)]
    assert isinstance(ev, dict) and ev["type"] == "name_changed"


def test_marriage_with_derived_marker_on_spouse() -> None:
    lines = [
        start(),
        person(WIFE),
        build("012", PNR=WIFE, CIVST="G", AEGTEPNR=HUSBAND, HAENSTART_CIVILSTAND="202403121100"),
        event(WIFE, "A19"),
        person(HUSBAND),
        build("012", PNR=HUSBAND, CIVST="G", AEGTEPNR=WIFE, HAENSTART_CIVILSTAND="202403121100"),
        event(HUSBAND, "A19", marker="ÆG"),
        end(),
    ]
    events, errors = canonical(lines)
    assert errors == []
    wife, husband = events
    assert wife["type"] == husband["type"] == "civil_status_changed"
    assert (wife["cpr"], wife["spouse_cpr"], wife["derived_marker"]) == (WIFE, HUSBAND, None)
    assert (husband["cpr"], husband["spouse_cpr"], husband["derived_marker"]) \
        == (HUSBAND, WIFE, "ÆG")
    assert wife["civil_status"] == "G" and wife["date"] == "2024-03-12"
    assert wife["event_id"] != husband["event_id"]


def test_cpr_number_without_modulus11_is_accepted() -> None:
    assert cprnumber.validate(NO_MOD11) == NO_MOD11
    assert cprnumber.has_modulus11(NO_MOD11) is False
    events, errors = canonical([start(), person(NO_MOD11), address(NO_MOD11),
                                event(NO_MOD11, "A01"), end()])
    assert errors == [] and events[0]["cpr"] == NO_MOD11


def test_corrupt_lines_are_reported_and_the_rest_is_parsed() -> None:
    good = address(MOVER)
    lines = [
        start(),
        person(MOVER),
        good + "JUNK",                                            # wrong length (line 3)
        good[:13] + "05X1" + good[17:],                           # KOMKOD not numeric (line 4)
        build("099", PNR="3213991234", TIMESTAMPU="202403141530", HAENDELSE="A01"),  # bad date
        "ZZZ" + good[3:],                                         # unknown record type
        address(MOVER),
        event(MOVER, "A01"),
        end(),
    ]
    items = list(to_canonical(parse_extract(counted(lines))))
    errors = [i for i in items if isinstance(i, ExtractError)]
    assert [e.line_number for e in errors] == [3, 4, 5, 6]
    assert "length 310, expected 306" in errors[0].message
    assert "KOMKOD" in errors[1].message and "not numeric" in errors[1].message
    assert "321399-****" in errors[2].message
    for err in errors:
        assert MOVER not in err.message and "3213991234" not in err.message
    moves = [i for i in items if isinstance(i, dict)]
    assert [m["type"] for m in moves] == ["address_changed"]


def test_truncated_file_without_end_record_is_reported() -> None:
    items = list(parse_extract([start(), person(MOVER)]))
    assert isinstance(items[-1], ExtractError) and items[-1].line_number == 3


def test_unknown_event_code_is_kept_as_unclassified_event() -> None:
    events, errors = canonical([start(), person(MOVER), event(MOVER, "A27"), end()])
    assert errors == []
    [ev] = events
    assert ev["type"] == "cpr_event_A27" and ev["code"] == "A27" and ev["cpr"] == MOVER
    assert "not in DOMAIN.md" in ev["unclassified_reason"]
    assert isinstance(parse_event(orjson.dumps(ev)), UnknownEvent)


def test_death_and_emigration_and_disappearance() -> None:
    lines = [
        start(),
        person(DEAD, status="90", status_at="202403130800"),
        event(DEAD, "A21"),
        person(EMIGRANT, status="80", status_at="202403140000"),
        build("005", PNR=EMIGRANT, UDR_LANDEKOD="5110", UDRDTO="202403100000"),
        event(EMIGRANT, "A06"),
        person(CHILD, status="70", status_at="202403140000"),
        build("007", PNR=CHILD, FORSVINDDTO="202403010000"),
        event(CHILD, "A02"),
        event(CHILD, "A09"),                      # a correction without a Danish address
        end(),
    ]
    events, errors = canonical(lines)
    assert errors == []
    died, emigrated, disappeared, other = events
    assert (died["type"], died["cpr"], died["date"]) == ("died", DEAD, "2024-03-13")
    assert (emigrated["type"], emigrated["country_code"], emigrated["date"]) \
        == ("emigrated", "5110", "2024-03-10")
    assert emigrated["code"] == "A06"
    assert (disappeared["type"], disappeared["date"]) == ("disappeared", "2024-03-01")
    assert other["type"] == "cpr_event_A09"
    assert other["unclassified_reason"] == "no current address (record 002)"


def test_old_status_does_not_repeat_emigration() -> None:
    # Emigrated long before the previous extract: a new event is not a new emigration.
    lines = [start(), person(EMIGRANT, status="80", status_at="201001010000"),
             build("005", PNR=EMIGRANT, UDR_LANDEKOD="5110", UDRDTO="201001010000"),
             event(EMIGRANT, "A13"), event(EMIGRANT, "A99"), end()]
    events, _ = canonical(lines)
    assert [e["type"] for e in events] == ["name_changed", "cpr_event_A99"]


def test_adoption_primary_and_parent_copy() -> None:
    lines = [
        start(),
        person(MOTHER),
        build("014", PNR=MOTHER, BARNPNR=CHILD),
        event(MOTHER, "A35", marker="MO"),
        person(CHILD),
        address(CHILD),
        build("015", PNR=CHILD, PNRMOR=MOTHER),
        event(CHILD, "A35"),
        end(),
    ]
    events, errors = canonical(lines)
    assert errors == []
    copy, primary = events
    assert (primary["type"], primary["cpr"], primary["child_cpr"], primary["parents"]) \
        == ("child_added", CHILD, CHILD, [MOTHER])
    assert (copy["type"], copy["cpr"], copy["derived_marker"], copy["child_cpr"]) \
        == ("child_added", MOTHER, "MO", CHILD)
    assert copy["address"] == primary["address"]


def test_parent_copy_without_the_child_stays_unclassified() -> None:
    lines = [start(), person(MOTHER), build("014", PNR=MOTHER, BARNPNR=CHILD),
             event(MOTHER, "A35", marker="MO"), end()]
    events, _ = canonical(lines)
    assert [e["type"] for e in events] == ["cpr_event_A35"]
    assert events[0]["derived_marker"] == "MO"


def test_event_ids_are_deterministic() -> None:
    lines = [start(), person(MOVER), address(MOVER), event(MOVER, "A01"),
             event(MOVER, "A13", stamp="202403141531"), end()]
    first, _ = canonical(lines)
    again, _ = canonical(list(lines))
    assert [e["event_id"] for e in first] == [e["event_id"] for e in again]
    assert len({e["event_id"] for e in first}) == 2
    # A production date change in the start record does not change the ids.
    other, _ = canonical([start("20240316", "20240315"), *lines[1:]])
    assert [e["event_id"] for e in other] == [e["event_id"] for e in first]


def test_registered_at_falls_back_to_production_date() -> None:
    events, _ = canonical([start(), person(MOVER),
                           build("099", PNR=MOVER, HAENDELSE="A13"), end()])
    assert events[0]["registered_at"] == "2024-03-15T00:00:00+01:00"


def sample_extract() -> list[str]:
    return [
        start(),
        person(MOVER), address(MOVER), event(MOVER, "A01"),
        person(WIFE),
        build("012", PNR=WIFE, CIVST="G", AEGTEPNR=HUSBAND, HAENSTART_CIVILSTAND="202403121100"),
        event(WIFE, "A19"),
        person(NO_MOD11), event(NO_MOD11, "A40"),
        address(MOVER) + "JUNK",                                  # corrupt line 10
        end(9),
    ]


def test_ingest_to_jsonl(tmp_path: Path) -> None:
    src = tmp_path / "D240315.txt"
    src.write_bytes(("\n".join(sample_extract()) + "\n").encode("latin-1"))
    out = tmp_path / "events.jsonl"
    summary = ingest_cpr_extract(src, out=out)
    assert (summary.records, summary.events) == (10, 3)  # line 10 is not a record
    assert [e.split(":")[0] for e in summary.errors] == ["line 10"]
    lines = out.read_bytes().splitlines()
    assert len(lines) == 3
    assert all(not isinstance(parse_event(line), InvalidEvent) for line in lines)
    assert MOVER not in "\n".join(summary.lines())
    # idempotent: the same file gives the same bytes
    again = tmp_path / "again.jsonl"
    ingest_cpr_extract(src, out=again)
    assert again.read_bytes() == out.read_bytes()


def test_committed_fixture_parses() -> None:
    """The committed sample (CRLF, latin-1) is exactly what the layout builder produces."""
    path = FIXTURES / "extract_sample.txt"
    assert path.read_bytes() == ("\r\n".join(sample_extract()) + "\r\n").encode("latin-1")
    items = list(to_canonical(read_extract(path)))
    assert sum(isinstance(i, ExtractError) for i in items) == 1
    assert sum(isinstance(i, dict) for i in items) == 3


@pytest.mark.kafka
def test_ingest_to_kafka(kafka_broker: Any, tmp_path: Path) -> None:
    from aiokafka import AIOKafkaConsumer

    from triage.stream.broker import FAST_CONSUMER_SETTINGS

    kafka_broker.create_topics({"cpr.events": 3})  # exist_ok: the session may have it already
    src = tmp_path / "extract.txt"
    src.write_bytes(("\n".join(sample_extract()) + "\n").encode("latin-1"))
    summary = ingest_cpr_extract(src, bootstrap=kafka_broker.bootstrap)
    assert summary.events == 3 and len(summary.errors) == 1
    expected, _ = canonical(sample_extract())
    wanted = {e["event_id"]: e["cpr"] for e in expected}

    async def consume() -> dict[str, str]:
        consumer = AIOKafkaConsumer(
            "cpr.events", bootstrap_servers=kafka_broker.bootstrap, group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False, **FAST_CONSUMER_SETTINGS)
        await consumer.start()
        seen: dict[str, str] = {}
        try:
            deadline = time.monotonic() + 20
            while (set(wanted) - set(seen) or len(heartbeats) < 3) \
                    and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for msg in messages:
                        if dict(msg.headers or ()).get("triage-kind") == b"heartbeat":
                            heartbeats.append(msg.partition)  # the batch is complete
                            continue
                        body = orjson.loads(msg.value)
                        if body["event_id"] in wanted:
                            assert msg.key is not None
                            seen[body["event_id"]] = msg.key.decode()
        finally:
            await consumer.stop()
        return seen

    heartbeats: list[int] = []
    seen = asyncio.run(consume())
    assert seen == wanted  # every event arrived, keyed by its CPR number
    assert sorted(heartbeats) == [0, 1, 2]  # then the batch's watermark, on every partition
