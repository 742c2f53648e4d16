"""The routing hop: every input record, unchanged, onto the journal (``triage.routed``).

It is stateless, so it needs none of faust's machinery, and faust's per-message overhead paid on
a second hop would halve the worker's throughput (``make bench``: a bare faust agent moves ~4.7k
messages/s here, a plain aiokafka loop ~39k). So it is a plain aiokafka consume→produce loop,
run as a service of the faust app, in its own consumer group (``<app id>-route``): every worker
in the deployment takes its share of the input partitions.

Delivery is at-least-once: a batch is produced and flushed before its input offsets are
committed. A crash can put a record on the journal twice; the deciding stage sees the repeated
``event_id`` and skips it, exactly like any other redelivery.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from mode import Service

from triage.stream.settings import INPUT_TOPICS, ROUTED_TOPIC, WorkerSettings


class Router(Service):
    """Consumes the input topics and appends each record to the journal partition."""

    def __init__(self, settings: WorkerSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.key = settings.municipality.encode()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.partition = 0
        self.routed = 0

    async def on_start(self) -> None:
        s = self.settings
        session_ms = int(s.session_timeout.total_seconds() * 1000)
        self.consumer = AIOKafkaConsumer(
            *INPUT_TOPICS, bootstrap_servers=s.bootstrap, group_id=f"{s.app_id}-route",
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=int(s.fetch_wait.total_seconds() * 1000),
            session_timeout_ms=session_ms, rebalance_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 6))
        self.producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap, linger_ms=1, acks="all")
        await self.producer.start()
        partitions = sorted(await self.producer.partitions_for(ROUTED_TOPIC))
        # the partition a keyed send would pick, computed once: records are appended in
        # batches to that partition rather than hashed one by one
        self.partition = DefaultPartitioner()(self.key, partitions, partitions)
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    def assignment(self) -> list[str]:
        if self.consumer is None:
            return []
        return [f"{tp.topic}:{tp.partition}" for tp in self.consumer.assignment()]

    @Service.task
    async def _route(self) -> None:
        assert self.consumer is not None and self.producer is not None
        consumer, producer = self.consumer, self.producer
        while not self.should_stop:
            fetched = await consumer.getmany(timeout_ms=100, max_records=2000)
            if not fetched:
                continue
            sent = []
            batch = producer.create_batch()
            for messages in fetched.values():
                for message in messages:
                    if batch.append(key=self.key, value=message.value, timestamp=None) is None:
                        sent.append(await producer.send_batch(batch, ROUTED_TOPIC,
                                                              partition=self.partition))
                        batch = producer.create_batch()
                        batch.append(key=self.key, value=message.value, timestamp=None)
                    self.routed += 1
            sent.append(await producer.send_batch(batch, ROUTED_TOPIC, partition=self.partition))
            for delivery in sent:
                await delivery  # on the journal before the input offsets are committed
            await consumer.commit()
