"""The metric names are a contract between the worker, the page, the Grafana dashboard and the
alert rules: every metric the dashboard queries is served by the worker and documented in
docs/dashboard.md, and everything documented is served."""

from __future__ import annotations

import json
import re
from pathlib import Path

from connectors.casesystem.client import CaseSystemClient
from triage.stream.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "triage.json"
DOCS = ROOT / "docs" / "dashboard.md"


def served() -> set[str]:
    """Every series name the worker's /metrics can show (counters as ``…_total``, histograms
    with their ``_bucket``/``_sum``/``_count``), the case-system client's included."""
    names: set[str] = set()
    client = CaseSystemClient("http://127.0.0.1:9")
    for registry in (WorkerMetrics().registry, client.registry):
        for family in registry.collect():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names |= {family.name, *(f"{family.name}_{s}" for s in ("bucket", "sum",
                                                                           "count"))}
            else:
                names.add(family.name)
    return names


def base(name: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", name)


def test_every_metric_the_dashboard_queries_is_served_and_documented():
    queried = set(re.findall(r"\btriage_[a-z_]+", DASHBOARD.read_text()))
    text = DOCS.read_text()
    section = text[text.index("## Metrics"):text.index("## Prometheus and Grafana")]
    documented = set(re.findall(r"`(triage_[a-z_]+)`", section))
    available = served()
    assert queried, "the dashboard queries no triage metric"
    assert queried - available == set()
    assert {base(n) for n in queried} - documented == set()
    assert documented - available == set()


def test_the_dashboard_has_template_variables_and_ruleset_annotations():
    board = json.loads(DASHBOARD.read_text())
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "instance", "type", "rule", "unit"} <= variables
    annotations = [a for a in board["annotations"]["list"] if "expr" in a]
    assert any("triage_ruleset_info" in a["expr"] for a in annotations)
    assert all(p["datasource"]["uid"] == "${datasource}" for p in board["panels"]
               if p["type"] != "row")
