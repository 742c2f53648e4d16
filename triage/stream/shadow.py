"""Agreement between the active ruleset and a shadow ruleset on the live worker.

The core emits a shadow decision beside the real one (:class:`triage.core.ShadowDecision`),
usually in the same step, sometimes later (one of them may wait for a household move). This
pairs the two per (event, case) and counts the transition in
``triage_shadow_decisions_total{transition}`` (``raised->suppressed`` …) and, for the verdicts
that differ, ``triage_shadow_disagreements_total{active_rule,shadow_rule}`` (rule ids of the
loaded rulesets only: a closed set). Unpaired halves wait in bounded memory; the oldest are
dropped first (they only cost a count, never a decision).
"""

from __future__ import annotations

from collections import OrderedDict

from triage.models.outputs import Decision
from triage.stream.metrics import WorkerMetrics

MAX_UNPAIRED = 20_000

Verdicts = dict[str, tuple[str, str]]
"""case id -> (outcome, rule id)."""


def verdicts(decision: Decision) -> Verdicts:
    return {v.case_id: (v.outcome, v.rule) for v in decision.cases}


class ShadowAgreement:
    def __init__(self, metrics: WorkerMetrics, limit: int = MAX_UNPAIRED) -> None:
        self.metrics = metrics
        self.limit = limit
        self._active: OrderedDict[str, Verdicts] = OrderedDict()
        self._shadow: OrderedDict[str, Verdicts] = OrderedDict()

    def active(self, decision: Decision) -> None:
        self._offer(decision, self._active, self._shadow, active_first=True)

    def shadow(self, decision: Decision) -> None:
        self._offer(decision, self._shadow, self._active, active_first=False)

    def _offer(self, decision: Decision, mine: OrderedDict[str, Verdicts],
               theirs: OrderedDict[str, Verdicts], *, active_first: bool) -> None:
        if decision.event_id is None or decision.outcome == "invalid":
            return
        other = theirs.pop(decision.event_id, None)
        if other is None:
            mine[decision.event_id] = verdicts(decision)
            while len(mine) > self.limit:
                mine.popitem(last=False)
            return
        own = verdicts(decision)
        active, shadow = (own, other) if active_first else (other, own)
        for case_id, (outcome, rule) in active.items():
            found = shadow.get(case_id)
            if found is None:
                continue
            self.metrics.shadow_transition(outcome, found[0])
            if rule != found[1]:
                self.metrics.shadow_disagreement(rule, found[1])
