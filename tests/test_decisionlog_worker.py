"""The decision log fed by a real worker, in SQLite and in a real PostgreSQL: after a SIGKILL
mid-stream, a restart that rebuilds and repeats, and decisions redelivered on the topic, it
holds every decision exactly once — its figures equal ``triage.decisions`` deduplicated on
``event_id``."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.dashboard_world import read_backlog
from tests.test_worker import consume, produce
from triage.decisionlog import open_log
from triage.dev import create_topics, start_worker, stop_process, wait_ready
from triage.stream.broker import EmbeddedBroker, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def redeliver(bootstrap: str, records: list[tuple[str, bytes | None, bytes]]) -> None:
    """Put copies of ``records`` back on their topics, all on partition 0, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value=value, key=key, partition=0)
    finally:
        await producer.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_decision_is_logged_once_through_a_crash_a_restart_and_redelivery(
        backend, tmp_path, request):
    from triage.simulate import simulate

    url = (f"sqlite:///{tmp_path / 'log' / 'decisions.sqlite3'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    simulate(tmp_path, seed=11, events=2_000)
    lines = [line for line in (tmp_path / "events.jsonl").read_bytes().splitlines() if line]
    labels = [orjson.loads(x) for x in (tmp_path / "labels.jsonl").read_bytes().splitlines()]
    expected = {label["event_id"] for label in labels}
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker, partitions=3)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        worker = start_worker(broker.bootstrap, tmp_path, port, 3, decision_log=url)
        try:
            wait_ready(f"{base}/ready", worker)
            asyncio.run(produce(broker.bootstrap, lines))
            asyncio.run(consume(broker.bootstrap, "triage.decisions",
                                lambda r: len(r) >= len(expected) // 3))
            os.killpg(worker.pid, signal.SIGKILL)  # no commit of the log feed's offsets
            worker.wait()
            worker = start_worker(broker.bootstrap, tmp_path, port, 3, decision_log=url)
            wait_ready(f"{base}/ready", worker)
            backlog = read_backlog(broker.bootstrap, expected)
            written = asyncio.run(consume(broker.bootstrap, "triage.decisions",
                                          lambda r: len(r) >= len(expected)))
            task_ids = {v["task_id"] for d in backlog.decisions.values() for v in d["cases"]
                        if v["task_id"]}
            tasks = asyncio.run(consume(
                broker.bootstrap, "triage.tasks",
                lambda r: task_ids <= {orjson.loads(v)["task_id"] for _, v, _ in r}))
            # redelivery: a slice of what is on the topics, again, then a sentinel behind it
            sentinel = orjson.dumps({**orjson.loads(written[0][1]), "event_id": "sentinel"})
            copies = [("triage.decisions", k, v) for k, v, _ in written[:300]]
            copies += [("triage.tasks", k, v) for k, v, _ in tasks[:50]]
            asyncio.run(redeliver(broker.bootstrap,
                                  [*copies, ("triage.decisions", b"sentinel", sentinel)]))
            deadline = time.monotonic() + 120
            while httpx.get(f"{base}/api/event", params={"id": "sentinel"}).status_code != 200:
                assert time.monotonic() < deadline, "the log feed never reached the sentinel"
                time.sleep(0.3)
            metrics = httpx.get(f"{base}/metrics").text
        finally:
            stop_process(worker)
    assert "triage_rebuilds_total 1.0" in metrics  # the restarted worker rebuilt and went on
    log = open_log(url)
    try:
        totals = log.totals()
        assert totals.pop("suppressed") - 1 == backlog.totals["suppressed"]  # the sentinel
        assert totals == {o: n for o, n in backlog.totals.items() if n and o != "suppressed"}
        by_rule = {rule: sum(counts.values()) for rule, counts in log.breakdown("rule").items()}
        by_rule[orjson.loads(sentinel)["rule"]] -= 1
        assert {r: n for r, n in by_rule.items() if n} == {
            r: sum(c.values()) for r, c in backlog.by_rule.items()}
        assert log.task_count() == len(task_ids)
    finally:
        log.close()
