"""``triage rules diff``: a draft ruleset backtested against history, beside the base ruleset.

One pass: the history is decided by the one core under the base ruleset with the draft carried
as its shadow (:meth:`triage.core.Triage.use_shadow`), so the register, the household
correlation and every fact are computed once and both rulesets judge the very same facts — the
way Sift backtests with the values as of the original event. :class:`~.compare.DiffReport`
pairs the verdicts and counts what would change; :mod:`.html` renders it for people.

History is a JSON Lines file or the worker's journal topic (:mod:`.history`), decided through
:func:`triage.replay.decide_stream` — the entry point ``triage replay`` uses, with the same
event-time stage in front of the core (``--lateness``). Every event is
decided — the reference snapshot is the register *before the first event* — and only those
registered within ``--from``/``--to`` are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from triage.backtest.compare import RISK, TRANSITIONS, DiffReport
from triage.pipeline import Pipeline
from triage.replay import decide_stream
from triage.rules import Ruleset

__all__ = ["RISK", "TRANSITIONS", "DiffReport", "backtest"]


def backtest(lines: Iterable[bytes], pipeline: Pipeline, draft: Ruleset, report: DiffReport,
             progress: Callable[[int], None] | None = None) -> DiffReport:
    """Decide ``lines`` through ``pipeline`` (its core's ruleset is the base) with ``draft``
    as the core's shadow, feeding every step's outputs to ``report``."""
    pipeline.core.use_shadow(draft)
    for out in decide_stream(lines, pipeline, progress):
        report.feed(out)
    assert report.unpaired == 0, "a decision without its shadow after the flush"
    return report
