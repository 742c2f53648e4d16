"""The deciding hop's delivery promise on the embedded broker (:mod:`triage.stream.decide_loop`):
an offset is committed only once every output of the records before it is on the broker, and a
failure of the core stops the loop loudly without committing — so a restart meets the failing
record again; nothing is skipped, nothing already written is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.broker_fixture import KafkaTopics
from triage.stream.broker import EmbeddedBroker
from triage.stream.decide_loop import DecideLoop, Outgoing
from triage.stream.settings import WorkerSettings

pytestmark = pytest.mark.kafka


async def read_all(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[bytes]:
    """The first ``count`` values of ``topic`` (partition 0), or fewer if the time runs out."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, fetch_max_wait_ms=20)
    await consumer.start()
    consumer.assign([TopicPartition(topic, 0)])
    values: list[bytes] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(values) < count and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            values += [m.value for messages in batch.values() for m in messages]
    finally:
        await consumer.stop()
    return values


async def fill(bootstrap: str, journal: str, count: int) -> None:
    """``r0`` … ``r<count-1>`` into partition 0 of ``journal``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send(journal, value=f"r{i}".encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()


class Forward:
    """A step that forwards each journal record to ``out``, failing on offset ``fail_at``;
    ``finished`` is set once it has forwarded offset ``done_at``."""

    def __init__(self, out: str, fail_at: int | None = None, done_at: int | None = None) -> None:
        self.out, self.fail_at, self.done_at = out, fail_at, done_at
        self.seen: list[int] = []
        self.finished = asyncio.Event()

    async def __call__(self, partition: int, offset: int, value: bytes, headers: object,
                       timestamp: int) -> list[Outgoing]:
        if offset == self.fail_at:
            raise ValueError("the core failed on this record")
        self.seen.append(offset)
        if offset == self.done_at:
            self.finished.set()
        return [Outgoing(self.out, b"k", value + b"!")]


async def run_until(loop: DecideLoop, done: asyncio.Event, timeout: float = 30.0) -> None:
    await loop.start()
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await loop.stop()


async def test_a_failing_record_stops_the_loop_the_ones_before_stay_decided_a_restart_redoes_it(
        kafka_broker: EmbeddedBroker, kafka_topics: KafkaTopics) -> None:
    journal = await kafka_topics.acreate(1, label="journal")
    out = await kafka_topics.acreate(1, label="out")
    await fill(kafka_broker.bootstrap, journal, 10)
    settings = WorkerSettings(persons=Path("unused"), cases=Path("unused"),
                              bootstrap=kafka_broker.bootstrap, app_id=kafka_topics.unique("app"))
    client: dict[str, object] = {}  # plaintext, no security settings

    reasons: list[str] = []
    stopped = asyncio.Event()

    def fatal(reason: str) -> None:
        reasons.append(reason)
        stopped.set()

    failing = Forward(out, fail_at=6)
    first = DecideLoop(settings, failing, on_assigned=lambda _: None, on_revoked=lambda _: None,
                       client_kwargs=client, fatal=fatal, topic=journal)
    await run_until(first, stopped)
    assert failing.seen == [0, 1, 2, 3, 4, 5]
    assert len(reasons) == 1 and "ValueError" in reasons[0]
    assert "skipped" in reasons[0]  # the line says nothing was skipped, and why
    # every output of the records before the failure is on the broker, the failing one is not
    assert await read_all(kafka_broker.bootstrap, out, 6) == [f"r{i}!".encode()
                                                              for i in range(6)]
    assert first.committed == {0: 6}  # the graceful stop committed up to the failing record

    # a restart (the core fixed) starts at the failing record and decides the rest
    healthy = Forward(out, done_at=9)
    second = DecideLoop(settings, healthy, on_assigned=lambda _: None, on_revoked=lambda _: None,
                        client_kwargs=client, fatal=fatal, topic=journal)
    await run_until(second, healthy.finished)
    assert healthy.seen == [6, 7, 8, 9]
    assert await read_all(kafka_broker.bootstrap, out, 10) == [f"r{i}!".encode()
                                                               for i in range(10)]
    assert second.committed == {0: 10}
    assert len(reasons) == 1


async def test_an_upgrade_starts_where_the_old_faust_group_committed(
        kafka_broker: EmbeddedBroker, kafka_topics: KafkaTopics) -> None:
    """A worker upgraded from the faust agent (group ``<app id>``) neither re-decides the
    journal nor skips: its new group, with no offset yet, starts where the old one stopped."""
    journal = await kafka_topics.acreate(1, label="journal")
    out = await kafka_topics.acreate(1, label="out")
    legacy = kafka_topics.unique("old")
    await fill(kafka_broker.bootstrap, journal, 6)
    old = AIOKafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=legacy,
                           enable_auto_commit=False)
    await old.start()
    try:
        old.assign([TopicPartition(journal, 0)])
        await old.commit({TopicPartition(journal, 0): 4})  # the old agent decided r0..r3
    finally:
        await old.stop()

    settings = WorkerSettings(persons=Path("unused"), cases=Path("unused"),
                              bootstrap=kafka_broker.bootstrap, app_id=kafka_topics.unique("app"))
    forward = Forward(out, done_at=5)
    assigned: list[set[int]] = []
    upgraded = DecideLoop(settings, forward, on_assigned=assigned.append,
                          on_revoked=lambda _: None, client_kwargs={}, fatal=pytest.fail,
                          topic=journal, legacy_group=legacy)
    await run_until(upgraded, forward.finished)
    assert forward.seen == [4, 5]
    assert assigned and assigned[0] == {0}
    assert upgraded.committed == {0: 6}
    assert await read_all(kafka_broker.bootstrap, out, 2) == [b"r4!", b"r5!"]
