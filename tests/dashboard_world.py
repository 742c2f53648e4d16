"""A decided backlog for the dashboard tests: a broker, a simulated municipality, a worker that
has decided all of it, and the figures counted straight from ``triage.decisions``."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.test_worker import consume, decided, produce
from triage.decisionlog import decision_key
from triage.dev import create_topics, start_worker, stop_process, wait_ready
from triage.stream.broker import EmbeddedBroker, free_port


@dataclass
class Backlog:
    """What the worker wrote, deduplicated as the contract says (on ``event_id``)."""

    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def totals(self) -> Counter[str]:
        return Counter(d["outcome"] for d in self.decisions.values())

    @property
    def by_rule(self) -> dict[str, Counter[str]]:
        rules: dict[str, Counter[str]] = {}
        for d in self.decisions.values():
            rules.setdefault(d["rule"], Counter())[d["outcome"]] += 1
        return rules

    def about_case(self, case_id: str) -> list[dict[str, Any]]:
        return [d for d in self.decisions.values()
                if any(v["case_id"] == case_id for v in d["cases"])]


@dataclass
class Running:
    broker: EmbeddedBroker
    folder: Path
    port: int
    worker: Any
    backlog: Backlog

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def read_backlog(bootstrap: str, expected_ids: set[str | None], timeout: float = 180) -> Backlog:
    records = asyncio.run(consume(bootstrap, "triage.decisions", decided(expected_ids),
                                  timeout=timeout))
    backlog = Backlog()
    for _, value, _ in records:
        decision = orjson.loads(value)
        backlog.decisions.setdefault(decision_key(decision), decision)
    return backlog


def wait_for_log(base: str, total: int, headers: dict[str, str] | None = None,
                 timeout: float = 120) -> dict[str, Any]:
    """The page's summary once the decision log holds ``total`` decisions."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        summary = httpx.get(f"{base}/api/summary", headers=headers, timeout=10).json()
        if summary["decisions"]["total"] >= total:
            return summary
        assert time.monotonic() < deadline, summary["decisions"]
        time.sleep(0.3)


@contextmanager
def decided_backlog(folder: Path, events: int = 2_000, seed: int = 7, casesystem: bool = False,
                    **settings: str) -> Iterator[Running]:
    """A worker (extra ``TRIAGE_…`` ``settings``) that has decided a simulated backlog; with
    ``casesystem``, against the reference case system (`triage casesystem serve`)."""
    from tests.test_end_to_end import TOKEN, serve_casesystem
    from triage.simulate import simulate

    simulate(folder, seed=seed, events=events)
    lines = [line for line in (folder / "events.jsonl").read_bytes().splitlines() if line]
    labels = [orjson.loads(x) for x in (folder / "labels.jsonl").read_bytes().splitlines()]
    expected = {label["event_id"] for label in labels}
    with EmbeddedBroker(log_path=folder / "broker.log") as broker:
        create_topics(broker, partitions=3)
        server = None
        if casesystem:
            cs_port = free_port()
            server = serve_casesystem(folder / "cases.jsonl", cs_port, folder / "cs-tasks.jsonl")
            settings["casesystem_url"] = f"http://127.0.0.1:{cs_port}"
            settings["casesystem_token"] = TOKEN
        port = free_port()
        worker = start_worker(broker.bootstrap, folder, port, 3, **settings)
        try:
            wait_ready(f"http://127.0.0.1:{port}/ready", worker, log=folder / "worker.log")
            asyncio.run(produce(broker.bootstrap, lines))
            backlog = read_backlog(broker.bootstrap, expected)
            yield Running(broker, folder, port, worker, backlog)
        finally:
            stop_process(worker)
            if server is not None:
                stop_process(server)
