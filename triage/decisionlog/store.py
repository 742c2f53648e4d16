"""The decision log's repository: every SQL statement the service runs against it.

One class, :class:`DecisionLog`, over a DB-API connection to SQLite (stdlib ``sqlite3``, a file:
the embedded default) or PostgreSQL (``psycopg`` 3: production), chosen by URL
(:func:`open_log`). The SQL is written once, in the dialect both share (``ON CONFLICT … DO
NOTHING``, ``substr``, text timestamps, see :mod:`triage.decisionlog.records`); a
:class:`_Dialect` holds the little that differs (placeholders, the JSON column type).

Writes are idempotent: each table's primary key is the idempotency key (decision: the event id;
verdict: decision and case; task: the task id) and a repeat is ignored — the first copy wins,
so a worker's repeat after a restart (same decision, later ``decided_at``) changes nothing.

The class is synchronous and not thread-safe; the worker drives it from one thread
(:class:`triage.decisionlog.service.AsyncLog`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from triage.decisionlog.records import DecisionRow, TaskRow, utc_of

SERIES_BUCKETS = {"hour": 13, "day": 10}
"""Characters of a UTC timestamp text that name its bucket (``2025-03-01T14``, ``2025-03-01``)."""
SERIES_CLOCKS = ("registered_at", "decided_at")
EXPLORE_LIMIT = 500


class LogUrlError(ValueError):
    """A decision-log URL the service cannot use."""


@dataclass(frozen=True, slots=True)
class _Dialect:
    name: str
    placeholder: str
    json_type: str

    def sql(self, statement: str) -> str:
        return statement.replace("?", self.placeholder)


SQLITE = _Dialect("sqlite", "?", "TEXT")
POSTGRES = _Dialect("postgresql", "%s", "JSONB")


def _schema(d: _Dialect) -> list[str]:
    body = f"body {d.json_type} NOT NULL"
    return [
        f"""CREATE TABLE IF NOT EXISTS decisions (
            key TEXT PRIMARY KEY, event_id TEXT, outcome TEXT NOT NULL, rule TEXT NOT NULL,
            event_source TEXT, event_type TEXT, unit TEXT, registered_at TEXT,
            decided_at TEXT NOT NULL, ruleset TEXT, correlation_id TEXT, {body})""",
        "CREATE INDEX IF NOT EXISTS decisions_event_id ON decisions (event_id)",
        "CREATE INDEX IF NOT EXISTS decisions_decided_at ON decisions (decided_at)",
        "CREATE INDEX IF NOT EXISTS decisions_registered_at ON decisions (registered_at)",
        """CREATE TABLE IF NOT EXISTS verdicts (
            key TEXT NOT NULL, case_id TEXT NOT NULL, outcome TEXT NOT NULL,
            rule TEXT NOT NULL, unit TEXT, task_id TEXT, decided_at TEXT NOT NULL,
            PRIMARY KEY (key, case_id))""",
        "CREATE INDEX IF NOT EXISTS verdicts_case_id ON verdicts (case_id)",
        "CREATE INDEX IF NOT EXISTS verdicts_decided_at ON verdicts (decided_at)",
        f"""CREATE TABLE IF NOT EXISTS tasks (
            task_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, rule TEXT, unit TEXT,
            created_at TEXT NOT NULL, {body})""",
        "CREATE INDEX IF NOT EXISTS tasks_case_id ON tasks (case_id)",
        "CREATE INDEX IF NOT EXISTS tasks_created_at ON tasks (created_at)",
    ]


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'decisions.sqlite3'}"


def check_url(url: str) -> None:
    """Raise :class:`LogUrlError` unless ``url`` names a kind of log this service keeps."""
    scheme = urlsplit(url).scheme
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise LogUrlError(f"decision log URL must start with sqlite:// or postgresql:// "
                          f"(got {scheme or 'no scheme'}:)")
    if scheme == "sqlite" and not url.removeprefix("sqlite:").lstrip("/"):
        raise LogUrlError("sqlite URL without a path (use sqlite:///path/to/file)")


def open_log(url: str) -> DecisionLog:
    """``sqlite:///absolute/path`` (or ``sqlite:relative/path``) or ``postgresql://…``."""
    check_url(url)
    if url.startswith("sqlite:"):
        path = url[len("sqlite://"):] if url.startswith("sqlite://") else url[len("sqlite:"):]
        return DecisionLog(_sqlite(Path(unquote(path))), SQLITE)
    import psycopg  # postgresql:// or postgres://

    try:
        connection = psycopg.connect(url, autocommit=False, connect_timeout=10)
    except psycopg.Error as exc:
        raise LogUrlError(f"cannot connect to the decision log: {type(exc).__name__}") from None
    return DecisionLog(connection, POSTGRES)


def _sqlite(path: Path) -> sqlite3.Connection:
    """A SQLite file for personal data: its directory 0700, the file 0600, WAL so readers
    (``triage decisions``, the page) never block the writer."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


class DecisionLog:
    """Decisions, verdicts and tasks, stored once each; figures and explanations read back."""

    def __init__(self, connection: Any, dialect: _Dialect) -> None:
        self._db = connection
        self.dialect = dialect
        with self._transaction() as cur:
            for statement in _schema(dialect):
                cur.execute(statement)

    def close(self) -> None:
        self._db.close()

    # --- plumbing ---------------------------------------------------------------------------

    def _transaction(self) -> Any:
        log = self

        class _Tx:
            def __enter__(self) -> Any:
                self.cur = log._db.cursor()
                return self.cur

            def __exit__(self, kind: object, *rest: object) -> None:
                try:
                    if kind is None:
                        log._db.commit()
                    else:
                        log._db.rollback()
                finally:
                    self.cur.close()

        return _Tx()

    def _rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction() as cur:
            cur.execute(self.dialect.sql(statement), tuple(params))
            return list(cur.fetchall())

    def _body(self, value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else orjson.loads(value)

    # --- writing ----------------------------------------------------------------------------

    def write(self, decisions: Iterable[DecisionRow], tasks: Iterable[TaskRow] = ()) -> int:
        """Store what is new among ``decisions`` and ``tasks`` in one transaction; return how
        many decisions were new (repeats are ignored)."""
        sql = self.dialect.sql
        decisions, tasks = list(decisions), list(tasks)
        with self._transaction() as cur:
            cur.executemany(sql(
                "INSERT INTO decisions (key, event_id, outcome, rule, event_source, "
                "event_type, unit, registered_at, decided_at, ruleset, correlation_id, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"),
                [(d.key, d.event_id, d.outcome, d.rule, d.event_source, d.event_type, d.unit,
                  d.registered_at, d.decided_at, d.ruleset, d.correlation_id, d.body)
                 for d in decisions])
            new = max(cur.rowcount, 0) if decisions else 0
            verdicts = [(v.key, v.case_id, v.outcome, v.rule, v.unit, v.task_id, v.decided_at)
                        for d in decisions for v in d.verdicts]
            if verdicts:  # a repeat's verdicts are repeats too: the first copy stays
                cur.executemany(sql(
                    "INSERT INTO verdicts (key, case_id, outcome, rule, unit, task_id, "
                    "decided_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (key, case_id) DO NOTHING"), verdicts)
            if tasks:
                cur.executemany(sql(
                    "INSERT INTO tasks (task_id, case_id, rule, unit, created_at, body) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO NOTHING"),
                    [(t.task_id, t.case_id, t.rule, t.unit, t.created_at, t.body)
                     for t in tasks])
        return new

    def prune(self, before: datetime) -> dict[str, int]:
        """Retention: remove decisions (with their verdicts) decided, and tasks created,
        before ``before``; return how many rows of each went."""
        cutoff = utc_of(before)
        sql = self.dialect.sql
        with self._transaction() as cur:
            cur.execute(sql("DELETE FROM verdicts WHERE decided_at < ?"), (cutoff,))
            verdicts = cur.rowcount
            cur.execute(sql("DELETE FROM decisions WHERE decided_at < ?"), (cutoff,))
            decisions = cur.rowcount
            cur.execute(sql("DELETE FROM tasks WHERE created_at < ?"), (cutoff,))
            tasks = cur.rowcount
        return {"decisions": decisions, "verdicts": verdicts, "tasks": tasks}

    # --- the explorer -----------------------------------------------------------------------

    def show(self, event_id: str) -> dict[str, Any] | None:
        """The decision about ``event_id`` with the tasks its verdicts point to, or None."""
        rows = self._rows("SELECT body FROM decisions WHERE key = ?", (event_id,))
        if not rows:
            return None
        decision = self._body(rows[0][0])
        # the body is stored as it came: its cases may be null, or hold other things than
        # verdicts with text task ids (that was a TypeError, a 503 for this event)
        cases = decision.get("cases")
        task_ids = sorted({c["task_id"] for c in (cases if isinstance(cases, list) else [])
                           if isinstance(c, dict) and isinstance(c.get("task_id"), str)
                           and c["task_id"]})
        return {"decision": decision, "tasks": self._tasks_by_id(task_ids)}

    def case(self, case_id: str, limit: int = EXPLORE_LIMIT) -> dict[str, Any]:
        """Every decision with a verdict about ``case_id`` (newest first, at most ``limit``)
        and the case's tasks."""
        rows = self._rows(
            "SELECT d.body FROM verdicts v JOIN decisions d ON d.key = v.key "
            "WHERE v.case_id = ? ORDER BY v.decided_at DESC, v.key LIMIT ?",
            (case_id, limit))
        tasks = self._rows("SELECT body FROM tasks WHERE case_id = ? ORDER BY created_at DESC "
                           "LIMIT ?", (case_id, limit))
        return {"case_id": case_id, "decisions": [self._body(r[0]) for r in rows],
                "tasks": [self._body(r[0]) for r in tasks]}

    def _tasks_by_id(self, task_ids: list[str]) -> list[dict[str, Any]]:
        if not task_ids:
            return []
        marks = ", ".join("?" for _ in task_ids)
        rows = self._rows(f"SELECT body FROM tasks WHERE task_id IN ({marks}) ORDER BY task_id",
                          task_ids)
        return [self._body(r[0]) for r in rows]

    # --- figures ----------------------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        """Decisions by outcome (each event once)."""
        return {outcome: int(n) for outcome, n in
                self._rows("SELECT outcome, count(*) FROM decisions GROUP BY outcome")}

    def breakdown(self, column: str) -> dict[str, dict[str, int]]:
        """Decisions by ``column`` (``rule``, ``event_type``, ``unit``, ``ruleset``) and
        outcome."""
        if column not in ("rule", "event_type", "unit", "ruleset", "event_source"):
            raise ValueError(f"no breakdown by {column}")
        out: dict[str, dict[str, int]] = {}
        for value, outcome, n in self._rows(
                f"SELECT {column}, outcome, count(*) FROM decisions GROUP BY {column}, outcome"):
            out.setdefault(value if value is not None else "none", {})[outcome] = int(n)
        return out

    def series(self, clock: str, bucket: str, last: int = 48) -> list[dict[str, Any]]:
        """Decisions per ``bucket`` (hour, day) of ``clock`` (registered_at, decided_at) and
        outcome, for the ``last`` buckets that have any, oldest first."""
        if clock not in SERIES_CLOCKS or bucket not in SERIES_BUCKETS:
            raise ValueError(f"no series by {bucket} of {clock}")
        width = SERIES_BUCKETS[bucket]
        part = f"substr({clock}, 1, {width})"
        rows = self._rows(
            f"SELECT {part} AS b, outcome, count(*) FROM decisions "
            f"WHERE {clock} IS NOT NULL AND {part} >= coalesce((SELECT min(b) FROM "
            f"(SELECT DISTINCT {part} AS b FROM decisions WHERE {clock} IS NOT NULL "
            f"ORDER BY b DESC LIMIT ?) AS recent), '') "
            f"GROUP BY b, outcome ORDER BY b", (last,))
        points: dict[str, dict[str, Any]] = {}
        for b, outcome, n in rows:
            points.setdefault(b, {"bucket": b, "suppressed": 0, "raised": 0, "invalid": 0})
            points[b][outcome] = int(n)
        return list(points.values())

    def task_count(self) -> int:
        return int(self._rows("SELECT count(*) FROM tasks")[0][0])

    def span(self) -> dict[str, str | None]:
        """The oldest and newest decision times held (what retention has left)."""
        row = self._rows("SELECT min(decided_at), max(decided_at), min(registered_at), "
                         "max(registered_at) FROM decisions")[0]
        return {"decided_from": row[0], "decided_to": row[1], "registered_from": row[2],
                "registered_to": row[3]}
