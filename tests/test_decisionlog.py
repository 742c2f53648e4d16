"""The decision log against SQLite and a real PostgreSQL server (tests/postgres_fixture.py):
idempotent under redelivery, retention by decision time, the explorer, no CPR in clear."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from triage.decisionlog import decision_key, decision_row, open_log, task_row
from triage.decisionlog.store import DecisionLog

CPR = "0101901234"


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log' / 'decisions.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def decision(event_id: str | None, outcome: str = "suppressed", rule: str = "r1", *,
             decided: datetime | None = None, registered: str = "2025-03-01T10:15:00+01:00",
             cases: list[dict[str, Any]] | None = None, **extra: Any) -> bytes:
    decided = decided or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    return orjson.dumps({
        "event_id": event_id, "outcome": outcome, "score": 0.0, "rule": rule,
        "reason": "Ingen betydning.", "cases": cases or [], "correlation_id": None,
        "ruleset": "default@abc", "decided_at": decided.isoformat(),
        "event_source": "cpr", "event_type": "address_changed", "registered_at": registered,
        **extra})


def verdict(case_id: str, outcome: str = "raised", rule: str = "r1", task_id: str | None = None,
            unit: str = "jobcenter", facts: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"case_id": case_id, "outcome": outcome, "score": 1.0 if outcome == "raised" else 0,
            "rule": rule, "reason": "Modtager flyttet.", "unit": unit, "title": "Flyttet",
            "payment_hold": False, "correlation_id": "hm-1", "task_id": task_id,
            "facts": facts or {"person.role": "applicant"}}


def task(task_id: str, case_id: str, created: datetime | None = None, **facts: Any) -> bytes:
    created = created or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    return orjson.dumps({
        "task_id": task_id, "case_id": case_id, "unit": "jobcenter", "benefit": "kontanthjaelp",
        "title": "Flyttet", "reason": "Modtager flyttet.", "rule": "r1", "score": 1.0,
        "payment_hold": False, "event_ids": ["e1"], "facts": facts, "correlation_id": "hm-1",
        "created_at": created.isoformat()})


def store(url: str, decisions: list[bytes], tasks: list[bytes] = ()) -> int:  # type: ignore[assignment]
    log = open_log(url)
    try:
        return log.write([decision_row(d) for d in decisions], [task_row(t) for t in tasks])
    finally:
        log.close()


def test_a_redelivered_or_repeated_decision_is_stored_once_and_the_first_copy_wins(log_url):
    first = decision("e1", "raised", cases=[verdict("C1", task_id="task-1")])
    repeat = decision("e1", "raised", cases=[verdict("C1", task_id="task-1")],
                      decided=datetime(2026, 1, 5, 12, 5, tzinfo=UTC))  # the worker's repeat
    assert store(log_url, [first, decision("e2")], [task("task-1", "C1")]) == 2
    assert store(log_url, [first, repeat, decision("e2")], [task("task-1", "C1")]) == 0
    log = open_log(log_url)
    try:
        assert log.totals() == {"raised": 1, "suppressed": 1}
        assert log.task_count() == 1
        shown = log.show("e1")
        assert shown is not None
        assert shown["decision"]["decided_at"].startswith("2026-01-05T12:00")  # the first
        assert [v["case_id"] for v in log.case("C1")["decisions"][0]["cases"]] == ["C1"]
        assert len(log.case("C1")["decisions"]) == 1
    finally:
        log.close()


def test_id_less_invalid_lines_are_keyed_by_their_content(log_url):
    bad = decision(None, "invalid", "invalid", error="not JSON: unexpected character",
                   registered=None)
    bad_again = decision(None, "invalid", "invalid", error="not JSON: unexpected character",
                         registered=None, decided=datetime(2026, 1, 6, tzinfo=UTC))
    other = decision(None, "invalid", "invalid", error="source: missing", registered=None)
    assert decision_key(orjson.loads(bad)) == decision_key(orjson.loads(bad_again))
    assert store(log_url, [bad, bad_again, other]) == 2
    log = open_log(log_url)
    try:
        assert log.totals() == {"invalid": 2}
    finally:
        log.close()


def test_retention_removes_only_what_was_decided_before_the_cutoff(log_url):
    now = datetime(2026, 6, 1, tzinfo=UTC)
    old, kept, edge = now - timedelta(days=91), now - timedelta(days=89), now - timedelta(days=90)
    store(log_url, [decision("old", "raised", decided=old, cases=[verdict("C1", task_id="t-old")]),
                    decision("edge", decided=edge),
                    decision("kept", "raised", decided=kept,
                             cases=[verdict("C1", task_id="t-kept")])],
          [task("t-old", "C1", old), task("t-kept", "C1", kept)])
    log = open_log(log_url)
    try:
        removed = log.prune(now - timedelta(days=90))
        assert removed == {"decisions": 1, "verdicts": 1, "tasks": 1}
        assert log.show("old") is None
        assert log.show("edge") is not None  # exactly at the cutoff: not older, kept
        assert log.show("kept") is not None
        case = log.case("C1")
        assert [d["event_id"] for d in case["decisions"]] == ["kept"]
        assert [t["task_id"] for t in case["tasks"]] == ["t-kept"]
        assert log.totals() == {"raised": 1, "suppressed": 1}
    finally:
        log.close()


def test_the_explorer_explains_an_event_and_a_case_with_facts_and_task(log_url):
    store(log_url, [
        decision("e1", "raised", "husstand-splittet", cases=[
            verdict("C1", task_id="task-1", facts={"household.moved_together": False}),
            verdict("C2", "suppressed", "ingen-betydning", unit="borgerservice")]),
        decision("e2", "suppressed", "husstand-flyttet-samlet",
                 decided=datetime(2026, 1, 6, tzinfo=UTC),
                 cases=[verdict("C1", "suppressed", "husstand-flyttet-samlet")])],
          [task("task-1", "C1")])
    log = open_log(log_url)
    try:
        shown = log.show("e1")
        assert shown is not None
        cases = {v["case_id"]: v for v in shown["decision"]["cases"]}
        assert cases["C1"]["facts"] == {"household.moved_together": False}
        assert [t["task_id"] for t in shown["tasks"]] == ["task-1"]
        assert [d["event_id"] for d in log.case("C1")["decisions"]] == ["e2", "e1"]  # newest
        assert log.breakdown("unit") == {"jobcenter": {"raised": 1, "suppressed": 1}}
        assert log.breakdown("rule")["husstand-splittet"] == {"raised": 1}
        assert log.breakdown("event_type") == {"address_changed": {"raised": 1,
                                                                   "suppressed": 1}}
    finally:
        log.close()


def test_series_bucket_by_event_time_and_by_decision_time_in_utc(log_url):
    store(log_url, [
        decision("a", registered="2025-03-01T00:30:00+01:00"),  # 2025-02-28T23 UTC
        decision("b", "raised", registered="2025-03-01T01:10:00+01:00"),
        decision("c", registered="2025-03-01T01:50:00+01:00"),
    ])
    log = open_log(log_url)
    try:
        hours = log.series("registered_at", "hour")
        assert [(p["bucket"], p["suppressed"], p["raised"]) for p in hours] == [
            ("2025-02-28T23", 1, 0), ("2025-03-01T00", 1, 1)]
        assert [p["bucket"] for p in log.series("registered_at", "hour", last=1)] == [
            "2025-03-01T00"]
        days = log.series("decided_at", "day")
        assert [(p["bucket"], p["suppressed"], p["raised"]) for p in days] == [
            ("2026-01-05", 2, 1)]
    finally:
        log.close()


def test_no_cpr_number_is_stored_in_clear(log_url, tmp_path):
    store(log_url, [decision("e1", "raised", reason=f"about {CPR}",
                             cases=[verdict("C1", task_id="t1", facts={"x": CPR})])],
          [task("t1", "C1", note=f"person {CPR}", spouse=CPR[:6] + "-" + CPR[6:])])
    if log_url.startswith("sqlite"):
        path = Path(log_url.removeprefix("sqlite://"))
        everything = path.read_bytes() + b"".join(
            p.read_bytes() for p in path.parent.glob("*-wal"))
        assert CPR.encode() not in everything and b"010190-1234" not in everything
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    else:
        import psycopg

        with psycopg.connect(log_url) as db:
            dump = str(db.execute("SELECT d.body::text, t.body::text FROM decisions d, "
                                  "tasks t").fetchall())
        assert CPR not in dump and "010190-1234" not in dump and "010190-****" in dump
    log = open_log(log_url)
    try:
        shown = log.show("e1")
        assert shown is not None and shown["decision"]["reason"] == "about 010190-****"
    finally:
        log.close()


def test_the_command_line_shows_an_event_and_a_case(log_url):
    store(log_url, [decision("e1", "raised", "husstand-splittet",
                             cases=[verdict("C1", task_id="task-1",
                                            facts={"household.moved_together": False})])],
          [task("task-1", "C1")])

    def triage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "triage.cli", "decisions", *args,
                               "--db", log_url], capture_output=True, text=True, check=False)

    shown = triage("show", "e1")
    assert shown.returncode == 0, shown.stderr
    assert "raised by rule husstand-splittet" in shown.stdout
    assert "household.moved_together=false" in shown.stdout
    assert "task task-1: Flyttet → jobcenter" in shown.stdout
    case = triage("case", "C1", "--json")
    assert case.returncode == 0
    assert [d["event_id"] for d in orjson.loads(case.stdout)["decisions"]] == ["e1"]
    missing = triage("show", "nope")
    assert missing.returncode == 1 and "no decision about event nope" in missing.stderr


def test_an_unusable_url_is_one_line_and_status_2():
    run = subprocess.run([sys.executable, "-m", "triage.cli", "decisions", "show", "x", "--db",
                          "mysql://h/db"], capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "sqlite:// or postgresql://" in run.stderr


def test_sqlite_readers_see_the_writers_rows_while_it_runs(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.sqlite3'}"
    writer: DecisionLog = open_log(url)
    try:
        writer.write([decision_row(decision("e1"))])
        reader = sqlite3.connect(tmp_path / "d.sqlite3")
        assert reader.execute("SELECT count(*) FROM decisions").fetchone() == (1,)
        reader.close()
    finally:
        writer.close()


def test_a_registration_time_beyond_the_utc_calendar_is_logged_without_a_time(tmp_path):
    """``9999-12-31T23:59:59-14:00`` is a valid event time (decided out of range) but year 10000
    in UTC: the decision is still logged, with no registration time, instead of crashing the
    feed."""
    url = f"sqlite:///{tmp_path / 'decisions.sqlite3'}"
    row = decision_row(decision("e-9999", "raised", "registered-at-out-of-range",
                                registered="9999-12-31T23:59:59-14:00"))
    assert row.registered_at is None
    log = open_log(url)
    try:
        assert log.write([row], []) == 1
        shown = log.show("e-9999")
        assert shown is not None and shown["decision"]["rule"] == "registered-at-out-of-range"
    finally:
        log.close()


def test_a_nul_character_in_a_decision_or_task_is_stored_and_shown_not_stuck(log_url):
    """PostgreSQL's TEXT and JSONB hold no NUL character: a decision of an event whose id or
    error carried one (valid JSON, "\\u0000") failed every write of its batch, and the feed
    retried that batch for ever. The log stores it with U+FFFD in place of each NUL."""
    odd = decision("e\x00nul", "raised", cases=[verdict("C1", task_id="t\x00k", unit="j\x00c")],
                   reason="grund\x00", facts_note="x")
    invalid = decision(None, "invalid", "invalid", error="type: \x00 is unknown", registered=None)
    assert store(log_url, [odd, invalid, decision("e2")],
                 [task("t\x00k", "C1", note="n\x00")]) == 3
    log = open_log(log_url)
    try:
        assert log.totals() == {"raised": 1, "invalid": 1, "suppressed": 1}
        shown = log.show("e\ufffdnul")
        assert shown is not None
        assert shown["decision"]["reason"] == "grund\ufffd"
        assert [t["task_id"] for t in shown["tasks"]] == ["t\ufffdk"]
        assert shown["tasks"][0]["facts"] == {"note": "n\ufffd"}
    finally:
        log.close()
