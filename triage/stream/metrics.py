"""Prometheus metrics of the worker, counted beside the code that decides.

Labels carry only bounded, non-personal values — source, type, outcome, rule — never a CPR
number, case id or event id. Names follow Prometheus conventions (``_total`` for counters).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from triage.core import Outputs


class WorkerMetrics:
    """One registry per worker, so tests can run several in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "triage_events_total",
            "Events decided, by source and type.",
            ["source", "type"],
            registry=r,
        )
        self.decisions = Counter(
            "triage_decisions_total",
            "Decisions written, by outcome and deciding rule.",
            ["outcome", "rule"],
            registry=r,
        )
        self.tasks = Counter("triage_tasks_total", "Tasks raised, by rule.", ["rule"], registry=r)
        self.deadletters = Counter(
            "triage_deadletters_total",
            "Invalid events written to the dead-letter topic.",
            registry=r,
        )
        self.skipped = Counter(
            "triage_journal_skipped_total",
            "Journal records delivered again and skipped.",
            registry=r,
        )
        self.rebuilds = Counter(
            "triage_rebuilds_total",
            "Times a worker rebuilt its state from the journal.",
            registry=r,
        )
        self.rebuild_seconds = Histogram(
            "triage_rebuild_seconds", "Time to rebuild state from the journal.", registry=r
        )
        self.rebuild_records = Gauge(
            "triage_rebuild_replayed_records",
            "Journal records the last rebuild replayed (after its checkpoint, if any).",
            registry=r)
        self.checkpoints = Counter(
            "triage_checkpoints_total", "Checkpoints of the decider's state written.",
            registry=r)
        self.checkpoint_seconds = Histogram(
            "triage_checkpoint_duration_seconds", "Time to write a checkpoint.", registry=r)
        self.checkpoint_fallbacks = Counter(
            "triage_checkpoint_fallbacks_total",
            "Checkpoints not used (damaged, incompatible, another journal), by reason.",
            ["reason"], registry=r)
        self.lookup_failures = Counter(
            "triage_lookup_failures_total",
            "Events raised as could-not-check because a case-system lookup failed.",
            registry=r)
        self.late = Counter(
            "triage_late_events_total",
            "Events that arrived beyond the allowed lateness (raised where they touch a case).",
            registry=r)
        self.out_of_range = Counter(
            "triage_events_out_of_range_total",
            "Events whose registered_at lay beyond the clock bound (raised, not applied).",
            registry=r)
        self.waiting = Gauge(
            "triage_waiting_events", "Events whose decision waits for a household move.", registry=r
        )
        self.open_moves = Gauge(
            "triage_open_household_moves", "Household moves still collecting members.", registry=r
        )

    def count(self, out: Outputs) -> None:
        for decision, kind in zip(out.decisions, out.kinds, strict=True):
            source, _, type_ = kind.partition("/")
            self.events.labels(source, type_ or source).inc()
            self.decisions.labels(decision.outcome, decision.rule).inc()
        for task in out.tasks:
            self.tasks.labels(task.rule).inc()
        if out.deadletters:
            self.deadletters.inc(len(out.deadletters))
        if out.late:
            self.late.inc(out.late)
        if out.out_of_range:
            self.out_of_range.inc(out.out_of_range)
