"""The live worker after a backlog equals replay in registered_at order (DOMAIN.md "Event time
and arrival order"), on the embedded broker.

A whole simulated municipality is produced to the input topics (three partitions each) *before*
the worker starts — the situation after any outage — and only then handed to a fresh worker. Its
decisions, deduplicated on ``event_id``, must equal those of ``triage replay`` of the same events
sorted by ``registered_at``, event for event: on three consecutive runs, with the worker killed
halfway and restarted, and with one event registered in the year 9999 at the head of the stream.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import orjson
import pytest

from tests.test_worker import consume, split_by_id
from triage.core import Outputs, Triage
from triage.dev import (
    create_topics,
    produce_lines,
    start_worker,
    stop_process,
    wait_ready,
)
from triage.models.events import InvalidEvent, parse_event
from triage.pipeline import Pipeline
from triage.rules import DEFAULT_RULES, load_ruleset
from triage.snapshot import load_reference
from triage.stream.broker import EmbeddedBroker, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
DAY = 86400.0


class Municipality:
    """A simulated municipality: its files, its events in arrival and in registered_at order,
    and what replay decides for the sorted events."""

    def __init__(self, folder: Path) -> None:
        from triage.simulate import simulate

        simulate(folder, seed=11, events=20_000)
        self.folder = folder
        self.arrival = [line for line in (folder / "events.jsonl").read_bytes().splitlines()
                        if line.strip()]
        timed = []
        for position, line in enumerate(self.arrival):
            event = parse_event(line)
            at = float("-inf") if isinstance(event, InvalidEvent) else \
                event.registered_at.timestamp()
            timed.append((at, position, line))
        timed.sort()
        self.sorted = [line for _, _, line in timed]
        self.latest = max(at for at, _, _ in timed)
        self.expected = self.replay(self.sorted)

    def replay(self, lines: list[bytes]) -> tuple[dict[str, dict], list[bytes]]:
        core = Triage(load_reference(self.folder / "persons.jsonl", self.folder / "cases.jsonl"),
                      load_ruleset(DEFAULT_RULES))
        out = Outputs()
        for chunk in Pipeline(core).run(lines):
            out.extend(chunk)
        decisions = [orjson.loads(d.to_json()) for d in out.decisions]
        for d in decisions:
            d.pop("decided_at")
        return split_by_id(decisions)


@pytest.fixture(scope="module")
def municipality(tmp_path_factory: pytest.TempPathFactory) -> Municipality:
    return Municipality(tmp_path_factory.mktemp("backlog"))


async def produce_backlog(bootstrap: str, lines: list[bytes], heartbeat_at: float) -> None:
    """Every line to its registry topic (keyed per CONTRACT.md), then a heartbeat on every input
    partition: the registries' promise that the stream is complete up to ``heartbeat_at``."""
    await produce_lines(bootstrap, lines, heartbeat_at=heartbeat_at)


def run_backlog(municipality: Municipality, tmp_path: Path, lines: list[bytes], *,
                kill_halfway: bool = False) -> tuple[dict[str, dict], list[bytes]]:
    """Produce ``lines`` as a backlog, then start a worker (killed with SIGKILL halfway and
    restarted, when asked) and collect its decisions, deduplicated on event_id."""
    expected_ids = set(municipality.expected[0])
    nameless = len(municipality.expected[1])

    def complete(records: list) -> bool:
        ids = [orjson.loads(v)["event_id"] for _, v, _ in records]
        return expected_ids <= set(ids) and ids.count(None) >= nameless

    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker, partitions=3)
        asyncio.run(produce_backlog(broker.bootstrap, lines, municipality.latest + 2 * DAY))
        port = free_port()
        worker = start_worker(broker.bootstrap, municipality.folder, port, 3)
        try:
            wait_ready(f"http://127.0.0.1:{port}/ready", worker)
            if kill_halfway:
                asyncio.run(consume(broker.bootstrap, "triage.decisions",
                                    lambda r: len(r) >= len(expected_ids) // 2, timeout=240))
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
                worker = start_worker(broker.bootstrap, municipality.folder, port, 3)
                wait_ready(f"http://127.0.0.1:{port}/ready", worker)
            records = asyncio.run(consume(broker.bootstrap, "triage.decisions", complete,
                                          timeout=300))
        finally:
            stop_process(worker)
    decisions = [orjson.loads(v) for _, v, _ in records]
    for d in decisions:
        d.pop("decided_at")
    return split_by_id(decisions)  # asserts that every repeat is identical


def assert_equal_event_for_event(got: tuple[dict[str, dict], list[bytes]],
                                 expected: tuple[dict[str, dict], list[bytes]]) -> None:
    got_by_id, got_nameless = got
    expected_by_id, expected_nameless = expected
    assert set(got_by_id) == set(expected_by_id)
    differing = [i for i in expected_by_id if got_by_id[i] != expected_by_id[i]]
    assert not differing, [(got_by_id[i]["rule"], expected_by_id[i]["rule"])
                           for i in differing[:10]]
    assert sorted(set(got_nameless)) == sorted(set(expected_nameless))


@pytest.mark.parametrize("run", [1, 2, 3])
def test_a_backlog_is_decided_as_registered_at_order(municipality, tmp_path, run):
    got = run_backlog(municipality, tmp_path, municipality.arrival)
    assert_equal_event_for_event(got, municipality.expected)


def test_a_backlog_with_the_worker_killed_halfway_is_decided_the_same(municipality, tmp_path):
    got = run_backlog(municipality, tmp_path, municipality.arrival, kill_halfway=True)
    assert_equal_event_for_event(got, municipality.expected)


def test_one_event_registered_in_the_year_9999_changes_no_other_decision(municipality,
                                                                         tmp_path):
    bogus = orjson.loads(next(x for x in municipality.sorted if b'"address_changed"' in x
                              and not isinstance(parse_event(x), InvalidEvent)))
    bogus.update(event_id="bogus-9999", registered_at="9999-12-31T23:59:59-14:00")
    lines = [orjson.dumps(bogus), *municipality.arrival]
    got_by_id, got_nameless = run_backlog(municipality, tmp_path, lines)
    rejected = got_by_id.pop("bogus-9999")
    assert (rejected["outcome"], rejected["rule"]) == ("raised", "registered-at-out-of-range")
    assert_equal_event_for_event((got_by_id, got_nameless), municipality.expected)
