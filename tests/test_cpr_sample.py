"""The CPR office's own test extract through the connector, record by record where the data says
it, in every form the registry delivers it (LF trimmed, CRLF + 0x1A, fixed-length over FTP), plus
a truncated copy refused, and a persons snapshot built from it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.cpr.events import CODES, Skipped, to_canonical
from connectors.cpr.extract import ExtractError, ExtractRecord, read_extract
from connectors.cpr.layout import LAYOUTS
from connectors.cpr.person import derived_address_id
from connectors.cpr.snapshot import persons_from_extract
from connectors.ids import IdKey
from connectors.output import IngestSummary
from triage.cli import main
from triage.models.events import InvalidEvent, parse_event

SAMPLE = Path(__file__).parent / "fixtures" / "cpr" / "U12170-P opgavenr 110901 ADRNVN FE"
KEY = IdKey(b"test-key")

UNMAPPED_IN_SAMPLE = {"A05", "A27", "A29", "A31", "A32", "A36", "A37", "A38", "A51", "P32",
                      "P35", "P36", "P40", "P51", "P55", "P58"}
"""The sample's codes DOMAIN.md's table leaves unmapped (docs/connectors.md lists them)."""


def convert(path: Path) -> tuple[list[dict[str, Any]], list[ExtractError], list[Skipped]]:
    events: list[dict[str, Any]] = []
    errors: list[ExtractError] = []
    skipped: list[Skipped] = []
    for item in to_canonical(read_extract(path), key=KEY):
        if isinstance(item, ExtractError):
            errors.append(item)
        elif isinstance(item, Skipped):
            skipped.append(item)
        else:
            assert not isinstance(parse_event(orjson.dumps(item)), InvalidEvent), item["type"]
            events.append(item)
    return events, errors, skipped


@pytest.fixture(scope="module")
def sample() -> tuple[list[dict[str, Any]], list[ExtractError], list[Skipped]]:
    return convert(SAMPLE)


def of(events: list[dict[str, Any]], cpr: str, code: str | None = None,
       marker: str | None = None) -> list[dict[str, Any]]:
    return [e for e in events if (e.get("registered_on") or e["cpr"]) == cpr
            and (code is None or e["code"] == code)
            and (marker is None or e["derived_marker"] == marker)]


def padded_lines() -> list[bytes]:
    """The sample's records as delivered originally: every record at its full length."""
    lines = SAMPLE.read_bytes().split(b"\n")
    return [line.ljust(LAYOUTS[line[:3].decode()].length) for line in lines if line]


def test_every_record_reads_and_the_999_count_holds(sample) -> None:
    events, errors, skipped = sample
    assert errors == []
    records = [r for r in read_extract(SAMPLE) if isinstance(r, ExtractRecord)]
    assert len(records) == 1100 and int(records[-1].get("TAELLER")) == 1098
    assert len(events) + len(skipped) == 116  # one outcome per 099 record


def test_the_ftp_and_crlf_forms_give_identical_events(sample, tmp_path: Path) -> None:
    ftp = tmp_path / "ftp"
    ftp.write_bytes(b"".join(padded_lines()))  # fixed-length records, no terminators
    dos = tmp_path / "crlf"
    dos.write_bytes(b"\r\n".join(padded_lines()) + b"\r\n\x1a")
    assert b"\n" not in ftp.read_bytes()
    for form in (ftp, dos):
        events, errors, skipped = convert(form)
        assert errors == []
        assert events == sample[0]
        # the same records skipped; a file without terminators numbers records, not lines
        assert [(s.line_number, s.code, s.reason) for s in skipped] == [
            (s.line_number, s.code, s.reason) for s in sample[2]]


def test_a_truncated_copy_is_refused_with_exit_1(tmp_path: Path, capsys) -> None:
    lines = SAMPLE.read_bytes().split(b"\n")
    one_deleted = tmp_path / "one-record-deleted"
    one_deleted.write_bytes(b"\n".join(lines[:500] + lines[501:]))
    cut = tmp_path / "cut-short"
    cut.write_bytes(b"\n".join(lines[:700]))
    for path, message in ((one_deleted, "end record 999 counts 1098 records, the file holds "
                                         "1097"),
                          (cut, "no end record 999: the file is truncated")):
        assert main(["ingest", "cpr-extract", str(path), "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert message in err
        assert (tmp_path / "o").stat().st_mode & 0o777 == 0o600
    # --max-errors lets a known-bad copy through, still reporting the error
    assert main(["ingest", "cpr-extract", str(cut), "--out", str(tmp_path / "o"),
                 "--max-errors", "1"]) == 0
    assert "no end record 999" in capsys.readouterr().err


def test_the_cli_prints_the_summary_to_stderr_without_a_cpr_number(tmp_path: Path,
                                                                    capsys) -> None:
    out = tmp_path / "events.jsonl"
    assert main(["ingest", "cpr-extract", str(SAMPLE), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "records: 1100" in captured.err and "events: 114" in captured.err
    assert "skipped: 2" in captured.err and "errors: 0" in captured.err
    assert "TRIAGE_ID_KEY is not set" in captured.err  # the development key warns
    numbers = {r.pnr for r in read_extract(SAMPLE) if isinstance(r, ExtractRecord) and r.pnr}
    assert not any(n in captured.err for n in numbers)
    assert out.stat().st_mode & 0o777 == 0o600
    assert len(out.read_bytes().splitlines()) == 114
    # --allow-trimmed is kept as a no-op alias
    assert main(["ingest", "cpr-extract", str(SAMPLE), "--out", str(out), "--allow-trimmed",
                 "--id-key", "k"]) == 0
    assert "TRIAGE_ID_KEY is not set" not in capsys.readouterr().err


def test_counts_per_canonical_type(sample) -> None:
    events = sample[0]
    counts = Counter(e["type"] for e in events)
    unclassified = {t: n for t, n in counts.items() if t.startswith("cpr_event_")}
    classified = {t: n for t, n in counts.items() if not t.startswith("cpr_event_")}
    assert classified == {
        "address_changed": 18, "address_protection_changed": 7, "child_added": 5,
        "civil_status_changed": 13, "cpr_number_annulled": 2, "cpr_number_changed": 10,
        "death_annulled": 2, "died": 3, "disappeared": 1, "emigrated": 1,
        "guardianship_changed": 4, "master_data_changed": 5, "name_changed": 6,
        "registry_notice": 4}
    assert sum(unclassified.values()) == 33


def test_only_unmapped_codes_and_three_unlinkable_records_stay_unclassified(sample) -> None:
    unclassified = [e for e in sample[0] if e["type"].startswith("cpr_event_")]
    for event in unclassified:
        assert event["type"] == f"cpr_event_{event['code']}"  # upper-case, as registered
    unmapped = [e for e in unclassified if e["code"] in UNMAPPED_IN_SAMPLE]
    assert {e["code"] for e in unmapped} == UNMAPPED_IN_SAMPLE
    assert not UNMAPPED_IN_SAMPLE & set(CODES)
    assert len(unmapped) == 30
    mapped = sorted((e["code"], e["derived_marker"] or "", e["unclassified_reason"][:40])
                    for e in unclassified if e["code"] not in UNMAPPED_IN_SAMPLE)
    assert mapped == [
        ("A10", "", "A10 maps by the person's new status (80 "),
        ("P43", "", "the extract does not link an old and a n"),
        ("P43", "PT", "the extract does not link an old and a n"),
    ]


def test_the_emigrated_and_the_disappeared_person(sample) -> None:
    events = sample[0]
    [emigrated] = of(events, "0709614258", "A06")
    assert (emigrated["type"], emigrated["date"], emigrated["country_code"]) == (
        "emigrated", "2001-01-01", "5180")
    assert emigrated["registered_at"] == "2001-11-07T09:03:00+01:00"
    [disappeared] = of(events, "1312814362", "A02")
    assert (disappeared["type"], disappeared["date"]) == ("disappeared", "1997-09-09")


def test_annulled_deaths_never_become_died(sample) -> None:
    events, _, skipped = sample
    for alive in ("1303814074", "2906980013"):
        assert [e["type"] for e in of(events, alive) if e["code"] in ("A21", "A25")] == [
            "death_annulled"]
        assert not [e for e in of(events, alive) if e["type"] == "died"]
    assert [s.code for s in skipped] == ["A21", "A21"]
    died = sorted((e["cpr"], e["date"], e["derived_marker"]) for e in events
                  if e["type"] == "died")
    assert died == [("0101980014", "2000-06-30", None), ("0707614226", "2000-06-30", "ÆG"),
                    ("0708614327", "2000-06-30", None)]
    # an A25 that annuls a marriage restores the civil status instead
    [restored] = of(events, "0711614354", "A25")
    assert (restored["type"], restored["civil_status"]) == ("civil_status_changed", "U")


def test_p03_renumberings_follow_old_to_new(sample) -> None:
    events = sample[0]
    p03 = sorted(((e.get("registered_on") or e["cpr"]), e["derived_marker"], e["cpr"],
                  e["new_cpr"]) for e in events if e["code"] == "P03")
    assert p03 == [
        ("0307610078", "PN", "0708614246", "0307610078"),
        ("0708614246", None, "0708614246", "0307610078"),
        ("0709614347", "ÆG", "0708614246", "0307610078"),
        ("0709614398", None, "0709614398", "0909610036"),
        ("0909610036", "PN", "0709614398", "0909610036"),
        ("1306814172", "BØ", "0708614246", "0307610078"),
        ("1306814180", "BØ", "0708614246", "0307610078"),
    ]
    assert all(e["type"] == "cpr_number_changed" for e in events if e["code"] == "P03")
    [p42] = of(events, "0709610015", "P42")
    assert (p42["cpr"], p42["new_cpr"]) == ("0108610069", "0709610015")


def test_a35_adoption_copies_reach_new_and_former_parents(sample) -> None:
    events = sample[0]
    adoption = [e for e in events if e["code"] == "A35"]
    assert sorted((e["cpr"], e["derived_marker"]) for e in adoption) == [
        ("0702614155", "NF"), ("0703614167", "TF"), ("0709614568", "NM"),
        ("0709614762", "TM"), ("0909970016", None)]
    for event in adoption:
        assert event["type"] == "child_added" and event["child_cpr"] == "0909970016"
        # the child's 015 parents first, then the former parents, who count as parents too
        assert event["parents"][:2] == ["0709614568", "0702614155"]
        assert set(event["parents"]) == {"0709614568", "0702614155", "0703614167",
                                         "0709614762"}
        assert event["address"]["postcode"] == "9000"
        assert event["date"] == "2001-02-20"


def test_address_changes_carry_postcodes_and_where_the_person_came_from(sample) -> None:
    moves = [e for e in sample[0] if e["type"] == "address_changed"]
    assert len(moves) == 18
    assert all(e["to"]["postcode"] for e in moves)  # joined from 003 records at the file's end
    [aksel] = of(sample[0], "0701614011", "A01")
    assert aksel["to"]["municipality_code"] == "0851" and aksel["move_date"] == "2001-01-01"
    assert aksel["from"]["municipality_code"] == "0333"  # record 023: arriving from elsewhere
    [postal] = of(sample[0], "0904414131", "P10")
    assert postal["from"] == postal["to"] and postal["to"]["postcode"] == "9210"
    [arrival] = of(sample[0], "0708610089", "P31")
    assert arrival["from"] is None
    family = [of(sample[0], c, "A01")[0] for c in ("2802980011", "0709614754")]
    assert {e["to"]["address_id"] for e in family} == {
        derived_address_id("0851", "8513", "048", "", "")}


def test_master_data_notices_and_protection(sample) -> None:
    events = sample[0]
    whats = sorted((e["code"], e["what"]) for e in events
                   if e["type"] in ("master_data_changed", "registry_notice"))
    assert whats == [("A07", "supplementary_address"), ("A08", "foreign_or_election_data"),
                     ("A09", "foreign_address"), ("A34", "church"), ("A45", "subscription"),
                     ("A47", "contact_address"), ("A74", "record_request"),
                     ("A74", "record_request"), ("K74", "record_request")]
    [notice] = [e for e in events if e["code"] == "K74"]
    assert notice["registered_at"] == "2001-11-19T00:00:00+01:00"  # blank TIMESTAMPU
    [protected] = of(events, "0701614011", "A33")
    assert protected["protected"] is True  # 004 type 0001 from 2001-11-02
    [other] = of(events, "3112420028", "A33")
    assert other["protected"] is False  # types 0002-0004 only: not name and address


def test_event_ids_are_keyed_and_stable(sample) -> None:
    again, _, _ = convert(SAMPLE)
    assert [e["event_id"] for e in again] == [e["event_id"] for e in sample[0]]
    assert len({e["event_id"] for e in sample[0]}) == 114
    other_key = [e["event_id"] for e in to_canonical(read_extract(SAMPLE), key=IdKey(b"x"))
                 if isinstance(e, dict)]
    assert not set(other_key) & {e["event_id"] for e in sample[0]}


def test_reprs_never_show_a_cpr_number() -> None:
    record = next(r for r in read_extract(SAMPLE) if isinstance(r, ExtractRecord)
                  and r.pnr)
    assert record.pnr is not None and record.pnr not in repr(record)
    assert "secret" not in repr(IdKey(b"secret"))


def test_persons_snapshot_from_the_extract(tmp_path: Path, capsys) -> None:
    summary = IngestSummary()
    persons = list(persons_from_extract(SAMPLE, summary))
    assert summary.errors == [] and len(persons) == 76 and len(summary.skipped) == 4
    by_cpr = {p["cpr"]: p for p in persons}
    assert by_cpr["0709614754"]["address"]["postcode"] == "9000"
    assert by_cpr["0709614258"]["address"] is None and by_cpr["0709614258"]["status"] == "80"
    assert by_cpr["0706614184"]["spouse_cpr"] == "0709614215"
    assert "0708614246" not in by_cpr  # status 60: goes on as 0307610078
    out = tmp_path / "persons.jsonl"
    assert main(["snapshot", "cpr-extract", str(SAMPLE), "--out", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    from triage.snapshot import load_reference

    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"case_id": "K1", "benefit": "kontanthjaelp",
                                 "municipality_code": "0851", "unit": "jobcenter",
                                 "members": [{"cpr": "0709614754", "role": "applicant"}]}))
    index = load_reference(out, cases)  # the snapshot is usable as the service's register
    assert index.register.get("0709614754") is not None
