"""Tasks cannot be forged (issue 9 point 5), end to end: the real worker, the real reference
case system, the embedded broker.

A task planted without credentials is refused. A task planted by someone who holds the token
*and* knows the id the real task will get (task ids are keyed: that takes the task key too) is
kept by the case system, and the worker's real delivery is a conflict — logged as an alert and
counted ``triage_tasks_delivered_total{result="conflict"}`` — never counted as a repeat."""

from __future__ import annotations

import asyncio
import os

import httpx
import orjson
import pytest

from tests.test_end_to_end import TOKEN, serve_casesystem, wait_for
from tests.test_worker import produce, write_reference
from tests.world import World, address
from triage.dev import create_topics, start_worker, stop_process, wait_ready
from triage.stream.broker import EmbeddedBroker, free_port
from triage.task_ids import TaskIds

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TASK_KEY = "forged-tasks-test-key-0123456789"


def test_a_planted_task_is_refused_without_credentials_and_alerted_with_them(
        tmp_path, monkeypatch):
    monkeypatch.setenv("TRIAGE_TASK_KEY", TASK_KEY)
    w = World()
    w.person("modtager", address("home"))
    w.case("K1", "kontanthjaelp", "modtager")
    w.atp("modtager", "income_reported", at=0, amount=5200.0, income_type="wage",
          period="2025-02")
    write_reference(w, tmp_path)
    (real,) = [t for out in w.triage().run(w.lines()) for t in out.tasks]
    assert real.task_id == TaskIds(TASK_KEY.encode()).of(real.event_ids[0], "K1")
    planted = {**orjson.loads(real.to_json()), "title": "Ingen handling nødvendig",
               "score": 0.0, "reason": "Intet at gøre."}
    cs_port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{cs_port}"
    server = serve_casesystem(tmp_path / "cases.jsonl", cs_port, tmp_path / "tasks.sqlite")
    worker = None
    try:
        anonymous = httpx.put(f"{base}/v1/tasks/{real.task_id}", json=planted, timeout=5)
        assert anonymous.status_code == 401
        insider = httpx.put(f"{base}/v1/tasks/{real.task_id}", json=planted, timeout=5,
                            headers={"Authorization": f"Bearer {TOKEN}"})
        assert insider.status_code == 201
        with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
            create_topics(broker, partitions=3)
            worker = start_worker(broker.bootstrap, tmp_path, web_port, 3,
                                  casesystem_url=base, casesystem_token=TOKEN,
                                  task_key=TASK_KEY)
            wait_ready(f"http://127.0.0.1:{web_port}/ready", worker)
            asyncio.run(produce(broker.bootstrap, w.lines()))
            conflict = 'triage_tasks_delivered_total{result="conflict"} 1.0'
            metrics = wait_for(lambda: (lambda text: conflict in text and text)(
                httpx.get(f"http://127.0.0.1:{web_port}/metrics", timeout=5).text), 90)
        stored = httpx.get(f"{base}/v1/tasks/{real.task_id}", timeout=5,
                           headers={"Authorization": f"Bearer {TOKEN}"}).json()
    finally:
        if worker is not None:
            stop_process(worker)
        stop_process(server)
    assert 'triage_tasks_delivered_total{result="repeat"} 0.0' in metrics
    assert 'triage_tasks_delivered_total{result="accepted"} 0.0' in metrics
    assert stored["title"] == "Ingen handling nødvendig"  # the case system kept the plant...
    log = (tmp_path / "worker.log").read_text()
    assert f"ALERT: task {real.task_id} was not delivered" in log  # ...and the worker says so
    assert os.environ["TRIAGE_TASK_KEY"] not in log
