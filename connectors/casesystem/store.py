"""The reference case system's task store: SQLite, so tasks (and idempotency) survive restarts.

A task is stored under its ``task_id`` as first received. Delivering the same id again answers
by comparing bodies: the same task (``created_at`` aside, which a redelivery stamps anew) is a
repeat; any other difference is a conflict, and the stored task is kept — a task planted
under an id first cannot be taken for the real one (issue 9).

Lists are read a page at a time in arrival order (``seq``), so listing a large store never
holds it in memory. The database file is created ``0600`` in a ``0700`` directory (tasks name
cases and units); SQLite gives its journal files the same mode as the database.
"""

from __future__ import annotations

import sqlite3
from enum import Enum
from pathlib import Path
from typing import Any

import orjson

from triage.private_files import open_private, private_dir

__all__ = ["PutResult", "TaskStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL UNIQUE,
    body    BLOB NOT NULL
)
"""
VOLATILE_FIELDS = frozenset({"created_at"})
"""Fields a redelivery may change without being another task."""


class PutResult(Enum):
    CREATED = "created"
    REPEAT = "repeat"
    CONFLICT = "conflict"


def _comparable(task: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in task.items() if k not in VOLATILE_FIELDS}


class TaskStore:
    """Tasks by id, in arrival order. ``path`` None keeps them in memory (tests)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            private_dir(self.path.parent)
            open_private(self.path, "ab").close()  # create it 0600 before SQLite opens it
        self._db = sqlite3.connect(str(self.path) if self.path is not None else ":memory:",
                                   isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL" if self.path is not None else "PRAGMA "
                         "journal_mode=MEMORY")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM tasks").fetchone()
        return int(count)

    def get(self, task_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return orjson.loads(row[0]) if row is not None else None

    def put(self, task: dict[str, Any]) -> tuple[PutResult, dict[str, Any]]:
        """Store ``task`` unless its id is known; returns what happened and the stored task."""
        task_id = task["task_id"]
        cursor = self._db.execute("INSERT OR IGNORE INTO tasks (task_id, body) VALUES (?, ?)",
                                  (task_id, orjson.dumps(task)))
        if cursor.rowcount == 1:
            return PutResult.CREATED, task
        stored = self.get(task_id)
        assert stored is not None
        same = _comparable(stored) == _comparable(task)
        return (PutResult.REPEAT if same else PutResult.CONFLICT), stored

    def page(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """Up to ``limit`` tasks received after position ``after``, and the position to
        continue from (None on the last page)."""
        rows = self._db.execute("SELECT seq, body FROM tasks WHERE seq > ? ORDER BY seq "
                                "LIMIT ?", (after, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return [orjson.loads(body) for _, body in rows], (rows[-1][0] if more else None)
