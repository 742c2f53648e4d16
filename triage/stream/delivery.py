"""Task delivery: raised tasks from ``triage.tasks`` to the case system, at least once.

A service of the worker app with its own consumer group (``<app id>-deliver``). Each task is
``PUT`` to the case system by its ``task_id`` — idempotent there, so a repeat after a crash or a
retry creates nothing new — and its offset is committed only once the case system has accepted
it. While the case system is unavailable the same tasks are retried with growing pauses (up to
30 s); nothing is skipped. A task the case system rejects as conflicting (the same id with
another case) is logged and counted, never retried forever.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from mode import Service

from connectors.casesystem.client import CaseSystemClient, CaseSystemError, TaskConflict
from triage.stream.metrics import WorkerMetrics
from triage.stream.settings import WorkerSettings

log = logging.getLogger(__name__)


class TaskDelivery(Service):
    def __init__(self, settings: WorkerSettings, client: CaseSystemClient,
                 metrics: WorkerMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self.consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        s = self.settings
        session_ms = int(s.session_timeout.total_seconds() * 1000)
        self.consumer = AIOKafkaConsumer(
            "triage.tasks", bootstrap_servers=s.bootstrap, group_id=f"{s.app_id}-deliver",
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=int(s.fetch_wait.total_seconds() * 1000),
            session_timeout_ms=session_ms, rebalance_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 6))
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
        while not self.should_stop:
            try:
                created = await self.client.deliver(task)
                self.metrics.delivered.labels("accepted" if created else "repeat").inc()
                return
            except TaskConflict as exc:
                self.metrics.delivered.labels("conflict").inc()
                log.error("task %s conflicts with the case system's: %s", task.get("task_id"),
                          exc)
                return
            except CaseSystemError as exc:
                self.metrics.delivered.labels("failed").inc()
                log.warning("task delivery failed, retrying in %.1f s: %s", pause, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
