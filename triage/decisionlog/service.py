"""Feeding the decision log from Kafka, inside the worker.

:class:`DecisionLogFeed` is a service of the worker's faust app with its own consumer group
(``<app id>-decisionlog`` unless ``TRIAGE_DECISION_LOG_GROUP`` says otherwise). It reads
``triage.decisions`` and ``triage.tasks``, writes each batch to the log in one transaction and
commits the offsets only after that: at-least-once into a store whose primary keys make a
repeat a no-op, so every decision is in the log exactly once, whether the repeat came from a
redelivery, this consumer's restart or the worker re-deciding after a crash.

The log never stops the decider: when the database is unreachable the feed waits and retries
(the offsets stay uncommitted, nothing is skipped), and the page says the log is behind.

Retention runs here too: every ``retention / 24`` (at most hourly, at least every minute) the
feed deletes what was *decided* longer than ``TRIAGE_DECISION_RETENTION`` ago (``decided_at``,
not ``registered_at``: a backlog of year-old events replayed today stays as long as anything
decided today).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from mode import Service

from triage.decisionlog.records import DecisionRow, TaskRow, decision_row, task_row
from triage.decisionlog.store import DecisionLog, open_log

log = logging.getLogger(__name__)
T = TypeVar("T")
TOPICS = ("triage.decisions", "triage.tasks")


class AsyncLog:
    """A :class:`DecisionLog` driven from asyncio: every call runs on one dedicated thread, so
    the connection is used by one thread at a time and the event loop never blocks on SQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="decisionlog")
        self._log: DecisionLog | None = None

    def _open(self) -> DecisionLog:
        if self._log is None:
            self._log = open_log(self.url)
        return self._log

    async def call(self, method: Callable[[DecisionLog], T]) -> T:
        """Run ``method(log)`` on the log's thread (opening the log on first use). A failure
        drops the connection, so the next call reconnects (a restarted database server)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(self._run, method))

    async def off_loop(self, function: Callable[[], T]) -> T:
        """Run ``function()`` on the log's thread, without the log (work that must not hold the
        event loop, such as decoding a batch)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    def _run(self, method: Callable[[DecisionLog], T]) -> T:
        log = self._open()
        try:
            return method(log)
        except Exception:
            self._log = None
            with contextlib.suppress(Exception):  # already broken: nothing to close
                log.close()
            raise

    async def aclose(self) -> None:
        def close() -> None:
            if self._log is not None:
                self._log.close()
                self._log = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)


class DecisionLogFeed(Service):
    """``triage.decisions`` and ``triage.tasks`` into the decision log, idempotently."""

    def __init__(self, store: AsyncLog, *, bootstrap: str, group_id: str,
                 retention: timedelta, fetch_wait_ms: int = 10, session_timeout_ms: int = 3000,
                 client_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client_kwargs = client_kwargs or {}
        self.store = store
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.retention = retention
        self.fetch_wait_ms = fetch_wait_ms
        self.session_timeout_ms = session_timeout_ms
        self.consumer: AIOKafkaConsumer | None = None
        self.written = 0
        """Decisions this feed stored (new ones; repeats are not counted)."""
        self.unusable = 0
        self.last_write: float | None = None
        self.error: str | None = None
        """The last database error, while the log is unavailable; None when healthy."""

    async def on_start(self) -> None:
        session = self.session_timeout_ms
        self.consumer = AIOKafkaConsumer(
            *TOPICS, bootstrap_servers=self.bootstrap, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_wait_ms, session_timeout_ms=session,
            rebalance_timeout_ms=session, heartbeat_interval_ms=max(100, session // 6),
            **self.client_kwargs)
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        await self.store.aclose()

    @Service.task
    async def _feed(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        while not self.should_stop:
            batch = await consumer.getmany(timeout_ms=200, max_records=2000)
            if not batch:
                continue
            # decoded on the log's thread: a batch of 2,000 decoded here held the event loop —
            # the decider's — for tens of milliseconds (issue 13, the worker's p99)
            decisions, tasks = await self.store.off_loop(partial(self._rows, batch))
            await self._write(decisions, tasks)
            await consumer.commit()

    def _rows(self, batch: dict[Any, list[Any]]) -> tuple[list[DecisionRow], list[TaskRow]]:
        """The rows of a ``getmany`` batch; a record that is none is counted and logged, never
        a crash."""
        decisions: list[DecisionRow] = []
        tasks: list[TaskRow] = []
        for tp, messages in batch.items():
            for message in messages:
                try:
                    if tp.topic == "triage.tasks":
                        tasks.append(task_row(message.value))
                    else:
                        decisions.append(decision_row(message.value))
                except Exception as exc:  # UnusableRecord, or a bug: never a crash
                    self.unusable += 1
                    log.warning("%s offset %d is no %s (%s): not logged", tp.topic,
                                message.offset, tp.topic.removeprefix("triage.")[:-1], exc)
        return decisions, tasks

    async def _write(self, decisions: list[DecisionRow], tasks: list[TaskRow]) -> None:
        pause = 0.5
        while True:
            try:
                self.written += await self.store.call(partial(DecisionLog.write,
                                                              decisions=decisions, tasks=tasks))
                self.last_write = time.time()
                self.error = None
                return
            except Exception as exc:  # the database: unreachable, locked, restarting
                self.error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("decision log write failed, retrying in %.1f s: %s", pause,
                            self.error)
                if self.should_stop:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)

    @Service.task
    async def _retain(self) -> None:
        every = min(max(self.retention.total_seconds() / 24, 60.0), 3600.0)
        while not self.should_stop:
            cutoff = datetime.now(UTC) - self.retention
            try:
                removed = await self.store.call(partial(DecisionLog.prune, before=cutoff))
                if removed["decisions"] or removed["tasks"]:
                    log.info("decision log retention: removed %d decisions, %d tasks decided "
                             "before %s", removed["decisions"], removed["tasks"],
                             cutoff.isoformat())
            except Exception as exc:
                log.warning("decision log retention failed: %s: %s", type(exc).__name__, exc)
            await self.sleep(every)

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the fetch high watermark, per assigned partition."""
        from triage.stream.lag import aiokafka_lag

        return aiokafka_lag(self.consumer)


def attach(app: Any, worker: Any) -> DecisionLogFeed | None:
    """Run the decision-log feed as a service of ``app`` for ``worker``'s settings; None when
    ``TRIAGE_DECISION_LOG=off``. A URL of an unknown kind stops the start, with its reason."""
    from triage.decisionlog.store import check_url

    s = worker.settings
    url = s.decision_log_url
    if url is None:
        return None
    check_url(url)
    session_ms = int(s.session_timeout.total_seconds() * 1000)
    feed = DecisionLogFeed(
        AsyncLog(url), bootstrap=s.bootstrap,
        group_id=s.decision_log_group or f"{s.app_id}-decisionlog",
        retention=s.decision_retention,
        fetch_wait_ms=int(s.fetch_wait.total_seconds() * 1000), session_timeout_ms=session_ms,
        client_kwargs=worker.kafka, loop=app.loop, beacon=app.beacon)
    app.service(feed)
    worker.metrics.lag_sources.append(feed.lag)
    return feed
