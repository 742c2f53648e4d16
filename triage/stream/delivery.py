"""Task delivery: raised tasks from ``triage.tasks`` to the case system, at least once.

A service of the worker app with its own consumer group (``<app id>-deliver``). Each task is
``PUT`` to the case system by its ``task_id`` — idempotent there, so a repeat after a crash or a
retry creates nothing new — and its offset is committed only once the case system has answered
for it. While the case system is unavailable, or refuses the worker's credentials (401/403: an
operator must fix the token; nothing may be skipped meanwhile), the same task is retried with
growing pauses (up to 30 s).

A **conflict** (409) means the case system holds a *different* task under this id. Task ids are
keyed hashes (:mod:`triage.task_ids`), so this is a bug or a task planted by someone who has
the key: it is logged as an alert and counted ``result="conflict"`` — never taken for a repeat
— and delivery goes on. A task the case system rejects as invalid (422, 413, …) cannot succeed
by retrying: it is logged as an error, counted ``result="failed"``, and skipped.

Metric (in the worker's registry, served on ``/metrics``):
``triage_tasks_delivered_total{result}`` with ``result`` one of ``accepted`` (created),
``repeat`` (the case system already had exactly this task), ``conflict``, ``failed`` (an
attempt that failed: unavailable, credentials refused, or rejected).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from mode import Service

from connectors.casesystem.client import (
    CaseSystemClient,
    CaseSystemError,
    TaskConflict,
    TaskRejected,
)
from triage.stream.kafka_security import kafka_client_kwargs
from triage.stream.metrics import WorkerMetrics
from triage.stream.settings import WorkerSettings

log = logging.getLogger(__name__)

RESULTS = ("accepted", "repeat", "conflict", "failed")
RETRY_STATUSES = frozenset({401, 403})
"""Rejections that retrying can cure (the credentials are fixed by an operator)."""


class TaskDelivery(Service):
    def __init__(self, settings: WorkerSettings, client: CaseSystemClient,
                 metrics: WorkerMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.client = client
        self.metrics = metrics
        for result in RESULTS:  # every result shows as 0 before it first happens
            metrics.delivered.labels(result)
        self.consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        s = self.settings
        session_ms = int(s.session_timeout.total_seconds() * 1000)
        self.consumer = AIOKafkaConsumer(
            "triage.tasks", bootstrap_servers=s.bootstrap, group_id=f"{s.app_id}-deliver",
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=int(s.fetch_wait.total_seconds() * 1000),
            session_timeout_ms=session_ms, rebalance_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 6), **kafka_client_kwargs(s))
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    @Service.task
    async def _deliver(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        while not self.should_stop:
            batch = await consumer.getmany(timeout_ms=200, max_records=200)
            for messages in batch.values():
                for message in messages:
                    await self._deliver_one(orjson.loads(message.value))
            if batch:
                await consumer.commit()

    async def _deliver_one(self, task: dict[str, Any]) -> None:
        pause = 0.5
        task_id = task.get("task_id")
        while not self.should_stop:
            try:
                created = await self.client.deliver(task)
                self.metrics.delivered.labels("accepted" if created else "repeat").inc()
                return
            except TaskConflict as exc:
                self.metrics.delivered.labels("conflict").inc()
                log.error("ALERT: task %s was not delivered: the case system holds a different "
                          "task under its id (possibly planted); it is not counted as "
                          "delivered. %s", task_id, exc)
                return
            except TaskRejected as exc:
                self.metrics.delivered.labels("failed").inc()
                if exc.status not in RETRY_STATUSES:
                    log.error("task %s was rejected by the case system and is skipped: %s",
                              task_id, exc)
                    return
                log.error("the case system refused the worker's credentials; task %s is "
                          "retried in %.1f s: %s", task_id, pause, exc)
            except CaseSystemError as exc:
                self.metrics.delivered.labels("failed").inc()
                log.warning("task delivery failed, retrying in %.1f s: %s", pause, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)
