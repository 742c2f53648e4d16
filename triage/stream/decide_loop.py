"""The deciding hop: the journal (``triage.routed``) through the core onto the output topics, on
a plain aiokafka consume→decide→produce loop.

Issue 13 measured faust's per-message machinery — its consumer thread, the stream and the
conductor on the way in, ``Topic.send`` on the way out — at several times the cost of the core
itself: a faust agent that only forwards reached ≈ 2,000–4,600 records/s on the embedded broker
where a plain aiokafka loop forwards ≈ 18,000–32,000. So the deciding stage, like the router
(:mod:`triage.stream.router`), is a plain aiokafka loop run as a service of the faust app; faust
still serves the web port, the tick timer and the journal writes of ticks and operator changes.

**Group.** The loop consumes in its own consumer group, ``<app id>-decide``: every worker of a
deployment joins it, and each journal partition is decided by exactly one of them.

**Upgrading** from a worker whose decider was a faust agent (group ``<app id>``): a journal
partition the new group has no offset for starts where the old group committed (adopted at start,
:meth:`DecideLoop.adopt_legacy_offsets`), so an upgrade neither re-decides the journal nor skips.

**Delivery** is at-least-once, as before: the outputs of a record are handed to the producer
before the record counts as done; an offset is committed only after every output of the records
before it is on the broker — at most every ``commit_interval`` while records flow, at once when
the journal goes quiet, before partitions are handed to another worker, and at a graceful stop.
A crash can therefore repeat outputs, never lose one (consumers deduplicate on ``event_id`` and
``task_id``, both deterministic).

**Faults.** An output the broker refuses as too large is replaced by a dead letter that says so.
Any other failure — of the core on a record, or of a delivery — stops the worker loudly
(:meth:`~triage.stream.health.WorkerHealth.stop_loudly`): the record's offset is not committed,
so the next start rebuilds and meets the same record again rather than skip it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from triage.stream.settings import ROUTED_TOPIC, WorkerSettings

log = logging.getLogger(__name__)

DEADLETTER_TOPIC = "triage.deadletter"


@dataclass(slots=True)
class Outgoing:
    """One output record: where it goes and what it carries."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


Step = Callable[[int, int, bytes, Any, int], Awaitable[list[Outgoing]]]
"""``step(partition, offset, value, headers, timestamp_ms)``: one journal record decided."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: DecideLoop) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.loop.revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.loop.assigned(assigned)


class DecideLoop(Service):
    """Consumes the journal, hands every record to ``step`` and produces what it returns.

    ``on_assigned(partitions)`` and ``on_revoked(partitions)`` (journal partition numbers) tell
    the worker about rebalances; :attr:`committed` is the group's committed offset by journal
    partition, as this loop last committed or read it. ``fatal(reason)`` is called, once, when
    the loop cannot go on; the loop then stops consuming (the worker passes
    :meth:`~triage.stream.health.WorkerHealth.stop_loudly`)."""

    commit_interval = 1.0
    """Seconds between commits while records flow (faust's default ``broker_commit_interval``)."""
    yield_every = 32
    """Records decided between two yields to the event loop. Neither the core nor handing an
    output to the producer waits, so without a yield a batch of 500 records would hold the
    loop — the producer's sender, the router — for the whole batch, and its first outputs
    would wait for its last."""

    def __init__(self, settings: WorkerSettings, step: Step, *,
                 on_assigned: Callable[[set[int]], None],
                 on_revoked: Callable[[set[int]], None],
                 client_kwargs: dict[str, Any], fatal: Callable[[str], None],
                 topic: str = ROUTED_TOPIC, legacy_group: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.topic = topic
        self.group = f"{settings.app_id}-decide"
        self.legacy_group = legacy_group
        """The group that decided before this one (faust's, ``<app id>``): where a partition
        this group has no offset for starts."""
        self.step = step
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self.client_kwargs = client_kwargs
        self.fatal = fatal
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.committed: dict[int, int] = {}
        self._done: dict[TopicPartition, int] = {}
        """Per partition: the offset after the last record whose outputs were handed over."""
        self._pending: list[tuple[asyncio.Future[Any], Outgoing]] = []
        self._committed_at = time.monotonic()
        self._lock = asyncio.Lock()
        """Held while a batch is decided, so a rebalance commits between batches, not inside."""

    async def on_start(self) -> None:
        s = self.settings
        if self.legacy_group:
            await self.adopt_legacy_offsets()
        session_ms = int(s.session_timeout.total_seconds() * 1000)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap, group_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=max(1 << 20, 4 * s.max_message_bytes),
            fetch_max_bytes=max(50 << 20, 8 * s.max_message_bytes),
            fetch_max_wait_ms=int(s.fetch_wait.total_seconds() * 1000),
            session_timeout_ms=session_ms, rebalance_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 6), **self.client_kwargs)
        self.consumer.subscribe([self.topic], listener=_Rebalance(self))
        # room for the largest output: a dead letter keeps at most the message limit
        self.producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap, linger_ms=1, acks="all",
            max_request_size=max(1_000_000, 2 * s.max_message_bytes), **self.client_kwargs)
        await self.producer.start()
        await self.consumer.start()

    async def adopt_legacy_offsets(self) -> None:
        """Give this group, for each journal partition it has no offset for, the offset the
        :attr:`legacy_group` committed — before this loop joins, so it starts there. Nothing
        found or the broker refusing: the partition starts at the journal's beginning (outputs
        repeated, deduplicated downstream; never a skip)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap,
                                    group_id=self.group, enable_auto_commit=False,
                                    **self.client_kwargs)
        legacy = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap,
                                  group_id=self.legacy_group, enable_auto_commit=False,
                                  **self.client_kwargs)
        try:
            await consumer.start()
            await legacy.start()
            await consumer.topics()  # metadata, so the journal's partitions are known
            adopted = {}
            for partition in sorted(consumer.partitions_for_topic(self.topic) or ()):
                tp = TopicPartition(self.topic, partition)
                if await consumer.committed(tp) is not None:
                    continue
                offset = await legacy.committed(tp)
                if offset is not None:
                    adopted[tp] = OffsetAndMetadata(int(offset), "")
            if adopted:
                consumer.assign(list(adopted))
                await consumer.commit(adopted)
                for tp, meta in adopted.items():
                    log.info("journal partition %d: group %s starts at %d, where group %s "
                             "committed", tp.partition, self.group, meta.offset,
                             self.legacy_group)
        except Exception as exc:
            log.warning("offsets of group %s not adopted (%s); journal partitions without an "
                        "offset in group %s are decided from their beginning",
                        self.legacy_group, type(exc).__name__, self.group)
        finally:
            await legacy.stop()
            await consumer.stop()

    async def on_stop(self) -> None:
        if self.consumer is not None and self.producer is not None:
            try:
                async with self._lock:
                    await asyncio.wait_for(self.commit(), 10)
            except Exception as exc:  # the broker is gone: what was not committed is redone
                log.warning("decide loop: final commit failed (%s)", type(exc).__name__)
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    def highwater(self, partition: int) -> int | None:
        if self.consumer is None:
            return None
        for tp in self.consumer.assignment():
            if tp.partition == partition:
                value = self.consumer.highwater(tp)
                return int(value) if value is not None else None
        return None

    # --- rebalances -------------------------------------------------------------------------

    async def revoked(self, revoked: Any) -> None:
        """Before partitions go to another worker: commit everything decided here."""
        async with self._lock:
            try:
                await self.commit()
            except Exception as exc:  # the group moved on already: the new owner redoes it
                log.warning("decide loop: commit on revocation failed (%s)", type(exc).__name__)
            for tp in revoked:
                self._done.pop(tp, None)
            self.on_revoked({tp.partition for tp in revoked})

    async def assigned(self, assigned: Any) -> None:
        """Partitions now ours: learn what the group committed for them, then tell the worker
        (which rebuilds their state before it says ready)."""
        assert self.consumer is not None
        for tp in assigned:
            found = await self.consumer.committed(tp)
            if found is not None:
                self.committed[tp.partition] = int(found)
            else:
                self.committed.pop(tp.partition, None)
        self.on_assigned({tp.partition for tp in assigned})

    # --- the loop ---------------------------------------------------------------------------

    @Service.task
    async def _decide(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        while not self.should_stop:
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            try:
                async with self._lock:
                    for tp, messages in batch.items():
                        await self._decide_batch(tp, messages)
                    due = time.monotonic() - self._committed_at >= self.commit_interval
                    if (self._pending or self._done) and (due or not batch):
                        await self.commit()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("decide loop failed")
                self.fatal(f"deciding the journal failed ({type(exc).__name__}); nothing after "
                           "the last committed offset was skipped: a restart decides it again")
                return

    async def _decide_batch(self, tp: TopicPartition, messages: list[Any]) -> None:
        step, send, every = self.step, self._send, self.yield_every
        for n, message in enumerate(messages, start=1):
            for outgoing in await step(tp.partition, message.offset, message.value or b"",
                                       message.headers, message.timestamp):
                await send(outgoing)
            self._done[tp] = message.offset + 1
            if n % every == 0:
                await asyncio.sleep(0)  # let the producer send and the router route

    async def _send(self, outgoing: Outgoing) -> None:
        assert self.producer is not None
        try:
            future = await self.producer.send(outgoing.topic, value=outgoing.value,
                                              key=outgoing.key, headers=outgoing.headers)
        except Exception as exc:
            if not _too_large(exc):
                raise
            await self._send(_refused(outgoing, exc))
            return
        self._pending.append((future, outgoing))

    async def commit(self) -> None:
        """Wait until every output handed over is on the broker; then commit the offsets of
        the records they came from."""
        assert self.consumer is not None
        while self._pending:
            pending, self._pending = self._pending, []
            for future, outgoing in pending:
                try:
                    await future
                except Exception as exc:
                    if not _too_large(exc):
                        raise
                    await self._send(_refused(outgoing, exc))  # awaited on the next round
        offsets = {tp: offset for tp, offset in self._done.items()
                   if self.committed.get(tp.partition) != offset}
        if offsets:
            await self.consumer.commit({tp: OffsetAndMetadata(offset, "")
                                        for tp, offset in offsets.items()})
            for tp, offset in offsets.items():
                self.committed[tp.partition] = offset
        self._committed_at = time.monotonic()


def _too_large(exc: BaseException) -> bool:
    return "TooLarge" in type(exc).__name__ + type(exc.__cause__).__name__


def _refused(outgoing: Outgoing, exc: BaseException) -> Outgoing:
    """The dead letter that stands for an output the broker refused as too large."""
    log.error("output of %d bytes refused by the broker (%s); dead-lettered",
              len(outgoing.value), type(exc).__name__)
    if outgoing.topic == DEADLETTER_TOPIC and len(outgoing.value) <= 1024:
        raise exc  # even the short dead letter is refused: nothing smaller can stand for it
    return Outgoing(DEADLETTER_TOPIC, outgoing.key, outgoing.value[:1024],
                    [("triage-error", f"output of {len(outgoing.value)} bytes refused".encode())])
