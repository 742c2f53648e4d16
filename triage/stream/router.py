"""The routing hop: every input record, unchanged, onto the journal (``triage.routed``), merged
across the input partitions in event time.

It needs none of faust's machinery, and faust's per-message overhead paid on a second hop would
halve the worker's throughput, so it is a plain aiokafka consume→produce loop run as a service of
the faust app, in its own consumer group (``<app id>-route``): every worker in the deployment
takes its share of the input partitions.

**Order.** The router does not forward records as fetched: it keeps them per partition in a
:class:`~triage.stream.merge.TimestampMerge` and always forwards the earliest ``registered_at``
among its partitions' heads, waiting (boundedly) for a partition that has nothing buffered yet,
the way Kafka Streams synchronises a task's partitions. So the journal is in event time even while
hours or days of backlog are drained from partitions that a broker serves at different speeds;
what remains out of order (within one input partition, across several routers) is left to the
decider's allowed lateness (:mod:`triage.eventtime`).

**Caught up.** The router knows, from each fetch's high watermark, whether every partition it owns
has been read to its end; the worker writes wall-clock ticks into the journal only then
(:attr:`Router.caught_up`), never while a backlog is still unread.

**Delivery** is at-least-once: a batch is produced and flushed before the input offsets of the
records *in it* are committed; records still buffered for ordering are not committed, and a
rebalance drops them (their partition's next owner reads them again). A crash can put a record
on the journal twice; the deciding stage sees the repeated ``event_id`` and skips it.

A producer heartbeat (an input record with header ``triage-kind: heartbeat`` whose value is an
RFC 3339 time *W*) is the producer's watermark: every event registered before *W* on that
partition has been published. The merge orders it like an event registered at *W*, and it goes
into the journal as a heartbeat record, which lets the decider decide everything up to *W* — a
finished batch (``triage ingest``) or a quiet stream need not wait for the wall clock.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from triage.stream.kafka_security import kafka_client_kwargs
from triage.stream.merge import Fetched, TimestampMerge, event_time
from triage.stream.settings import (
    HEARTBEAT,
    INPUT_TOPICS,
    KIND_HEADER,
    OVERSIZED,
    ROUTED_TOPIC,
    WorkerSettings,
)

HEAD_BYTES = 1024
"""How much of an oversized message the dead letter keeps."""


def oversized(message: Any, limit: int) -> bytes:
    """The journal's stand-in for an input message larger than ``limit``: its size, where it
    is (topic, partition, offset), its event id if one can be read near its start, and its
    first KiB — never the whole payload, which no stage may have to carry."""
    head = message.value[:HEAD_BYTES]
    found = _EVENT_ID.search(head)
    return orjson.dumps({
        "bytes": len(message.value), "limit": limit,
        "source": f"{message.topic}[{message.partition}]@{message.offset}",
        "event_id": found.group(1).decode("utf-8", "replace") if found else None,
        "head": head.decode("latin-1")})


_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"\\]{1,200})"')

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, router: Router) -> None:
        self.router = router

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.router.merge.clear(revoked)
        self.router.caught_up = False
        self.router.joined = False

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.router.merge.assign(assigned)
        self.router.joined = True


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
        self.joined = False
        """The router has joined its consumer group and received an assignment (maybe empty)."""
        self.caught_up = False
        """Every input partition it owns is read to its end and nothing waits in the merge."""
        self.fetched_at: float | None = None
        """When a fetch last came back (monotonic seconds): the broker answers."""
        self.merge: TimestampMerge[TopicPartition] = TimestampMerge(
            max_idle=settings.max_idle.total_seconds(),
            max_jump=settings.max_clock_jump.total_seconds())

    async def on_start(self) -> None:
        s = self.settings
        session_ms = int(s.session_timeout.total_seconds() * 1000)
        kafka = kafka_client_kwargs(s)  # TLS / SASL as configured
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap, group_id=f"{s.app_id}-route",
            enable_auto_commit=False, auto_offset_reset="earliest",
            # room to fetch (and then refuse) a message over the limit
            max_partition_fetch_bytes=max(1 << 20, 4 * s.max_message_bytes),
            fetch_max_bytes=max(50 << 20, 8 * s.max_message_bytes), **kafka,
            fetch_max_wait_ms=int(s.fetch_wait.total_seconds() * 1000),
            session_timeout_ms=session_ms, rebalance_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 6))
        self.consumer.subscribe(list(INPUT_TOPICS), listener=_Rebalance(self))
        self.producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap, linger_ms=1, acks="all",
                                         **kafka)
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

    def _last_fetch_response(self) -> float | None:
        """When a fetch last came back for any partition it owns (monotonic seconds)."""
        assert self.consumer is not None
        stamps = [self.consumer.last_poll_timestamp(tp) for tp in self.consumer.assignment()]
        stamps = [s for s in stamps if s]
        if not stamps:
            return self.fetched_at
        return time.monotonic() - max(0.0, time.time() - max(stamps) / 1000)

    def assignment(self) -> list[str]:
        if self.consumer is None:
            return []
        return [f"{tp.topic}:{tp.partition}" for tp in self.consumer.assignment()]

    async def _partition_caught_up(self, tp: TopicPartition) -> bool:
        """Nothing unread at the broker for ``tp`` (from the last fetch's high watermark)."""
        assert self.consumer is not None
        highwater = self.consumer.highwater(tp)
        if highwater is None:
            return False
        try:
            return bool(await self.consumer.position(tp) >= highwater)
        except Exception:  # the partition moved away in a rebalance
            return False

    @Service.task
    async def _route(self) -> None:
        assert self.consumer is not None and self.producer is not None
        consumer, merge = self.consumer, self.merge
        while not self.should_stop:
            # a short fetch while records wait in the merge for a quiet partition
            wait_ms = 10 if len(merge) else 100
            fetched = await consumer.getmany(timeout_ms=wait_ms, max_records=2000)
            self.fetched_at = self._last_fetch_response()
            for tp, messages in fetched.items():
                merge.add(tp, [self._fetched(m) for m in messages])
            assigned = consumer.assignment()
            caught = {tp: await self._partition_caught_up(tp)
                      for tp in assigned if not merge.buffered(tp)}
            ready = merge.pop(lambda tp, c=caught: c.get(tp, False))  # type: ignore[misc]
            self.caught_up = self.joined and not len(merge) and all(caught.values())
            if ready:
                await self._forward(ready)

    def _fetched(self, message: Any) -> Fetched:
        value = message.value or b""
        if len(value) > self.settings.max_message_bytes:
            return Fetched(message.offset, oversized(message, self.settings.max_message_bytes),
                           kind=OVERSIZED)
        heartbeat = any(k == KIND_HEADER and v == HEARTBEAT for k, v in message.headers or ())
        return Fetched(message.offset, value, HEARTBEAT if heartbeat else None,
                       event_time(value, heartbeat))

    async def _forward(self, ready: list[tuple[TopicPartition, Fetched]]) -> None:
        """Append ``ready`` to the journal in order; then commit exactly what was forwarded."""
        assert self.consumer is not None and self.producer is not None
        producer = self.producer
        sent = []
        batch = producer.create_batch()
        offsets: dict[TopicPartition, int] = {}
        for tp, record in ready:
            if record.kind is not None:
                # a heartbeat (with its time) or an oversized message's stand-in travels
                # alone, as a record with a kind header
                if batch.record_count():
                    sent.append(await producer.send_batch(batch, ROUTED_TOPIC,
                                                          partition=self.partition))
                value = repr(record.at).encode() if record.kind == HEARTBEAT else record.value
                sent.append(await producer.send(
                    ROUTED_TOPIC, key=self.key, value=value, partition=self.partition,
                    headers=[(KIND_HEADER, record.kind)]))
                batch = producer.create_batch()
            elif batch.append(key=self.key, value=record.value, timestamp=None) is None:
                sent.append(await producer.send_batch(batch, ROUTED_TOPIC,
                                                      partition=self.partition))
                batch = producer.create_batch()
                batch.append(key=self.key, value=record.value, timestamp=None)
            offsets[tp] = record.offset + 1
            self.routed += 1
        if batch.record_count():
            sent.append(await producer.send_batch(batch, ROUTED_TOPIC,
                                                  partition=self.partition))
        for delivery in sent:
            await delivery  # on the journal before the input offsets are committed
        try:
            await self.consumer.commit({tp: OffsetAndMetadata(offset, "")
                                        for tp, offset in offsets.items()})
        except (CommitFailedError, IllegalStateError) as exc:
            # a rebalance took the partitions meanwhile: their next owner forwards the same
            # records again, and the decider skips the repeated event ids
            log.warning("router commit after a rebalance failed: %s", type(exc).__name__)
