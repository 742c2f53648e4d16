"""Integration tests of the embedded Tansu broker with real aiokafka clients.

They need the ``kafka_broker`` / ``kafka_topics`` fixtures from ``tests/broker_fixture.py``.
Nothing sleeps for a fixed time: every wait polls a condition against a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import ConsumerRecord, TopicPartition

from triage.stream.broker import FAST_CONSUMER_SETTINGS, EmbeddedBroker, TopicSpec

if TYPE_CHECKING:  # the plugin module is loaded by pytest, not imported at run time
    from tests.broker_fixture import KafkaTopics

pytestmark = pytest.mark.kafka

N_MESSAGES = 300
N_KEYS = 30
DEADLINE = 30.0  # seconds; generous, the tests normally finish in a few seconds

Record: TypeAlias = ConsumerRecord[bytes, bytes]


def message(i: int) -> tuple[bytes, bytes]:
    """Key and value of the i-th test message; keys repeat so each key has an order."""
    key = f"key-{i % N_KEYS}".encode()
    return key, json.dumps({"i": i, "key": key.decode()}).encode()


async def produce(bootstrap: str, topic: str, n: int) -> Counter[int]:
    """Send messages 0..n-1 (batched: linger 5 ms); return how many went to each partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        sends = [
            await producer.send(topic, value, key=key) for key, value in map(message, range(n))
        ]
        return Counter(metadata.partition for metadata in await asyncio.gather(*sends))
    finally:
        await producer.stop()


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def drain(consumers: list[AIOKafkaConsumer], records: list[list[Record]], total: int) -> None:
    """Poll every consumer until together they returned ``total`` records (or time out)."""
    deadline = time.monotonic() + DEADLINE
    while sum(map(len, records)) < total:
        if time.monotonic() > deadline:
            raise AssertionError(f"got {sum(map(len, records))} of {total} records")
        for consumer, seen in zip(consumers, records, strict=True):
            batch = await consumer.getmany(timeout_ms=50)
            for partition_records in batch.values():
                seen.extend(partition_records)


async def test_keyed_messages_round_trip_through_three_partitions(
    kafka_broker: EmbeddedBroker, kafka_topics: KafkaTopics
) -> None:
    topic = await kafka_topics.acreate(3)
    await produce(kafka_broker.bootstrap, topic, N_MESSAGES)

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FAST_CONSUMER_SETTINGS["fetch_max_wait_ms"],
    )
    await consumer.start()
    try:
        records: list[list[Record]] = [[]]
        await drain([consumer], records, N_MESSAGES)
    finally:
        await consumer.stop()

    got = records[0]
    assert len(got) == N_MESSAGES
    assert sorted((r.key, r.value) for r in got) == sorted(map(message, range(N_MESSAGES)))
    # Keyed partitioning: every key lives in one partition, in production order there.
    partitions_by_key: dict[bytes | None, set[int]] = {}
    for record in got:
        partitions_by_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(parts) == 1 for parts in partitions_by_key.values())
    assert {r.partition for r in got} == {0, 1, 2}
    for key in partitions_by_key:
        order = [json.loads(r.value)["i"] for r in got if r.key == key and r.value]
        assert order == sorted(order)


async def test_two_consumers_in_one_group_split_partitions_and_see_each_message_once(
    kafka_broker: EmbeddedBroker, kafka_topics: KafkaTopics
) -> None:
    topic = await kafka_topics.acreate(3)
    group = kafka_topics.unique("group")
    consumers = [
        AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **FAST_CONSUMER_SETTINGS,
        )
        for _ in range(2)
    ]
    first, second = consumers
    await first.start()
    try:
        await second.start()
        try:
            everything = {TopicPartition(topic, p) for p in range(3)}

            def settled() -> bool:
                a, b = first.assignment(), second.assignment()
                return bool(a) and bool(b) and not (a & b) and (a | b) == everything

            await wait_for(settled, "both consumers to hold partitions after the rebalance")
            await produce(kafka_broker.bootstrap, topic, N_MESSAGES)
            records: list[list[Record]] = [[], []]
            await drain(consumers, records, N_MESSAGES)
            assignments = [first.assignment(), second.assignment()]
        finally:
            await second.stop()
    finally:
        await first.stop()

    assert all(records), "each consumer should have received some messages"
    for consumer_records, assignment in zip(records, assignments, strict=True):
        assert {TopicPartition(r.topic, r.partition) for r in consumer_records} <= assignment
    seen = Counter(r.value for rs in records for r in rs)
    assert len(seen) == N_MESSAGES
    assert set(seen.values()) == {1}, "a message was delivered twice"
    assert set(seen) == {value for _, value in map(message, range(N_MESSAGES))}


async def test_topics_are_created_with_explicit_configs(
    kafka_broker: EmbeddedBroker, kafka_topics: KafkaTopics
) -> None:
    name = kafka_topics.unique("compacted")
    await kafka_broker.acreate_topics({name: TopicSpec(2, {"cleanup.policy": "compact"})})
    await kafka_broker.acreate_topics({name: 2})  # existing topic, same shape: accepted
    assert name in await kafka_broker.alist_topics()

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    ((_, _, _, _, entries),) = response.resources
    configs = {entry[0]: entry[1] for entry in entries}
    assert configs["cleanup.policy"] == "compact"
    assert configs["retention.ms"] == "604800000"
    assert configs["retention.bytes"] == "-1"


async def test_high_watermarks_count_every_record_in_multi_record_batches(
    kafka_broker: EmbeddedBroker, kafka_topics: KafkaTopics
) -> None:
    # Tansu's ListOffsets(latest) stops at the first record of the last batch; the helper
    # must not: it reads the high watermark from a fetch response.
    topic = await kafka_topics.acreate(3)
    empty = await kafka_topics.acreate(2, label="empty")
    per_partition = await produce(kafka_broker.bootstrap, topic, N_MESSAGES)

    assert await kafka_broker.ahigh_watermarks(topic) == {p: per_partition[p] for p in range(3)}
    assert await kafka_broker.ahigh_watermarks(empty) == {0: 0, 1: 0}


def test_stop_leaves_no_process_behind(tmp_path: os.PathLike[str]) -> None:
    broker = EmbeddedBroker(log_path=os.path.join(tmp_path, "tansu.log"))
    with broker:
        pid = broker.pid
        assert pid is not None and broker.running
        assert broker.bootstrap == f"127.0.0.1:{broker.port}"
        broker.create_topics({"smoke": 1})
        assert broker.list_topics() == ["smoke"]
        assert broker.high_watermarks("smoke") == {0: 0}
    assert not broker.running and broker.pid is None
    assert not _alive(pid)
    assert broker.stop() is None  # idempotent


def test_stop_kills_a_broker_that_ignores_sigterm(tmp_path: os.PathLike[str]) -> None:
    broker = EmbeddedBroker(log_path=os.path.join(tmp_path, "tansu.log"), stop_timeout=0.5)
    broker.start()
    pid = broker.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a stopped process leaves SIGTERM pending
    assert broker.stop() == -signal.SIGKILL
    assert not _alive(pid)


def test_a_killed_owner_leaves_no_broker_behind(tmp_path: os.PathLike[str]) -> None:
    # The owner is SIGKILLed, so neither stop() nor atexit runs: PR_SET_PDEATHSIG must.
    script = (
        "import sys, time\n"
        "from triage.stream.broker import EmbeddedBroker\n"
        f"broker = EmbeddedBroker(log_path={os.path.join(tmp_path, 'tansu.log')!r}).start()\n"
        "print(broker.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        broker_pid = int(owner.stdout.readline())
        assert _alive(broker_pid)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 5
    while _alive(broker_pid):
        if time.monotonic() > deadline:
            os.kill(broker_pid, signal.SIGKILL)
            raise AssertionError("broker outlived its SIGKILLed owner")
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """True if ``pid`` names a process that is neither gone nor a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
