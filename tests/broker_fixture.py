"""Pytest plugin: one embedded Tansu broker per test session, plus per-test topics.

Load it with ``pytest_plugins = ["tests.broker_fixture"]`` in the root ``conftest.py`` (or
``python -m pytest -p tests.broker_fixture``). It provides:

``kafka_broker``
    Session-scoped :class:`~triage.stream.broker.EmbeddedBroker` on a free 127.0.0.1 port,
    started lazily by the first test that asks for it and stopped by process id at the end of
    the session. Its log is ``<pytest basetemp>/tansu0/tansu.log``.
``kafka_topics``
    A :class:`KafkaTopics` for the current test: creates topics with unique names (the broker
    is shared by the whole session and never forgets a topic) and hands out unique consumer
    group ids.

Tansu's consumer-group joins take about half the session timeout and its waiting fetches return
only at ``fetch_max_wait_ms``, so aiokafka consumers in tests should use
:data:`triage.stream.broker.FAST_CONSUMER_SETTINGS` (or something as short). A broker left by
a killed run dies with it (``die_with_parent``); a normal run stops it at session end.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping

import pytest

from triage.stream.broker import EmbeddedBroker, TopicSpec

__all__ = ["KafkaTopics", "kafka_broker", "kafka_topics"]


class KafkaTopics:
    """Unique topic names and group ids for one test, created on the shared broker.

    ``create()`` is for sync code, ``acreate()`` for async tests; both return the topic name.
    Names look like ``test_roundtrip-orders-1a2b3c4d``: readable in the broker log, unique
    across the session.
    """

    def __init__(self, broker: EmbeddedBroker, test_name: str) -> None:
        self.broker = broker
        self._stem = re.sub(r"[^A-Za-z0-9._-]+", "_", test_name)[:60]
        self.created: list[str] = []

    def unique(self, label: str = "t") -> str:
        """A fresh name for a topic, consumer group or app id."""
        return f"{self._stem}-{label}-{uuid.uuid4().hex[:8]}"

    def create(
        self,
        partitions: int = 3,
        *,
        label: str = "t",
        configs: Mapping[str, str] | None = None,
    ) -> str:
        """Create a uniquely named topic with ``partitions`` partitions; return its name."""
        name = self.unique(label)
        self.broker.create_topics({name: TopicSpec(partitions, dict(configs or {}))})
        self.created.append(name)
        return name

    async def acreate(
        self,
        partitions: int = 3,
        *,
        label: str = "t",
        configs: Mapping[str, str] | None = None,
    ) -> str:
        """Coroutine twin of :meth:`create`."""
        name = self.unique(label)
        await self.broker.acreate_topics({name: TopicSpec(partitions, dict(configs or {}))})
        self.created.append(name)
        return name


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The session's embedded Tansu broker (memory storage, 127.0.0.1, free port)."""
    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    broker = EmbeddedBroker(log_path=log_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_topics(kafka_broker: EmbeddedBroker, request: pytest.FixtureRequest) -> KafkaTopics:
    """Per-test factory of uniquely named topics on :func:`kafka_broker`."""
    return KafkaTopics(kafka_broker, request.node.name)
