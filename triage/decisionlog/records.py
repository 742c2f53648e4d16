"""From what ``triage.decisions`` and ``triage.tasks`` carry to the rows the decision log keeps.

Three things happen on the way in:

* **A key.** A decision is stored once per ``event_id`` (the contract's idempotency key), so a
  redelivery, or a repeat the worker writes after a crash, is recognised. An invalid line
  without an ``event_id`` is keyed by a digest of its decision without ``decided_at``: its
  repeats are recognised too, at the price that two id-less lines with the very same error
  count once (documented in ``docs/dashboard.md``).
* **No CPR number in clear.** Decisions hold none, but every free text stored — reasons,
  titles, errors, facts (a task's too) — is masked all the same (:func:`mask_record`). Ids are
  keys, not text: they are left as they are (ids derived from CPR data are keyed hashes). A
  record with nothing CPR-shaped in it — every one, normally — is stored as it came, without
  being parsed twice: the feed keeps up with the decider.
* **Timestamps in UTC**, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: fixed width, so they sort and compare
  chronologically as text in SQLite and PostgreSQL alike, and ``substr`` buckets them by hour or
  day in both.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from triage.stream.metrics import decision_unit

_CPR = re.compile(r"(?<![0-9A-Za-z])(\d{6})-?\d{4}(?![0-9A-Za-z])")
_CPR_BYTES = re.compile(rb"\d{6}-?\d{4}")
"""A quick, wider test: a record it does not match has nothing to mask."""
INVALID_KEY_PREFIX = "invalid:"
TEXT_FIELDS = ("reason", "title", "error")


def mask_text(text: str) -> str:
    """Anything shaped like a CPR number (ten digits, or six, a dash and four, standing
    alone) becomes ``DDMMYY-****``."""
    return _CPR.sub(r"\1-****", text)


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A decision or task with its free texts and facts masked, and its case verdicts'."""
    out = dict(record)
    for name in TEXT_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = mask_text(out[name])
    if isinstance(out.get("facts"), dict):
        out["facts"] = mask_strings(out["facts"])
    if isinstance(out.get("cases"), list):
        out["cases"] = [mask_record(c) if isinstance(c, dict) else c for c in out["cases"]]
    return out


def mask_strings(value: Any) -> Any:
    """``value`` with :func:`mask_text` applied to every string inside it (keys included)."""
    return _map_strings(value, mask_text)


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with ``change`` applied to every string inside it, keys included."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {change(k): _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    return value


def utc_text(value: Any) -> str | None:
    """An RFC 3339 timestamp as fixed-width UTC text; None when absent, unreadable or beyond
    the calendar in UTC (``9999-12-31T23:59:59-14:00`` is valid in the event, but year 10000
    in UTC: such an event is decided ``registered-at-out-of-range``, and its decision is logged
    without a time)."""
    if not value or not isinstance(value, str):  # a number or a list is unreadable too
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return utc_of(parsed)
    except (ValueError, OverflowError):
        return None


def utc_of(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def decision_key(decision: dict[str, Any]) -> str:
    """The idempotency key of a decision: its ``event_id``, or for an id-less invalid
    line a digest of the decision without its wall-clock stamp."""
    event_id = decision.get("event_id")
    if isinstance(event_id, str) and event_id:
        return event_id
    stable = {k: v for k, v in decision.items() if k != "decided_at"}
    digest = hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return INVALID_KEY_PREFIX + digest[:32]


@dataclass(frozen=True, slots=True)
class VerdictRow:
    key: str
    case_id: str
    outcome: str
    rule: str
    unit: str | None
    task_id: str | None
    decided_at: str


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One decision as the log stores it, with its per-case verdicts."""

    key: str
    event_id: str | None
    outcome: str
    rule: str
    event_source: str | None
    event_type: str | None
    unit: str | None
    registered_at: str | None
    decided_at: str
    ruleset: str | None
    correlation_id: str | None
    body: str
    verdicts: tuple[VerdictRow, ...]


@dataclass(frozen=True, slots=True)
class TaskRow:
    task_id: str
    case_id: str
    rule: str | None
    unit: str | None
    created_at: str
    body: str


class UnusableRecord(ValueError):
    """A record on the decisions or tasks topic that is not a decision or task at all."""


def _texts(record: dict[str, Any], names: tuple[str, ...], what: str) -> None:
    """Raise :class:`UnusableRecord` unless every field of ``names`` is text or null: the log
    stores them in TEXT columns, and a list or object there made every write of the batch
    fail — the feed retried it forever, stuck behind one record."""
    for name in names:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            raise UnusableRecord(f"not a {what}: {name} is not text")


def _cases(decision: dict[str, Any]) -> list[dict[str, Any]]:
    """The case verdicts of a decision (``cases`` of another JSON type: none)."""
    cases = decision.get("cases")
    return [c for c in cases if isinstance(c, dict)] if isinstance(cases, list) else []


def _without_nul(raw: bytes, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The record with U+FFFD for every NUL character in its strings (keys included), and
    whether there was one. PostgreSQL's TEXT and JSONB cannot hold NUL, and JSON may carry it
    (``\\u0000``, in an event id or an error quoting the input): such a record failed every
    write of its batch, and the feed retried that batch for ever."""
    if b"\\u0000" not in raw:  # JSON writes NUL escaped, never as a raw byte
        return record, False
    return _map_strings(record, lambda text: text.replace("\x00", "\ufffd")), True


def _stored(raw: bytes, record: dict[str, Any], changed: bool) -> tuple[dict[str, Any], str]:
    """The record as stored, CPR-masked (:func:`mask_record`), and its body: the record's own
    bytes when nothing had to change — every record, normally: it is not encoded twice."""
    if _CPR_BYTES.search(raw):
        record, changed = mask_record(record), True
    return record, orjson.dumps(record).decode() if changed else raw.decode()


def decision_row(raw: bytes) -> DecisionRow:
    """The row for one ``triage.decisions`` record value."""
    try:
        decision = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UnusableRecord("not JSON") from None
    if not isinstance(decision, dict) or not isinstance(decision.get("outcome"), str):
        raise UnusableRecord("not a decision")
    _texts(decision, ("event_id", "rule", "event_source", "event_type", "ruleset",
                      "correlation_id"), "decision")
    for c in _cases(decision):
        _texts(c, ("unit", "task_id"), "decision")
    decision, changed = _without_nul(raw, decision)
    key = decision_key(decision)
    decision, body = _stored(raw, decision, changed)
    decided_at = utc_text(decision.get("decided_at")) or utc_of(datetime.now(UTC))
    cases = _cases(decision)
    unit = decision_unit(decision["outcome"], str(decision.get("rule")),
                         ((str(c.get("unit")), str(c.get("outcome")), str(c.get("rule")))
                          for c in cases))
    verdicts = tuple(VerdictRow(key=key, case_id=str(c.get("case_id")),
                                outcome=str(c.get("outcome")), rule=str(c.get("rule")),
                                unit=c.get("unit"), task_id=c.get("task_id"),
                                decided_at=decided_at)
                     for c in cases if c.get("case_id"))
    return DecisionRow(
        key=key, event_id=decision.get("event_id"), outcome=decision["outcome"],
        rule=str(decision.get("rule")), event_source=decision.get("event_source"),
        event_type=decision.get("event_type"), unit=unit,
        registered_at=utc_text(decision.get("registered_at")), decided_at=decided_at,
        ruleset=decision.get("ruleset"), correlation_id=decision.get("correlation_id"),
        body=body, verdicts=verdicts)


def task_row(raw: bytes) -> TaskRow:
    """The row for one ``triage.tasks`` record value (facts and all strings masked)."""
    try:
        task = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UnusableRecord("not JSON") from None
    if not isinstance(task, dict) or not task.get("task_id") or not task.get("case_id"):
        raise UnusableRecord("not a task")
    _texts(task, ("task_id", "case_id", "rule", "unit"), "task")
    task, body = _stored(raw, *_without_nul(raw, task))
    return TaskRow(task_id=task["task_id"], case_id=task["case_id"], rule=task.get("rule"),
                   unit=task.get("unit"),
                   created_at=utc_text(task.get("created_at")) or utc_of(datetime.now(UTC)),
                   body=body)
