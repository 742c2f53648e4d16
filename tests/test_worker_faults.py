"""The worker under hostile input and real faults, on the embedded broker (issue "Hostile input
and faults", points 1–3): oversized messages are dead-lettered without stalling anything, and a
Kafka cluster replaced under a running worker makes it stop loudly — never skip live events."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.test_worker import consume, decided, produce, write_reference
from tests.world import World, address
from triage.dev import create_topics, start_worker, stop_process, wait_ready
from triage.logsafety import RateLimitFilter
from triage.stream.app import header
from triage.stream.broker import EmbeddedBroker, free_port
from triage.stream.health import WorkerHealth

pytestmark = pytest.mark.kafka


def small_world(n: int) -> World:
    """``n`` people with income events: cheap, always decided at once."""
    w = World()
    for i in range(n):
        w.person(f"p{i}", address(f"home{i}"))
        w.atp(f"p{i}", "income_reported", at=i / 100, amount=100.0, income_type="wage",
              period="2025-02")
    return w


def huge(event_id: str, size: int) -> bytes:
    """A valid-looking event padded with an unknown field to ``size`` bytes."""
    body = orjson.dumps({"event_id": event_id, "source": "atp", "type": "income_reported",
                         "registered_at": "2025-03-03T08:00:00+01:00", "cpr": "0101901234",
                         "amount": 1.0, "income_type": "wage", "period": "2025-02",
                         "padding": ""})
    return body[:-2] + b"x" * (size - len(body)) + b'"}'


async def produce_raw(bootstrap: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 << 20,
                                linger_ms=5)
    await producer.start()
    try:
        for value in values:
            await producer.send("atp.events", value=value)
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.slow
def test_one_and_two_megabyte_messages_are_dead_lettered_and_the_rest_decided(tmp_path: Path):
    w = small_world(1000)
    write_reference(w, tmp_path)
    big = [huge(f"big-{i}", (1 << 20) if i % 2 else (2 << 20)) for i in range(20)]
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker, partitions=3)
        port = free_port()
        worker = start_worker(broker.bootstrap, tmp_path, port, 3)
        try:
            wait_ready(f"http://127.0.0.1:{port}/ready", worker)
            lines = w.lines()
            asyncio.run(produce_raw(broker.bootstrap, big[:10]))
            asyncio.run(produce(broker.bootstrap, lines))
            asyncio.run(produce_raw(broker.bootstrap, big[10:]))
            every = {e["event_id"] for e in w.events} | {f"big-{i}" for i in range(20)}
            records = asyncio.run(consume(broker.bootstrap, "triage.decisions", decided(every),
                                          timeout=180))
            dead = asyncio.run(consume(broker.bootstrap, "triage.deadletter",
                                       lambda r: len(r) >= 20))
            health = httpx.get(f"http://127.0.0.1:{port}/health")
        finally:
            stop_process(worker)
    decisions = {orjson.loads(v)["event_id"]: orjson.loads(v) for _, v, _ in records}
    assert {decisions[f"big-{i}"]["outcome"] for i in range(20)} == {"invalid"}
    assert "exceeds the maximum message size" in decisions["big-0"]["error"]
    assert {decisions[e["event_id"]]["outcome"] for e in w.events} <= {"suppressed", "raised"}
    assert all(len(v) <= 1024 for _, v, _ in dead)  # the payload is truncated, the error kept
    assert all(b"bytes" in header(h, "triage-error") for _, _, h in dead)
    assert health.status_code == 200
    log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in log
    assert "0101901234" not in log


@pytest.mark.slow
def test_a_cluster_replaced_under_the_worker_stops_it_loudly_and_a_restart_decides_all(
        tmp_path: Path):
    w = small_world(60)
    write_reference(w, tmp_path)
    first, second = w.lines()[:30], w.lines()[30:]
    port = free_port()
    broker = EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log").start()
    worker = None
    try:
        create_topics(broker, partitions=3)
        started = time.monotonic()
        worker = start_worker(broker.bootstrap, tmp_path, port, 3, lateness="0")
        wait_ready(f"http://127.0.0.1:{port}/ready", worker)
        asyncio.run(produce(broker.bootstrap, first))
        asyncio.run(consume(broker.bootstrap, "triage.decisions",
                            decided({orjson.loads(x)["event_id"] for x in first[:-1]})))
        broker.stop()  # the cluster goes away ...
        unhealthy = wait_for(lambda: get(f"http://127.0.0.1:{port}/health") == 503, 60)
        assert unhealthy, "/health kept answering 200 while the broker was down"
        broker.cluster_id = "triage-replaced"
        broker.start()  # ... and a new, empty one answers on the same address
        create_topics(broker, partitions=3)
        worker.wait(120)
        assert worker.returncode == 1
        log = (tmp_path / "worker.log").read_text()
        last = log.strip().splitlines()[-1]
        assert last.startswith("triage worker: stopped: "), last
        assert "the Kafka cluster was replaced" in last or "it was reset" in last
        # an outage must not flood the log: the rate limiter's budget (triage/logsafety.py),
        # 600 records a minute, bounds it (before the limiter: 7,158 ERROR lines in 30 s)
        minutes = (time.monotonic() - started) / 60
        assert len(log.splitlines()) < RateLimitFilter().total_burst * (1 + minutes) + 200
        asyncio.run(produce(broker.bootstrap, second))
        worker = start_worker(broker.bootstrap, tmp_path, port, 3, lateness="0")
        wait_ready(f"http://127.0.0.1:{port}/ready", worker)
        records = asyncio.run(consume(broker.bootstrap, "triage.decisions", decided(
            {orjson.loads(x)["event_id"] for x in second})))
        assert len({orjson.loads(v)["event_id"] for _, v, _ in records}) >= len(second)
    finally:
        if worker is not None:
            stop_process(worker)
        broker.stop()


def get(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2.0).status_code
    except httpx.HTTPError:
        return None


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_health_reports_a_silent_broker_and_a_stalled_decider():
    now = [0.0]
    health = WorkerHealth(broker_timeout=15, stall_timeout=30, clock=lambda: now[0])
    assert health.problems() == []
    now[0] = 16.0  # the broker has been silent for 16 s
    assert any("has not answered for 16 s" in p for p in health.problems())
    now[0] = 31.0
    health.broker_answered()
    health.journal_lag = lambda: 5
    assert any("applied nothing" in p for p in health.problems())
    health.applied()
    assert health.problems() == []
