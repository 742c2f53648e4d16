"""Comparing the base ruleset's verdicts with the draft's, (event, case) by (event, case).

The core emits each event's real decision and its shadow decision — possibly at different
moments, when one of them waits for a household move and the other does not — so the report
pairs them by event id and compares the verdicts case by case (both lists come from the same
judgements, in the same order). It counts transitions per (event, case), by event type and by
rule pair; keeps, for every changed cell, a few examples with both verdicts' explanations and
the facts they were judged on; and counts raised verdicts per day under each ruleset.

``risk`` is the number of pairs the base raises and the draft would suppress: in this domain a
suppression can keep a caseworker from hearing about a death. ``hold_lost`` (additive) counts
pairs whose payment hold the draft would drop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from triage.core import Outputs, ShadowDecision
from triage.models.outputs import CaseVerdict, Decision
from triage.rules.model import MISSING

TRANSITIONS = ("raised->raised", "raised->suppressed", "suppressed->raised",
               "suppressed->suppressed")
RISK = "raised->suppressed"
COMPARED = ("outcome", "rule", "score", "title", "unit", "payment_hold")
"""The fields of a verdict whose change makes a pair "changed"."""


def _verdict(v: CaseVerdict) -> dict[str, Any]:
    return {"outcome": v.outcome, "rule": v.rule, "score": v.score, "reason": v.reason,
            "title": v.title, "unit": v.unit, "payment_hold": v.payment_hold}


@dataclass
class DiffReport:
    """The backtest's counts and examples; :meth:`feed` it the core's outputs."""

    base: str
    draft: str
    since: datetime | None = None
    until: datetime | None = None
    examples_per_cell: int = 5
    events: int = 0
    invalid: int = 0
    changed: int = 0
    hold_lost: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    by_event_type: dict[str, Counter[str]] = field(default_factory=dict)
    by_rule: Counter[tuple[str, str]] = field(default_factory=Counter)
    changed_by_rule: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Per rule pair, the verdicts in which something changed (the rule, or with the same rule
    id its score, title, unit or payment hold)."""
    examples: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {t: [] for t in TRANSITIONS})
    raised_per_day: dict[str, list[int]] = field(default_factory=dict)
    """ISO date of ``registered_at`` → [raised under base, raised under draft]."""
    _cell_examples: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _main: dict[str, Decision] = field(default_factory=dict)
    _shadow: dict[str, ShadowDecision] = field(default_factory=dict)

    @property
    def risk(self) -> int:
        return self.verdicts[RISK]

    @property
    def unpaired(self) -> int:
        """Decisions still waiting for their other half (zero after a flushed run)."""
        return len(self._main) + len(self._shadow)

    def feed(self, out: Outputs) -> None:
        """Take one step's outputs: pair each real decision with its shadow decision."""
        shadows = self._shadow
        for decision in out.decisions:
            if decision.outcome == "invalid":
                self.invalid += 1
                continue
            event_id = decision.event_id
            assert event_id is not None
            shadow = shadows.pop(event_id, None) if shadows else None
            if shadow is None:
                self._main[event_id] = decision
            else:
                self._pair(decision, shadow)
        main = self._main
        for shadow in out.shadow:
            event_id = shadow.decision.event_id
            assert event_id is not None
            real = main.pop(event_id, None)
            if real is None:
                shadows[event_id] = shadow
            else:
                self._pair(real, shadow)

    def _pair(self, decision: Decision, shadow: ShadowDecision) -> None:
        at = shadow.registered_at
        if (self.since is not None and at < self.since) or \
                (self.until is not None and at >= self.until):
            return
        self.events += 1
        if not decision.cases:
            return
        kind = shadow.kind
        by_type = self.by_event_type.get(kind)
        if by_type is None:
            by_type = self.by_event_type[kind] = Counter()
        day = self.raised_per_day.setdefault(at.date().isoformat(), [0, 0])
        for i, (base, draft) in enumerate(zip(decision.cases, shadow.decision.cases,
                                              strict=True)):
            assert base.case_id == draft.case_id
            transition = f"{base.outcome}->{draft.outcome}"
            self.verdicts[transition] += 1
            by_type[transition] += 1
            self.by_rule[(base.rule, draft.rule)] += 1
            day[0] += base.outcome == "raised"
            day[1] += draft.outcome == "raised"
            if base.payment_hold and not draft.payment_hold:
                self.hold_lost += 1
            changes = [f for f in COMPARED if getattr(base, f) != getattr(draft, f)]
            if changes:
                self.changed += 1
                self.changed_by_rule[(base.rule, draft.rule)] += 1
                self._example(transition, decision, shadow, i, base, draft, changes)

    def _example(self, transition: str, decision: Decision, shadow: ShadowDecision, i: int,
                 base: CaseVerdict, draft: CaseVerdict, changes: list[str]) -> None:
        cell = (transition, base.rule, draft.rule)
        if self._cell_examples[cell] >= self.examples_per_cell:
            return
        self._cell_examples[cell] += 1
        facts = {k: v for k, v in sorted(shadow.facts[i].items()) if v is not MISSING}
        self.examples[transition].append({
            "event_id": decision.event_id, "case_id": base.case_id, "base_rule": base.rule,
            "draft_rule": draft.rule, "event_type": shadow.kind,
            "registered_at": shadow.registered_at.isoformat(), "changes": changes,
            "base": _verdict(base), "draft": _verdict(draft), "facts": facts})

    def to_json(self) -> dict[str, Any]:
        """CONTRACT.md "triage rules diff" (its keys first), with additive keys after."""
        return {
            "base": self.base, "draft": self.draft, "events": self.events,
            "verdicts": {t: self.verdicts[t] for t in TRANSITIONS},
            "by_event_type": {kind: {t: counts[t] for t in TRANSITIONS}
                              for kind, counts in sorted(self.by_event_type.items())},
            "by_rule": {f"{b} -> {d}": n for (b, d), n in sorted(
                self.by_rule.items(), key=lambda item: (-item[1], item[0]))},
            "examples": self.examples,
            "risk": self.risk,
            "from": self.since.isoformat() if self.since else None,
            "to": self.until.isoformat() if self.until else None,
            "invalid": self.invalid,
            "changed": self.changed,
            "changed_by_rule": {f"{b} -> {d}": n for (b, d), n in sorted(
                self.changed_by_rule.items(), key=lambda item: (-item[1], item[0]))},
            "hold_lost": self.hold_lost,
            "raised_per_day": {day: {"base": counts[0], "draft": counts[1]}
                               for day, counts in sorted(self.raised_per_day.items())},
        }
