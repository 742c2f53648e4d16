"""What the service writes (CONTRACT.md "Outputs"): decisions, per-case verdicts, tasks.

A :class:`Decision` is written exactly once per event id. Its per-case :class:`CaseVerdict`s say,
for every active case the event touched, whether it was suppressed or raised, by which rule, and
why. A :class:`Task` is what a caseworker receives: one per raised (event or correlated group,
case), bundling the group's event ids.

Beyond the contract's fields a verdict carries its ``correlation_id`` and ``task_id`` (additive,
so consumers that ignore unknown fields are unaffected), which lets a reader go from a decision to
the task that covers it.

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
    error: str | None = None

    def to_json(self) -> bytes:
        """The wire form: the contract's fields; ``error`` only on invalid decisions."""
        data: dict[str, Any] = {
            "event_id": self.event_id, "outcome": self.outcome, "score": self.score,
            "rule": self.rule, "reason": self.reason, "cases": self.cases,
            "correlation_id": self.correlation_id, "ruleset": self.ruleset,
            "decided_at": self.decided_at}
        if self.error is not None:
            data["error"] = self.error
        return orjson.dumps(data)


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
