"""Prometheus metrics of the worker, counted beside the code that decides.

The names are a contract shared by the page, the Grafana dashboard and the alert rules
(``docs/dashboard.md`` lists them). Prometheus conventions: base units (seconds), ``_total``
counters, and **every label value from a closed set** — a label never carries a CPR number, case
id or event id, and a value that comes from outside (an event's type) is checked against what
the service knows before it becomes a label:

* ``source`` is ``cpr``, ``dar``, ``atp`` or ``invalid``; ``type`` is a type the models know for
  that source, ``invalid``, or ``unknown`` — so 2,000 made-up event types add one series, not
  2,000, and a CPR number sent as a type never reaches ``/metrics``;
* ``rule`` comes from the loaded rulesets and the core's built-in verdicts
  (:meth:`WorkerMetrics.allow_rules`); ``unit`` from the case data. Both are capped
  (:class:`BoundedLabel`): past the cap a value is counted as ``other``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from triage.core import Outputs
from triage.models.events import KNOWN_TYPES

BUILT_IN_RULES = ("unclassified", "no-affected-case", "could-not-check", "invalid",
                  "arrived-too-late", "registered-at-out-of-range")
"""Verdicts the core gives without a rule file (:mod:`triage.core`)."""

DEADLETTER_REASONS = ("invalid", "oversized", "conflict")
DELIVERY_RESULTS = ("accepted", "repeat", "conflict", "failed")
RELOAD_RESULTS = ("accepted", "rejected")
SHADOW_TRANSITIONS = ("raised->raised", "raised->suppressed", "suppressed->raised",
                      "suppressed->suppressed")
LAG_TOPICS = frozenset(("cpr.events", "dar.events", "atp.events", "triage.routed",
                        "triage.decisions", "triage.tasks", "triage.deadletter"))
OTHER = "other"
UNKNOWN = "unknown"
NO_UNIT = "none"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REBUILD_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class BoundedLabel:
    """A label's admitted values: the ``known`` ones, plus the first values seen until the set
    holds ``cap``; anything after that is ``other``. Thread-safe (the web thread reads it)."""

    def __init__(self, known: Iterable[str] = (), cap: int = 100) -> None:
        self._values = set(known)
        self.cap = max(cap, len(self._values))
        self._lock = threading.Lock()

    def allow(self, values: Iterable[str]) -> None:
        """Admit ``values`` (a loaded ruleset's rule ids), raising the cap to make room."""
        with self._lock:
            self._values.update(values)
            self.cap = max(self.cap, len(self._values))

    def __call__(self, value: str | None) -> str:
        if not value:
            return NO_UNIT
        if value in self._values:
            return value
        with self._lock:
            if len(self._values) < self.cap:
                self._values.add(value)
                return value
        return OTHER


def event_labels(kind: str) -> tuple[str, str]:
    """``(source, type)`` labels for an ``Outputs.kinds`` entry (``cpr/address_changed``,
    ``invalid``): only types the models know reach a label; the rest are ``unknown``."""
    source, _, type_ = kind.partition("/")
    if source not in KNOWN_TYPES:
        return ("invalid", "invalid") if source == "invalid" else (UNKNOWN, UNKNOWN)
    return source, type_ if type_ in KNOWN_TYPES[source] else UNKNOWN


def decision_unit(outcome: str, rule: str, units: Iterable[tuple[str, str, str]]) -> str | None:
    """The unit a decision is counted for: that of the first case verdict that gave the
    decision its outcome and rule, given ``(unit, outcome, rule)`` per verdict; None without
    cases. The decision log uses the same function, so the page and Prometheus agree."""
    first = None
    for unit, verdict_outcome, verdict_rule in units:
        if first is None:
            first = unit
        if verdict_outcome == outcome and verdict_rule == rule:
            return unit
    return first


class WorkerMetrics:
    """One registry per worker, so tests can run several in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rules = BoundedLabel(BUILT_IN_RULES, cap=200)
        self.units = BoundedLabel((), cap=50)
        self.events = Counter(
            "triage_events_total", "Events read by the decider, by source and type.",
            ["source", "type"], registry=r)
        self.decisions = Counter(
            "triage_decisions_total",
            "Decisions written, by outcome, deciding rule, event type and owning unit.",
            ["outcome", "rule", "type", "unit"], registry=r)
        self.tasks = Counter(
            "triage_tasks_created_total", "Tasks raised, by rule and owning unit.",
            ["rule", "unit"], registry=r)
        self.delivered = Counter(
            "triage_tasks_delivered_total",
            "Task deliveries to the case system, by result (accepted, repeat, conflict, failed).",
            ["result"], registry=r)
        self.deadletters = Counter(
            "triage_deadletters_total", "Records written to the dead-letter topic, by reason.",
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
        self.latency = Histogram(
            "triage_decision_latency_seconds",
            "Wall time from a journal record's arrival to the decisions it released.",
            buckets=LATENCY_BUCKETS, registry=r)
        self.lag_sources: list[Callable[[], dict[tuple[str, int], int]]] = []
        """Functions giving ``(topic, partition) → records behind``, read at scrape time
        (:mod:`triage.stream.lag`); the worker's consumers register theirs."""
        r.register(_LagCollector(self.lag_sources))
        self.skipped = Counter(
            "triage_journal_skipped_total", "Journal records delivered again and skipped.",
            registry=r)
        self.rebuilds = Counter(
            "triage_rebuilds_total", "Times a worker rebuilt its state from the journal.",
            registry=r)
        self.rebuild_seconds = Histogram(
            "triage_rebuild_duration_seconds", "Time to rebuild state from the journal.",
            buckets=REBUILD_BUCKETS, registry=r)
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
        self.waiting = Gauge(
            "triage_waiting_events", "Events whose decision waits for a household move.",
            registry=r)
        self.open_moves = Gauge(
            "triage_open_household_moves", "Household moves still collecting members.",
            registry=r)
        self.ruleset_info = Gauge(
            "triage_ruleset_info", "The loaded ruleset versions (1), by role (active, shadow).",
            ["version", "role"], registry=r)
        self.reloads = Counter(
            "triage_rules_reloads_total", "Ruleset reloads, by result (accepted, rejected).",
            ["result"], registry=r)
        self.shadow = Counter(
            "triage_shadow_decisions_total",
            "Shadow verdicts per (event, case), by transition from the active one.",
            ["transition"], registry=r)
        self.shadow_rules = Counter(
            "triage_shadow_disagreements_total",
            "Shadow verdicts by another rule than the active one, by the two rule ids.",
            ["active_rule", "shadow_rule"], registry=r)
        self._rulesets: dict[str, str] = {}
        # closed sets start at zero, so a query over them has data before the first increment
        for reason in DEADLETTER_REASONS:
            self.deadletters.labels(reason)
        for result in DELIVERY_RESULTS:
            self.delivered.labels(result)
        for result in RELOAD_RESULTS:
            self.reloads.labels(result)
        for transition in SHADOW_TRANSITIONS:
            self.shadow.labels(transition)

    # --- configuration ----------------------------------------------------------------------

    def allow_rules(self, rule_ids: Iterable[str]) -> None:
        """Admit a loaded ruleset's rule ids as ``rule`` label values."""
        self.rules.allow(rule_ids)

    def set_ruleset(self, version: str | None, role: str = "active") -> None:
        """Show ``version`` as the ruleset of ``role`` (``active`` or ``shadow``; None: none)."""
        old = self._rulesets.pop(role, None)
        if old is not None:
            self.ruleset_info.remove(old, role)
        if version is not None:
            self._rulesets[role] = version
            self.ruleset_info.labels(version, role).set(1)

    def ruleset(self, role: str = "active") -> str | None:
        return self._rulesets.get(role)

    # --- counting ---------------------------------------------------------------------------

    def count(self, out: Outputs, arrived: float | None = None) -> None:
        """Count one step's outputs; ``arrived`` is the triggering record's Kafka timestamp
        (milliseconds, as faust and aiokafka report it) for the latency histogram."""
        rule, unit = self.rules, self.units
        for decision, kind in zip(out.decisions, out.kinds, strict=True):
            source, type_ = event_labels(kind)
            self.events.labels(source, type_).inc()
            where = decision_unit(decision.outcome, decision.rule,
                                  ((v.unit, v.outcome, v.rule) for v in decision.cases))
            self.decisions.labels(decision.outcome, rule(decision.rule), type_,
                                  unit(where)).inc()
        for task in out.tasks:
            self.tasks.labels(rule(task.rule), unit(task.unit)).inc()
        for bad in out.deadletters:
            reason = bad.reason
            self.deadletters.labels(reason if reason in DEADLETTER_REASONS else "invalid").inc()
        if out.late:
            self.late.inc(out.late)
        if out.out_of_range:
            self.out_of_range.inc(out.out_of_range)
        if arrived is not None and out.decisions:
            latency = max(0.0, time.time() - arrived / 1000.0)
            for _ in out.decisions:
                self.latency.observe(latency)

    def deadletter(self, reason: str) -> None:
        """Count a dead letter written outside :meth:`count` (``oversized``, ``conflict``)."""
        self.deadletters.labels(reason if reason in DEADLETTER_REASONS else "invalid").inc()

    def shadow_transition(self, active: str, shadow: str) -> None:
        transition = f"{active}->{shadow}"
        if transition in SHADOW_TRANSITIONS:
            self.shadow.labels(transition).inc()

    def shadow_disagreement(self, active_rule: str, shadow_rule: str) -> None:
        self.shadow_rules.labels(self.rules(active_rule), self.rules(shadow_rule)).inc()



class _LagCollector:
    """``triage_consumer_lag_records{topic,partition}``, computed when scraped."""

    def __init__(self, sources: list[Callable[[], dict[tuple[str, int], int]]]) -> None:
        self.sources = sources

    def describe(self) -> list[Any]:
        return [self._family()]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "triage_consumer_lag_records",
            "Records behind the fetch high watermark, per consumed topic partition.",
            labels=["topic", "partition"])

    def collect(self) -> Iterable[Any]:
        family = self._family()
        lags: dict[tuple[str, int], int] = {}
        for source in list(self.sources):
            try:
                found = source()
            except Exception:  # a consumer between assignments: no figure this scrape
                continue
            for where, behind in found.items():
                lags[where] = max(lags.get(where, 0), behind)
        for (topic, partition), behind in sorted(lags.items()):
            if topic in LAG_TOPICS:  # a closed set: faust's internal topics are not ours
                family.add_metric([topic, str(partition)], float(max(0, behind)))
        yield family


def registry_collector(registry: CollectorRegistry) -> Any:
    """A collector that serves another registry's metrics from the worker's registry (the
    case-system client keeps its own, so several clients can live in one test process)."""

    class _Forward:
        def collect(self) -> Iterable[Any]:
            return registry.collect()

        def describe(self) -> list[Any]:
            return []  # unchecked: names are the client's, distinct from ours

    return _Forward()
