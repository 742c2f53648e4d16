"""What the service writes (CONTRACT.md "Outputs"): decisions, per-case verdicts, tasks.

A :class:`Decision` is written exactly once per event id. Its per-case :class:`CaseVerdict`s say,
for every active case the event touched, whether it was suppressed or raised, by which rule, and
why. A :class:`Task` is what a caseworker receives: one per raised (event or correlated group,
case), bundling the group's event ids.

Beyond the contract's fields (additive, so consumers that ignore unknown fields are unaffected)
a verdict carries its ``correlation_id``, ``task_id`` and the ``facts`` the rules looked at — a
reader goes from a decision to the task that covers it, and sees *why* a suppressed event was
suppressed — and a decision names its event's ``event_source``, ``event_type`` and
``registered_at`` (null for an invalid line), so the decision log can chart decisions in event
time and by type without the input topics.

These are plain slotted dataclasses, built once per event on the hot path and serialised by
orjson; :mod:`triage.models.wire` holds the same shapes as pydantic models for validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class CaseVerdict:
    case_id: str
    outcome: str  # "suppressed" | "raised"
    score: float
    rule: str
    reason: str
    unit: str
    title: str
    payment_hold: bool = False
    correlation_id: str | None = None
    task_id: str | None = None
    facts: dict[str, Any] | None = None


@dataclass(slots=True)
class Decision:
    event_id: str | None
    outcome: str  # "suppressed" | "raised" | "invalid"
    score: float
    rule: str
    reason: str
    cases: list[CaseVerdict]
    correlation_id: str | None
    ruleset: str
    decided_at: str
    event_source: str | None = None
    event_type: str | None = None
    registered_at: str | None = None
    error: str | None = None
    """Only on invalid decisions: the validation message (last, and absent from the wire form
    otherwise)."""

    def to_json(self) -> bytes:
        """The wire form: the contract's fields, then the additive ones; ``error`` only on
        invalid decisions. orjson writes the dataclass field by field in C; ``error`` is the
        last field, so for a decision without one its ``,"error":null`` is cut off the end."""
        encoded = orjson.dumps(self)
        if self.error is None:
            return encoded[:_NO_ERROR_CUT] + b"}"
        return encoded


_NO_ERROR_CUT = -len(b',"error":null}')


@dataclass(slots=True)
class Task:
    task_id: str
    case_id: str
    unit: str
    benefit: str
    title: str
    reason: str
    rule: str
    score: float
    payment_hold: bool
    event_ids: list[str]
    facts: dict[str, Any]
    correlation_id: str | None
    created_at: str

    def to_json(self) -> bytes:
        return orjson.dumps(self)
