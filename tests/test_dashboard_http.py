"""The page's access rules and the bounded metric labels, against a real worker process on the
embedded broker, over real HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import orjson
import pytest

from tests.dashboard_world import wait_for_log
from tests.test_worker import broker, consume, decided, produce, scenario, write_reference
from triage.dev import start_worker, stop_process, wait_ready
from triage.stream.broker import free_port

pytestmark = pytest.mark.kafka
__all__ = ["broker"]  # the fixture, shared with test_worker
TOKEN = "s3cret-viewer-token"
CPR_AS_TYPE = "0101901234"


def unknown_types(n: int, cpr: str) -> list[bytes]:
    lines = [orjson.dumps({"event_id": f"unknown-{i}", "source": "cpr", "type": f"made_up_{i}",
                           "registered_at": "2025-02-03T10:00:00+01:00", "cpr": cpr})
             for i in range(n)]
    lines.append(orjson.dumps({"event_id": "cpr-as-type", "source": "cpr",
                               "type": CPR_AS_TYPE, "registered_at": "2025-02-03T10:00:01+01:00",
                               "cpr": cpr}))
    return lines


def test_the_viewer_token_guards_page_and_api_and_unknown_types_never_reach_a_label(
        broker, tmp_path):
    w, _ = scenario()
    write_reference(w, tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    worker = start_worker(broker.bootstrap, tmp_path, port, 3, viewer_token=TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    try:
        wait_ready(f"{base}/ready", worker)
        lines = w.lines()
        asyncio.run(produce(broker.bootstrap, lines))
        asyncio.run(consume(broker.bootstrap, "triage.decisions",
                            decided({e["event_id"] for e in w.events})))
        before = httpx.get(f"{base}/metrics").text
        strangers = unknown_types(2_000, w.cpr("mor"))
        asyncio.run(produce(broker.bootstrap, strangers))
        asyncio.run(consume(broker.bootstrap, "triage.decisions",
                            decided({"cpr-as-type", "unknown-1999"})))
        after = httpx.get(f"{base}/metrics").text
        # the decision log is fed from triage.decisions behind the worker: wait until it holds
        # everything decided so far
        wait_for_log(base, len(w.events) + len(strangers), headers=bearer)

        # access: open for probes and Prometheus, guarded for everything showing case ids
        for path in ("/health", "/ready", "/metrics", "/assets/dashboard.js"):
            assert httpx.get(base + path).status_code == 200, path
        for path in ("/api/summary", "/api/event?id=cpr-as-type", "/api/case?id=C1",
                     "/api/series", "/api/chart?name=rule"):
            assert httpx.get(base + path).status_code == 401, path
            assert httpx.get(base + path, headers={"Authorization": "Bearer wrong"}
                             ).status_code == 401, path
        assert httpx.get(f"{base}/api/case?id=C1", headers=bearer).status_code == 200
        page = httpx.get(f"{base}/")
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert httpx.get(f"{base}/router/").status_code == 404  # faust's internals are gone
        refused = httpx.post(f"{base}/login", data={"token": "guess"})
        assert refused.status_code == 401 and "triage_viewer" not in refused.headers.get(
            "set-cookie", "")
        login = httpx.post(f"{base}/login", data={"token": TOKEN})
        assert login.status_code == 303
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        session = login.cookies["triage_viewer"]
        shown = httpx.get(f"{base}/", cookies={"triage_viewer": session})
        assert shown.status_code == 200 and "Decision explorer" in shown.text
        assert "script-src 'self'" in shown.headers["content-security-policy"]
        case = httpx.get(f"{base}/api/case?id=C1", cookies={"triage_viewer": session}).json()
        assert {v["case_id"] for d in case["decisions"] for v in d["cases"]} >= {"C1"}
    finally:
        stop_process(worker)

    assert CPR_AS_TYPE not in after and "made_up_" not in after
    assert 'triage_events_total{source="cpr",type="unknown"} 2001.0' in after
    assert len(after) - len(before) < 3_000, len(after) - len(before)  # one series, not 2,001
    log = (tmp_path / "worker.log").read_text()
    assert TOKEN not in log


def test_a_page_bound_beyond_loopback_without_a_token_refuses_to_start(tmp_path):
    w, _ = scenario()
    write_reference(w, tmp_path)
    env = {**os.environ, "TRIAGE_PERSONS": str(tmp_path / "persons.jsonl"),
           "TRIAGE_CASES": str(tmp_path / "cases.jsonl"), "TRIAGE_WEB_HOST": "0.0.0.0",
           "TRIAGE_BOOTSTRAP": "127.0.0.1:1"}
    env.pop("TRIAGE_VIEWER_TOKEN", None)
    run = subprocess.run([sys.executable, "-m", "triage.cli", "worker"], env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1, run.stderr
    assert "0.0.0.0 is not a loopback address: set TRIAGE_VIEWER_TOKEN" in run.stderr
