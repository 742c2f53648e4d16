"""What the service writes (CONTRACT.md "Outputs"): decisions, per-case verdicts, tasks.

A :class:`Decision` is written exactly once per event id. Its per-case :class:`CaseVerdict`s say,
for every active case the event touched, whether it was suppressed or raised, by which rule, and
why. A :class:`Task` is what a caseworker receives: one per raised (event or correlated group,
case), bundling the group's event ids.

Beyond the contract's fields a verdict carries its ``correlation_id`` and ``task_id`` (additive,
so consumers that ignore unknown fields are unaffected), which lets a reader go from a decision to
the task that covers it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from triage.models.address import Model


class CaseVerdict(Model):
    case_id: str
    outcome: Literal["suppressed", "raised"]
    score: float = Field(ge=0.0, le=1.0)
    rule: str
    reason: str
    unit: str
    title: str
    payment_hold: bool = False
    correlation_id: str | None = None
    task_id: str | None = None


class Decision(Model):
    event_id: str | None
    outcome: Literal["suppressed", "raised", "invalid"]
    score: float = Field(ge=0.0, le=1.0)
    rule: str
    reason: str
    cases: list[CaseVerdict] = Field(default_factory=list)
    correlation_id: str | None = None
    ruleset: str
    decided_at: str
    error: str | None = None

    def to_json(self) -> bytes:
        """The wire form: the contract's fields; ``error`` only on invalid decisions."""
        return self.model_dump_json(exclude_none=False, exclude={"error"} if self.error is None
                                    else None).encode()


class Task(Model):
    task_id: str
    case_id: str
    unit: str
    benefit: str
    title: str
    reason: str
    rule: str
    score: float = Field(ge=0.0, le=1.0)
    payment_hold: bool
    event_ids: list[str]
    facts: dict[str, Any]
    correlation_id: str | None = None
    created_at: str

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
