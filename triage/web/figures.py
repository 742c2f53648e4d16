"""The page's figures: counts from the decision log, live gauges from the worker's metrics.

Everything that counts *decisions* comes from the decision log, where each event is stored once
(by ``event_id``), so the figures equal what ``triage.decisions`` holds deduplicated — also after
a restart and rebuild, when the worker writes repeats. What only the running worker knows
(open household moves, events waiting for them, consumer lag, deliveries, dead letters by
reason, late events, shadow disagreements, the ruleset versions) is read from its Prometheus
registry, so the page and ``/metrics`` never disagree. Figures another part of the service has
not produced yet read as zero (or ``null`` for a version), never as an error.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from triage.decisionlog.store import DecisionLog

OUTCOMES = ("suppressed", "raised", "invalid")
DISAGREEMENTS = ("raised->suppressed", "suppressed->raised")


def samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of ``registry`` by sample name (``triage_late_events_total``, …)."""
    found: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in registry.collect():
        for sample in family.samples:
            found[sample.name].append((dict(sample.labels), float(sample.value)))
    return found


def _sum(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **match: str) -> int:
    return int(sum(v for labels, v in found.get(name, [])
                   if all(labels.get(k) == want for k, want in match.items())))


def _by(found: dict[str, list[tuple[dict[str, str], float]]], name: str,
        label: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for labels, value in found.get(name, []):
        out[labels.get(label, "")] += int(value)
    return dict(out)


def _rows(breakdown: dict[str, dict[str, int]], key: str) -> list[dict[str, Any]]:
    rows = []
    for value, counts in breakdown.items():
        row: dict[str, Any] = {key: value, **{o: counts.get(o, 0) for o in OUTCOMES}}
        row["total"] = sum(counts.values())
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["total"], r[key]))


def log_figures(log: DecisionLog) -> dict[str, Any]:
    """What the decision log says (run on the log's thread)."""
    totals = log.totals()
    by_rule = log.breakdown("rule")
    decided = sum(totals.values())
    judged = totals.get("suppressed", 0) + totals.get("raised", 0)
    return {
        "decisions": {"total": decided, **{o: totals.get(o, 0) for o in OUTCOMES},
                      "suppression_rate": (round(totals.get("suppressed", 0) / judged, 4)
                                           if judged else None)},
        "by_rule": _rows(by_rule, "rule"),
        "by_type": _rows(log.breakdown("event_type"), "type"),
        "by_unit": _rows(log.breakdown("unit"), "unit"),
        "by_ruleset": _rows(log.breakdown("ruleset"), "ruleset"),
        "tasks_created": log.task_count(),
        "could_not_check": sum(by_rule.get("could-not-check", {}).values()),
        "span": log.span(),
    }


def live_figures(registry: CollectorRegistry) -> dict[str, Any]:
    """What the running worker's metrics say."""
    found = samples(registry)
    rulesets: dict[str, str | None] = {"active": None, "shadow": None}
    for labels, value in found.get("triage_ruleset_info", []):
        if value:
            rulesets[labels.get("role", "active")] = labels.get("version")
    shadow = _by(found, "triage_shadow_decisions_total", "transition")
    return {
        "ruleset": rulesets,
        "tasks_delivered": _by(found, "triage_tasks_delivered_total", "result"),
        "live": {
            "open_household_moves": _sum(found, "triage_open_household_moves"),
            "waiting_events": _sum(found, "triage_waiting_events"),
            "consumer_lag": _sum(found, "triage_consumer_lag_records"),
            "events_read": _sum(found, "triage_events_total"),
            "rebuilds": _sum(found, "triage_rebuilds_total"),
        },
        "problems": {
            "dead_letters_by_reason": _by(found, "triage_deadletters_total", "reason"),
            "lookup_failures": _sum(found, "triage_lookup_failures_total"),
            "late_events": _sum(found, "triage_late_events_total"),
        },
        "shadow": {"ruleset": rulesets.get("shadow"),
                   "disagreements": sum(shadow.get(t, 0) for t in DISAGREEMENTS),
                   "by_transition": shadow},
    }


def summary(live: dict[str, Any], logged: dict[str, Any] | None,
            log_state: dict[str, Any]) -> dict[str, Any]:
    """``GET /api/summary``: the page's figures in one document (docs/dashboard.md)."""
    logged = logged or {"decisions": {"total": 0, **dict.fromkeys(OUTCOMES, 0),
                                      "suppression_rate": None},
                        "by_rule": [], "by_type": [], "by_unit": [], "by_ruleset": [],
                        "tasks_created": 0, "could_not_check": 0, "span": {}}
    problems = dict(live["problems"])
    problems["dead_letters"] = logged["decisions"]["invalid"]
    problems["could_not_check"] = logged["could_not_check"]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ruleset": live["ruleset"],
        "decisions": logged["decisions"],
        "by_rule": logged["by_rule"], "by_type": logged["by_type"],
        "by_unit": logged["by_unit"], "by_ruleset": logged["by_ruleset"],
        "tasks": {"created": logged["tasks_created"], "delivered": live["tasks_delivered"]},
        "live": live["live"],
        "problems": problems,
        "shadow": live["shadow"],
        "log": {**log_state, "span": logged["span"]},
    }


def log_state(feed: Any) -> dict[str, Any]:
    """How fresh the decision log is: stored decisions, lag, last write, last error."""
    if feed is None:
        return {"enabled": False}
    last = feed.last_write
    return {"enabled": True, "backend": feed.store.url.split(":", 1)[0],
            "written_since_start": feed.written,
            "behind": sum(feed.lag().values()),
            "seconds_since_write": round(time.time() - last, 1) if last else None,
            "error": feed.error}
