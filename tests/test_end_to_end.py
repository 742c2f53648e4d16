"""End to end: a CPR extract ingested into the embedded broker, decided by the worker with the
reference case system over HTTP, the raised tasks delivered to the reference case system.
Every part is a real process: `triage casesystem serve`, Tansu, `triage worker`,
`triage ingest cpr-extract --kafka`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.test_cpr_extract import address, end, event, person, start
from tests.test_worker import consume, decided, produce
from tests.world import World
from tests.world import address as dar_address
from triage.dev import create_topics, start_worker, stop_process, wait_ready
from triage.stream.broker import EmbeddedBroker, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TOKEN = "end-to-end-token-0123456789"
"""The case system's bearer token: the reference server requires it, the worker sends it."""


def triage(*args: str | Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "triage.cli", *map(str, args)],
                            stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "TRIAGE_CASESYSTEM_TOKEN": TOKEN})


def serve_casesystem(cases: Path, port: int, store: Path) -> subprocess.Popen[bytes]:
    server = triage("casesystem", "serve", "--cases", cases, "--port", str(port),
                    "--store", store)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.1)


def received_tasks(port: int) -> list[dict]:
    """Every task the reference case system holds, following its pages."""
    tasks: list[dict] = []
    params: dict[str, str | int] = {"limit": 1000}
    while True:
        page = httpx.get(f"http://127.0.0.1:{port}/v1/tasks", timeout=2, params=params,
                         headers={"Authorization": f"Bearer {TOKEN}"}).json()
        tasks += page["tasks"]
        if page["next_page_token"] is None:
            return tasks
        params["page_token"] = page["next_page_token"]


def wait_for(condition, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)
    return result


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[World, Path, EmbeddedBroker]]:
    w = World()
    w.person("modtager", dar_address("home"))
    w.person("anden", dar_address("other"))
    w.person("nabo", dar_address("next door"))
    w.case("K1", "kontanthjaelp", "modtager", unit="ydelseskontoret")
    w.case("K2", "sygedagpenge", "anden", unit="jobcenter")
    persons, _ = w.records()
    (tmp_path / "persons.jsonl").write_bytes(b"".join(
        p.model_dump_json(by_alias=True).encode() + b"\n" for p in persons))
    (tmp_path / "cases.jsonl").write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in w.cases))
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker, partitions=3)
        yield w, tmp_path, broker


def test_cpr_extract_through_worker_and_case_system(world):
    w, folder, broker = world
    dead, neighbour = w.cpr("modtager"), w.cpr("nabo")
    extract = folder / "extract.txt"
    lines = [start(), person(dead, status="90", status_at="202403141000"),
             event(dead, "A21", "202403141000"),
             person(neighbour), address(neighbour), event(neighbour, "A01"), end(5)]
    extract.write_bytes("\r\n".join(lines).encode("latin-1") + b"\r\n")
    cs_port, web_port = free_port(), free_port()
    server = serve_casesystem(folder / "cases.jsonl", cs_port, folder / "received.sqlite")
    worker = None
    try:
        (folder / "cases.jsonl").unlink()  # the worker must take its cases from the case system
        worker = start_worker(broker.bootstrap, folder, web_port, 3,
                              casesystem_url=f"http://127.0.0.1:{cs_port}",
                              casesystem_token=TOKEN)
        wait_ready(f"http://127.0.0.1:{web_port}/ready", worker)
        ingest = subprocess.run([sys.executable, "-m", "triage.cli", "ingest", "cpr-extract",
                                 extract, "--kafka", broker.bootstrap],
                                capture_output=True, text=True, timeout=60, check=False)
        assert ingest.returncode == 0 and "events: 2" in ingest.stderr, ingest.stderr
        tasks = wait_for(lambda: received_tasks(cs_port))
    finally:
        if worker is not None:
            stop_process(worker)
        stop_process(server)
    assert [(t["case_id"], t["rule"], t["payment_hold"], t["unit"]) for t in tasks] == [
        ("K1", "doedsfald-modtager", True, "ydelseskontoret")]
    assert dead not in tasks[0]["title"]
    records = asyncio.run(consume(broker.bootstrap, "triage.decisions",
                                  lambda r: len(r) >= 2))
    outcomes = sorted(orjson.loads(v)["outcome"] for _, v, _ in records)
    assert outcomes == ["raised", "suppressed"]  # the neighbour's move touches no case
    log = (folder / "worker.log").read_text()
    assert "HTTP Request: POST" in log and "/v1/cases/lookup" in log  # uncached lookups ran
    assert "--- Logging error ---" not in log  # issue 8 point 6: one per lookup before
    assert dead not in log and neighbour not in log


def test_case_system_down_raises_could_not_check_and_delivers_when_back(world):
    w, folder, broker = world
    income = w.atp("anden", "income_reported", at=0, amount=900.0, income_type="wage",
                   period="2025-02")
    cs_port, web_port = free_port(), free_port()
    server = serve_casesystem(folder / "cases.jsonl", cs_port, folder / "received.sqlite")
    worker = start_worker(broker.bootstrap, folder, web_port, 3,
                          casesystem_url=f"http://127.0.0.1:{cs_port}",
                              casesystem_token=TOKEN)
    try:
        wait_ready(f"http://127.0.0.1:{web_port}/ready", worker)
        stop_process(server)  # the case system goes down
        asyncio.run(produce(broker.bootstrap, w.lines()))
        records = asyncio.run(consume(broker.bootstrap, "triage.decisions", decided({income})))
        decision = orjson.loads(records[0][1])
        assert (decision["outcome"], decision["rule"]) == ("raised", "could-not-check")
        assert "kunne ikke kontrolleres" in decision["reason"]
        assert w.cpr("anden") not in decision["reason"]
        metrics = httpx.get(f"http://127.0.0.1:{web_port}/metrics").text
        assert "triage_lookup_failures_total 1.0" in metrics
        server = serve_casesystem(folder / "cases.jsonl", cs_port, folder / "received.sqlite")
        tasks = wait_for(lambda: received_tasks(cs_port), timeout=90)  # delivery retried
    finally:
        stop_process(worker)
        stop_process(server)
    assert [(t["case_id"], t["rule"]) for t in tasks] == [("K2", "could-not-check")]
