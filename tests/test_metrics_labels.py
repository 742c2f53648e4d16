"""Metric labels come from closed sets: what an event says never becomes a label value as is."""

from __future__ import annotations

from prometheus_client import generate_latest

from tests.world import World, address
from triage.stream.metrics import BoundedLabel, WorkerMetrics, event_labels


def test_event_labels_admit_only_known_sources_and_types():
    assert event_labels("cpr/address_changed") == ("cpr", "address_changed")
    assert event_labels("cpr/made_up") == ("cpr", "unknown")
    assert event_labels("atp/0101901234") == ("atp", "unknown")
    assert event_labels("skat/x") == ("unknown", "unknown")
    assert event_labels("invalid") == ("invalid", "invalid")


def test_a_bounded_label_admits_known_values_then_the_first_up_to_its_cap():
    label = BoundedLabel(["a"], cap=3)
    assert [label(v) for v in ("a", "b", "c", "d", "b", None)] == [
        "a", "b", "c", "other", "b", "none"]
    label.allow(["reloaded-rule"])  # a loaded ruleset's ids always get a label of their own
    assert label("reloaded-rule") == "reloaded-rule"


def test_decisions_are_counted_by_outcome_rule_type_and_unit_and_the_scrape_stays_bounded():
    w = World()
    w.person("a", address("home"))
    w.case("C1", "kontanthjaelp", "a", unit="ydelsescenter")
    w.atp("a", "income_reported", at=0, amount=100.0, income_type="wage", period="2025-02")
    metrics = WorkerMetrics()
    core = w.triage()
    metrics.allow_rules(r.id for r in core.ruleset.rules)
    metrics.count(core.process(w.lines()[0]))
    text = generate_latest(metrics.registry).decode()
    assert ('triage_decisions_total{outcome="raised",rule="atp-indkomst-modtager",'
            'type="income_reported",unit="ydelsescenter"} 1.0') in text
    assert 'triage_tasks_created_total{rule="atp-indkomst-modtager",unit="ydelsescenter"} 1.0' \
        in text
    size = len(text)
    for i in range(2_000):
        metrics.count(core.process(
            b'{"event_id": "u%d", "source": "cpr", "type": "t%d", "cpr": "%s", '
            b'"registered_at": "2025-03-01T10:00:00+01:00"}' % (i, i, w.cpr("a").encode())))
    text = generate_latest(metrics.registry).decode()
    assert "t1999" not in text and 'type="unknown"' in text
    assert len(text) - size < 2_000

