"""A real Prometheus (Debian's ``prometheus`` package, installed by ``make test`` when missing)
scraping a real worker — with the reference case system, so every panel has something to show
— evaluates every query of the Grafana dashboard (``deploy/grafana/dashboards/triage.json``)
through its HTTP API: each returns data, and suppressed/raised agree with the decisions."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.dashboard_world import decided_backlog
from triage.models.events import KNOWN_TYPES
from triage.stream.broker import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "triage.json"
# the values Grafana would put in: every worker/type/rule/unit, a window over the whole test
KNOWN_TYPE_LABELS = {t for types in KNOWN_TYPES.values() for t in types} | {"unknown",
                                                                         "invalid"}
VARIABLES = {"$__rate_interval": "5m", "$__range": "10m", "$__interval": "15s",
             "$instance": ".*", "$type": ".*", "$rule": ".*", "$unit": ".*"}


def substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    assert "$" not in expr, expr
    return expr


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in board["panels"]
            for target in panel.get("targets", [])]


def prometheus_config(folder: Path, target: str) -> Path:
    """The shipped scrape configuration, pointed at ``target`` and scraping every second."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "1s"
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "triage"]
    job["scrape_interval"] = "1s"
    job["static_configs"] = [{"targets": [target]}]
    alerts = DEPLOY / "prometheus" / "alerts.yml"
    if alerts.exists():
        shutil.copy(alerts, folder / "alerts.yml")
    else:  # written on another branch (the deployment's): an empty rule file stands in
        (folder / "alerts.yml").write_text("groups: []\n")
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    assert found, "prometheus missing: make test installs it (scripts/ensure-debs)"
    return found


def start_prometheus(binary: str, folder: Path, target: str) -> tuple[subprocess.Popen[bytes],
                                                                      str]:
    port = free_port()
    config = prometheus_config(folder, target)
    check = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen([binary, f"--config.file={config}",
                                f"--storage.tsdb.path={folder / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/-/ready", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (folder / "prometheus.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "prometheus not ready"
        time.sleep(0.2)


@pytest.fixture
def stopping() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def query(base: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def eventually(base: str, expr: str, holds: Any, timeout: float = 60,
               what: str = "") -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        result = query(base, expr)
        if holds(result):
            return result
        assert time.monotonic() < deadline, (what, expr, result)
        time.sleep(0.5)


def test_prometheus_scrapes_the_worker_and_every_dashboard_query_returns_data(
        prometheus_binary, stopping, tmp_path):
    (tmp_path / "prometheus").mkdir()
    with decided_backlog(tmp_path / "world", events=1_500, casesystem=True) as run:
        process, base = start_prometheus(prometheus_binary, tmp_path / "prometheus",
                                         f"127.0.0.1:{run.port}")
        stopping.append(process)
        totals = run.backlog.totals
        counted = eventually(base, 'sum by (outcome) (triage_decisions_total{job="triage"})',
                             lambda r: sum(float(s["value"][1]) for s in r)
                             >= len(run.backlog.decisions))
        time.sleep(3)  # a few more scrapes, so every rate() has two samples after the backlog
        for title, expr in dashboard_queries():
            eventually(base, substitute(expr), bool, timeout=30, what=title)

        board = json.loads(DASHBOARD.read_text())
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            found = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"]["query"])
            assert found, variable["query"]
            selector, label = substitute(found.group(1)), found.group(2)
            values = httpx.get(f"{base}/api/v1/label/{label}/values",
                               params={"match[]": selector}).json()["data"]
            assert values, variable["name"]
        for annotation in board["annotations"]["list"]:
            if "expr" in annotation:  # valid; the ruleset one marks the worker's start
                result = query(base, substitute(annotation["expr"]))
                if annotation["name"] == "Ruleset changes":
                    assert result, annotation["name"]
        types = query(base, "count by (type) (triage_events_total)")
    by_outcome = {s["metric"]["outcome"]: int(float(s["value"][1])) for s in counted}
    assert by_outcome == {o: n for o, n in totals.items() if n}  # suppressed/raised agree
    assert {s["metric"]["type"] for s in types} <= KNOWN_TYPE_LABELS
