"""The wire format of decisions and tasks (CONTRACT.md "Outputs"), as pydantic models.

These models are the schema a consumer validates against — tests read every line the service
writes back through them. The core itself builds the lighter dataclasses of
:mod:`triage.models.outputs` on its hot path; a test keeps the two field for field in step.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from triage.models.address import Model


class CaseVerdictRecord(Model):
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
    facts: dict[str, Any] | None = None


class DecisionRecord(Model):
    event_id: str | None
    outcome: Literal["suppressed", "raised", "invalid"]
    score: float = Field(ge=0.0, le=1.0)
    rule: str
    reason: str
    cases: list[CaseVerdictRecord] = Field(default_factory=list)
    correlation_id: str | None = None
    ruleset: str
    decided_at: str
    event_source: str | None = None
    event_type: str | None = None
    registered_at: str | None = None
    error: str | None = None



class TaskRecord(Model):
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
