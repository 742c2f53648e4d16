"""The streaming worker against a real Tansu broker: the worker runs as its own process
(`triage worker`), events go in as Kafka messages, decisions come out of Kafka.

The broker tests check only the wiring; what is decided is the core's business and tested
without a broker. Each test starts its own broker (it takes milliseconds) so topics never mix.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from tests.world import World, address
from triage.core import Triage
from triage.dev import (
    create_topics,
    produce_lines,
    start_worker,
    stop_process,
    wait_ready,
)
from triage.models.events import InvalidEvent, parse_event
from triage.rules import DEFAULT_RULES, load_ruleset
from triage.snapshot import load_reference
from triage.stream.app import header
from triage.stream.broker import EmbeddedBroker, free_port
from triage.stream.decider import RoutedDecider
from triage.stream.settings import INPUT_TOPICS, KIND_HEADER, ROUTED_TOPIC, TICK

pytestmark = pytest.mark.kafka
OUR_TOPICS = {*INPUT_TOPICS, ROUTED_TOPIC}

HOME, NEW, HOME2 = address("home"), address("new"), address("home2")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as running:
        create_topics(running, partitions=3)
        yield running


def write_reference(w: World, folder: Path) -> None:
    persons, _ = w.records()
    (folder / "persons.jsonl").write_bytes(b"".join(
        p.model_dump_json(by_alias=True).encode() + b"\n" for p in persons))
    (folder / "cases.jsonl").write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in w.cases))


async def produce(bootstrap: str, lines: list[bytes], *, complete: bool = True) -> None:
    """Every line to its registry topic, keyed per CONTRACT.md. ``complete``: then a heartbeat
    on every input partition two days after the last event — the registries' promise that the
    stream is complete, which lets the worker decide its tail (every household window closes),
    as replay does at the end of its file."""
    await produce_lines(bootstrap, lines, heartbeat_at=latest_registered_at(lines) + 2 * 86400
                        if complete else None)


def latest_registered_at(lines: list[bytes]) -> float:
    parsed = (parse_event(line) for line in lines)
    return max(e.registered_at.timestamp() for e in parsed if not isinstance(e, InvalidEvent))


async def consume(bootstrap: str, topic: str, until: object, timeout: float = 90.0,
                  ) -> list[tuple[bytes | None, bytes, object]]:
    """Records of ``topic`` from the start until ``until(records)`` holds (or time is up)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=20)
    await consumer.start()
    records: list[tuple[bytes | None, bytes, object]] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(records):  # type: ignore[operator]
            assert time.monotonic() < deadline, f"{topic}: only {len(records)} records"
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                records += [(m.key, m.value, m.headers) for m in messages]
        return records
    finally:
        await consumer.stop()


def decided(ids: set[str | None]) -> object:
    return lambda records: ids <= {orjson.loads(v)["event_id"] for _, v, _ in records}


def scenario() -> tuple[World, dict[str, list[str]]]:
    """A family of four moving together, a household of three that splits, bad lines."""
    w = World()
    for name in ("mor", "far", "barn1", "barn2"):
        w.person(name, HOME)
    w.case("C1", "kontanthjaelp", "mor", spouse="far", children=("barn1", "barn2"))
    for name in ("a", "b", "c"):
        w.person(name, HOME2)
    w.case("C2", "ressourceforloebsydelse", "a", children=("b",))
    together = [w.move(n, NEW, at=i * 0.5) for i, n in enumerate(("mor", "far", "barn1",
                                                                   "barn2"))]
    split = [w.move("a", address("x"), at=1), w.move("b", address("x"), at=1.2),
             w.move("c", address("elsewhere"), at=1.4)]
    later = [w.atp("mor", "income_reported", at=3, amount=100.0, income_type="wage",
                   period="2025-02")]
    return w, {"together": together, "split": split, "later": later}


def test_family_moves_split_and_malformed_messages_through_kafka(broker, tmp_path):
    w, ids = scenario()
    write_reference(w, tmp_path)
    lines = w.lines()
    random.Random(4).shuffle(lines)
    malformed = [b"not json at all", b'{"event_id": "bad-1", "source": "skat"}']
    lines = lines[:3] + malformed + lines[3:]
    port = free_port()
    worker = start_worker(broker.bootstrap, tmp_path, port, 3)
    try:
        wait_ready(f"http://127.0.0.1:{port}/ready", worker)
        asyncio.run(produce(broker.bootstrap, lines))
        every = {e["event_id"] for e in w.events} | {"bad-1", None}
        records = asyncio.run(consume(broker.bootstrap, "triage.decisions", decided(every)))
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        stop_process(worker)
    assert worker.returncode == 0  # SIGTERM: a graceful shutdown, not a crash
    decisions = {orjson.loads(v)["event_id"]: orjson.loads(v) for _, v, _ in records}
    assert {decisions[i]["outcome"] for i in ids["together"]} == {"suppressed"}
    assert {decisions[i]["outcome"] for i in ids["split"]} == {"raised"}
    assert decisions[ids["later"][0]]["outcome"] == "raised"  # decided after the bad lines
    assert decisions[None]["outcome"] == decisions["bad-1"]["outcome"] == "invalid"
    dead = asyncio.run(consume(broker.bootstrap, "triage.deadletter",
                               lambda r: len(r) >= 2))
    assert sorted(v for _, v, _ in dead) == sorted(malformed)
    assert all(header(h, "triage-error") for _, _, h in dead)
    assert ('triage_decisions_total{outcome="suppressed",rule="husstand-flyttet-samlet",'
            'type="address_changed",unit="jobcenter"} 4.0') in metrics
    assert 'triage_deadletters_total{reason="invalid"} 2.0' in metrics
    journal = asyncio.run(consume(broker.bootstrap, "triage.routed",
                                  lambda r: len(r) >= len(lines)))
    assert_worker_equals_journal_replay(tmp_path, journal, records)


def assert_worker_equals_journal_replay(folder: Path, journal: list, records: list) -> None:
    """The worker is a thin adapter: replaying its journal through the same decider in journal
    order gives exactly its decisions (all but the wall-clock stamp)."""
    decider = RoutedDecider(Triage(load_reference(folder / "persons.jsonl",
                                                  folder / "cases.jsonl"),
                                   load_ruleset(DEFAULT_RULES)))
    expected = []
    for offset, (_, value, headers) in enumerate(journal):
        out = decider.apply(offset, value, header(headers, KIND_HEADER))
        assert out is not None
        expected += [orjson.loads(d.to_json()) for d in out.decisions]
    expected += [orjson.loads(d.to_json()) for d in decider.pipeline.flush().decisions]
    got = [orjson.loads(v) for _, v, _ in records]
    for d in expected + got:
        d.pop("decided_at")
    assert split_by_id(got) == split_by_id(expected)


def split_by_id(decisions: list[dict]) -> tuple[dict[str, dict], list[bytes]]:
    """Decisions by event id (a repeat must be identical) and the nameless ones (lines without
    an event id cannot be deduplicated) as a sorted list."""
    by_id: dict[str, dict] = {}
    nameless = []
    for d in decisions:
        if d["event_id"] is None:
            nameless.append(orjson.dumps(d, option=orjson.OPT_SORT_KEYS))
        else:
            assert by_id.setdefault(d["event_id"], d) == d
    return by_id, sorted(nameless)


@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing_and_repeats_only_identical_outputs(broker, tmp_path):
    from triage.simulate import simulate

    simulate(tmp_path, seed=3, events=20_000)
    lines = [line for line in (tmp_path / "events.jsonl").read_bytes().splitlines() if line]
    labels = [orjson.loads(x) for x in (tmp_path / "labels.jsonl").read_bytes().splitlines()]
    expected_ids = {label["event_id"] for label in labels}
    port = free_port()
    worker = start_worker(broker.bootstrap, tmp_path, port, 3)
    try:
        wait_ready(f"http://127.0.0.1:{port}/ready", worker)
        asyncio.run(produce(broker.bootstrap, lines))
        asyncio.run(consume(broker.bootstrap, "triage.decisions",
                            lambda r: len(r) >= len(expected_ids) // 3))
        os.killpg(worker.pid, signal.SIGKILL)  # mid-stream: no goodbye, no commit
        worker.wait()
        worker = start_worker(broker.bootstrap, tmp_path, port, 3)
        wait_ready(f"http://127.0.0.1:{port}/ready", worker)
        records = asyncio.run(consume(broker.bootstrap, "triage.decisions",
                                      decided(expected_ids), timeout=240))
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        stop_process(worker)
    assert "triage_rebuilds_total 1.0" in metrics  # the restarted worker rebuilt from the journal
    by_id: dict[object, dict] = {}
    for _, value, _ in records:
        decision = orjson.loads(value)
        decision.pop("decided_at")
        assert by_id.setdefault(decision["event_id"], decision) == decision or \
            decision["event_id"] is None
    assert set(by_id) == expected_ids  # nothing lost
    task_ids = {v["task_id"] for d in by_id.values() for v in d["cases"] if v["task_id"]}
    assert len(task_ids) > 100
    tasks = asyncio.run(consume(
        broker.bootstrap, "triage.tasks",
        lambda r: task_ids <= {orjson.loads(v)["task_id"] for _, v, _ in r}, timeout=30))
    seen: dict[str, dict] = {}
    for _, value, _ in tasks:  # deduplicated on task_id, a repeat is the same task
        task = orjson.loads(value)
        task.pop("created_at")
        assert seen.setdefault(task["task_id"], task) == task
    assert set(seen) == task_ids


@pytest.mark.slow
def test_two_workers_share_the_input_and_decide_as_replay_of_the_journal(broker, tmp_path):
    from triage.simulate import simulate

    simulate(tmp_path, seed=5, events=3_000)
    lines = [line for line in (tmp_path / "events.jsonl").read_bytes().splitlines() if line]
    labels = [orjson.loads(x) for x in (tmp_path / "labels.jsonl").read_bytes().splitlines()]
    expected_ids = {label["event_id"] for label in labels}
    ports = [free_port(), free_port()]
    workers = [start_worker(broker.bootstrap, tmp_path, port, 3) for port in ports]
    try:
        for port, worker in zip(ports, workers, strict=True):
            wait_ready(f"http://127.0.0.1:{port}/ready", worker)
        assignments = wait_for_balanced_assignment(ports)
        asyncio.run(produce(broker.bootstrap, lines))
        records = asyncio.run(consume(broker.bootstrap, "triage.decisions",
                                      decided(expected_ids), timeout=120))
    finally:
        for worker in workers:
            stop_process(worker)
    inputs = [{a for a in assigned if not a.startswith("triage.routed")}
              for assigned in assignments]
    assert all(inputs) and not inputs[0] & inputs[1]  # both share the input partitions
    assert sum("triage.routed:0" in a for a in assignments) == 1  # one decides
    journal = asyncio.run(consume(broker.bootstrap, "triage.routed",
                                  lambda r: len(r) >= len(lines)))
    assert_worker_equals_journal_replay(tmp_path, journal, records)


def wait_for_balanced_assignment(ports: list[int], timeout: float = 60.0) -> list[set[str]]:
    """Each worker's assignment once every input and journal partition is owned by one."""
    deadline = time.monotonic() + timeout
    while True:
        assignments = [{a for a in httpx.get(f"http://127.0.0.1:{p}/ready").json()["assigned"]
                        if a.split(":")[0] in OUR_TOPICS} for p in ports]
        owned = [a for assigned in assignments for a in assigned]
        if len(owned) == len(set(owned)) == 3 * 3 + 1 and all(assignments):
            return assignments
        assert time.monotonic() < deadline, assignments
        time.sleep(0.2)


def test_a_quiet_stream_still_closes_a_household_move_by_the_wall_clock(broker, tmp_path):
    w = World()
    for name in ("a", "b"):
        w.person(name, HOME)
    w.case("C1", "kontanthjaelp", "a")
    only_one = w.move("a", NEW, at=0)  # b never moves, and nothing else happens
    write_reference(w, tmp_path)
    port = free_port()
    worker = start_worker(broker.bootstrap, tmp_path, port, 3, window="2s", tick="200ms",
                          lateness="0")
    try:
        wait_ready(f"http://127.0.0.1:{port}/ready", worker)
        asyncio.run(produce(broker.bootstrap, w.lines(), complete=False))
        started = time.monotonic()
        records = asyncio.run(consume(broker.bootstrap, "triage.decisions",
                                      decided({only_one}), timeout=30))
        waited = time.monotonic() - started
    finally:
        stop_process(worker)
    decision = orjson.loads(records[0][1])
    assert (decision["outcome"], decision["rule"]) == ("raised", "husstand-splittet")
    assert waited >= 1.0  # it waited for the window, by the wall clock
    journal = asyncio.run(consume(broker.bootstrap, "triage.routed", lambda r: len(r) >= 2))
    assert any(header(h, KIND_HEADER) == TICK for _, _, h in journal)


@pytest.mark.slow
def test_triage_dev_runs_the_whole_embedded_default_equals_replay_and_stops_everything(tmp_path):
    """``make demo`` as a new user runs it (the default 20,000 events at the default pace),
    until everything is decided: the worker's final figures equal ``triage replay`` of the same
    demo files, and nothing is left running."""
    import subprocess
    import sys

    port = free_port()
    demo = tmp_path / "demo"
    run = subprocess.run(
        [sys.executable, "-m", "triage.cli", "dev", "--dir", str(demo),
         "--web-port", str(port), "--exit-when-done"],
        capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    out = re.sub(r"[│┃]\s*\n\s*[│┃]", " ", run.stdout)  # the table wraps long cells
    shown = {name: int(value.replace(",", "")) for name, value in re.findall(
        r"(decisions|suppressed|raised|invalid|tasks)\s*│\s*([\d,]+)", out)}
    replay = subprocess.run(
        [sys.executable, "-m", "triage.cli", "replay", str(demo / "events.jsonl"),
         "--persons", str(demo / "persons.jsonl"), "--cases", str(demo / "cases.jsonl"),
         "--out", str(tmp_path / "decisions.jsonl"), "--tasks", str(tmp_path / "tasks.jsonl"),
         "--quiet"], capture_output=True, text=True, timeout=300, check=True)
    assert replay.returncode == 0
    decisions = [orjson.loads(x) for x in (tmp_path / "decisions.jsonl").read_bytes().splitlines()]
    tasks = (tmp_path / "tasks.jsonl").read_bytes().splitlines()
    for outcome in ("suppressed", "raised", "invalid"):
        assert shown[outcome] == sum(d["outcome"] == outcome for d in decisions), outcome
    assert shown["decisions"] == len(decisions)
    assert shown["tasks"] == len(tasks)
    assert "tasks: equal" in " ".join(run.stdout.split())
    assert f"http://127.0.0.1:{port}/metrics" in run.stdout
    with pytest.raises(httpx.HTTPError):  # the worker is gone
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0)
