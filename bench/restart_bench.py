"""``make bench`` (restart part): how long a worker killed after a long journal takes to be
ready again, at two journal lengths, with checkpoints (the default) and without.

For each (journal length, checkpoint interval): a fresh embedded broker, a worker that decides
the first N events of a simulated municipality (3 input partitions), SIGKILL once it has applied
them, then a new worker on the same data directory; reported are the seconds from its start to
``/ready`` answering 200, the rebuild time the worker measured itself
(``triage_rebuild_duration_seconds``) and the journal records it replayed
(``triage_rebuild_replayed_records``). With checkpoints both stay flat as the journal grows
(issue "Deployable and operable", point 5); without, the rebuild replays the whole journal.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import tempfile
import time
from pathlib import Path

import httpx

from triage.dev import create_topics, produce_lines, start_worker, stop_process, wait_ready
from triage.stream.broker import EmbeddedBroker, free_port

LENGTHS = (10_000, 40_000)
"""Input events; the journal also holds the worker's ticks, so checkpoints fall between."""
INTERVALS = (2_000, 0)
"""Checkpoint every 2,000 journal records (a tenth of the default 20,000, so that several fall
within these journals) and never (a full rebuild)."""


def metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else float("nan")


def rebuild_mean(port: int) -> float:
    total = metric(port, "triage_rebuild_duration_seconds_sum")
    count = metric(port, "triage_rebuild_duration_seconds_count")
    return total / count if count else float("nan")


def wait_applied(port: int, records: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).json()
        if min(body.get("applied", 0), body.get("committed", 0)) >= records:
            return  # applied and committed: a restart rebuilds up to here
        time.sleep(0.2)
    raise RuntimeError(f"the worker did not apply and commit {records} journal records")


def measure(corpus: Path, lines: list[bytes], interval: int) -> tuple[float, float, float]:
    folder = Path(tempfile.mkdtemp(prefix="restart-", dir=corpus))
    for name in ("persons.jsonl", "cases.jsonl"):
        (folder / name).symlink_to(corpus / name)
    settings = {"checkpoint_interval": str(interval), "lateness": "1h"}
    with EmbeddedBroker(log_path=folder / "broker.log") as broker:
        create_topics(broker, partitions=3)
        port = free_port()
        worker = start_worker(broker.bootstrap, folder, port, 3, **settings)
        try:
            wait_ready(f"http://127.0.0.1:{port}/ready", worker, log=folder / "worker.log")
            asyncio.run(produce_lines(broker.bootstrap, lines))
            wait_applied(port, len(lines))
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            started = time.monotonic()
            worker = start_worker(broker.bootstrap, folder, port, 3, **settings)
            wait_ready(f"http://127.0.0.1:{port}/ready", worker, log=folder / "worker.log")
            ready = time.monotonic() - started
            return ready, rebuild_mean(port), metric(port, "triage_rebuild_replayed_records")
        finally:
            stop_process(worker)


def main() -> int:
    from triage.simulate import simulate

    with tempfile.TemporaryDirectory(prefix="triage-restart-bench-") as tmp:
        corpus = Path(tmp)
        simulate(corpus, seed=3, events=max(LENGTHS))
        lines = [x for x in (corpus / "events.jsonl").read_bytes().splitlines() if x.strip()]
        print("restart after SIGKILL (seconds; 3 input partitions)")
        print(f"{'journal':>8} {'checkpoint every':>17} {'ready after':>12} "
              f"{'rebuild':>8} {'replayed':>9}")
        for interval in INTERVALS:
            for length in LENGTHS:
                ready, rebuild, replayed = measure(corpus, lines[:length], interval)
                every = f"{interval:,} records" if interval else "never"
                print(f"{length:>8,} {every:>17} {ready:>11.1f}s {rebuild:>7.2f}s "
                      f"{replayed:>9,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
