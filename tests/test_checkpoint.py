"""Checkpointed restarts (issue "Deployable and operable", point 5): the store refuses what it
must not use, and a worker killed after a long journal resumes from a checkpoint — replaying a
bounded number of records whatever the journal's length — with identical decisions."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import httpx
import orjson
import pytest

from tests.test_worker import consume, produce, split_by_id
from tests.test_worker_backlog import Municipality
from tests.world import World, address
from triage.dev import create_topics, start_worker, stop_process, wait_ready
from triage.stream.broker import EmbeddedBroker, free_port
from triage.stream.checkpoint import CheckpointRefused, CheckpointStore, record_digest
from triage.stream.decider import RoutedDecider


def decider_after_some_events() -> RoutedDecider:
    w = World()
    w.person("a", address("home"))
    w.person("b", address("home"))
    w.case("C1", "kontanthjaelp", "a", children=("b",))
    w.move("a", address("new"), at=0)
    decider = RoutedDecider(w.triage())
    for offset, line in enumerate(w.lines()):
        decider.apply(offset, line, None)
    return decider


def store(tmp_path: Path, **compat: object) -> CheckpointStore:
    return CheckpointStore(tmp_path, {"ruleset": "default@x", **compat})


def test_a_checkpoint_round_trips_and_only_the_newest_are_kept(tmp_path):
    s = store(tmp_path)
    decider = decider_after_some_events()
    for offset in (1, 2, 3):
        decider.next_offset = offset
        s.write(0, offset, decider, record_digest(b"x", None))
    assert [f.offset for f in s.found(0)] == [3, 2]
    assert [f.offset for f in s.found(0, upto=2)] == [2]
    loaded, digest = s.load(next(s.found(0)))
    assert digest == record_digest(b"x", None)
    assert loaded.next_offset == 3
    assert loaded.pipeline.waiting == decider.pipeline.waiting == 1  # b's move is awaited
    assert oct(next(s.found(0)).path.stat().st_mode & 0o777) == "0o600"


def test_a_damaged_forged_or_incompatible_checkpoint_is_refused(tmp_path):
    s = store(tmp_path)
    decider = decider_after_some_events()
    path = s.write(0, 1, decider, "digest")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointRefused) as damaged:
        s.load(next(s.found(0)))
    assert damaged.value.reason == "damaged"
    s.write(0, 2, decider, "digest")
    other_key = CheckpointStore(tmp_path, {"ruleset": "default@x"}, key=b"another key")
    with pytest.raises(CheckpointRefused) as forged:
        other_key.load(next(other_key.found(0)))
    assert forged.value.reason == "damaged"
    with pytest.raises(CheckpointRefused) as incompatible:
        other = store(tmp_path, ruleset="draft@y")
        other.load(next(other.found(0)))
    assert incompatible.value.reason == "incompatible"
    assert "ruleset" in str(incompatible.value)


def metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    assert found, name
    return float(found.group(1))


@pytest.mark.kafka
@pytest.mark.slow
def test_a_restart_after_a_long_journal_replays_a_bounded_tail_and_decides_the_same(tmp_path):
    municipality = Municipality(tmp_path)
    lines = municipality.arrival
    halves = [lines[: len(lines) // 2], lines[len(lines) // 2:]]
    interval = 2_000
    settings = {"checkpoint_interval": str(interval), "lateness": "1h"}
    replayed = []
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker, partitions=3)
        port = free_port()
        worker = start_worker(broker.bootstrap, tmp_path, port, 3, **settings)
        try:
            wait_ready(f"http://127.0.0.1:{port}/ready", worker)
            for n, half in enumerate(halves):
                asyncio.run(produce(broker.bootstrap, half, complete=n == 1))
                journal = len(half) + sum(len(h) for h in halves[:n])
                asyncio.run(consume(broker.bootstrap, "triage.routed",
                                    lambda r, j=journal: len(r) >= j))
                wait_until_applied(port, journal)
                os.killpg(worker.pid, signal.SIGKILL)  # a long journal behind it, no goodbye
                worker.wait()
                worker = start_worker(broker.bootstrap, tmp_path, port, 3, **settings)
                wait_ready(f"http://127.0.0.1:{port}/ready", worker)
                replayed.append(metric(port, "triage_rebuild_replayed_records"))
                # ready means rebuilt up to the end of the journal, from the checkpoint on
                assert httpx.get(f"http://127.0.0.1:{port}/ready").json()["applied"] >= journal
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
                assert "triage_checkpoint_fallbacks_total{" not in metrics  # none refused
            expected = municipality.replay(municipality.sorted)
            complete = set(expected[0])
            records = asyncio.run(consume(
                broker.bootstrap, "triage.decisions",
                lambda r: complete <= {orjson.loads(v)["event_id"] for _, v, _ in r},
                timeout=300))
        finally:
            stop_process(worker)
    # the journal doubled; what a restart replays did not grow with it
    assert all(count <= interval + 500 for count in replayed), replayed
    decisions = [orjson.loads(v) for _, v, _ in records]
    for d in decisions:
        d.pop("decided_at")
    got_by_id, _ = split_by_id(decisions)  # every repeat identical to its first
    assert {i: got_by_id[i] for i in expected[0]} == expected[0]


def wait_until_applied(port: int, journal: int, timeout: float = 240.0) -> None:
    """Until the worker's decider has applied ``journal`` records and the group has committed
    them (so a worker killed now is rebuilt up to there, not fed the journal again)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"http://127.0.0.1:{port}/ready").json()
        if min(body.get("applied", 0), body.get("committed", 0)) >= journal:
            return
        time.sleep(0.2)
    raise AssertionError(f"the worker did not apply and commit {journal} journal records")
