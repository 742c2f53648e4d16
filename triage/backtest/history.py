"""Where a backtest's history comes from: a JSON Lines file, or the worker's journal topic.

The journal (``triage.routed``) holds every input record the worker decided, in the order it
decided them, and records that are not events, marked by a ``triage-kind`` header: the
worker's clock ticks and producers' heartbeats (``tick``), and operator changes (ruleset,
shadow, silences: :mod:`triage.control`). A backtest reads the events only — ticks are
estimates of event time, and the changes are what the backtest compares — from the first record
up to the end offset the partition had when the backtest began, so a running worker appending
to it does not keep the backtest going forever. One partition is one municipality's journal; a
topic with several must be read one partition at a time (event time never goes backwards
within one core).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from triage.stream.settings import KIND_HEADER

JOURNAL_TOPIC = "triage.routed"


class HistoryError(Exception):
    """History that cannot be read; ``str()`` is one line for the operator."""


def file_lines(path: Path) -> Iterator[bytes]:
    """The lines of a JSON Lines file, as bytes (blank lines included; the core skips them)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        yield from handle


def _is_event(headers: Any) -> bool:
    """Journal records that are not events carry a ``triage-kind`` header: clock ticks (and,
    from the worker's operator changes, control records, :mod:`triage.control`)."""
    return not any(key == KIND_HEADER for key, _ in headers or ())


def journal_lines(bootstrap: str, topic: str = JOURNAL_TOPIC, partition: int | None = None,
                  *, idle_timeout: float = 30.0) -> Iterator[bytes]:
    """The event records of one journal partition, from its start to its end offset when this
    began, ticks skipped. :class:`HistoryError` when the topic or partition does not exist,
    when the topic has several partitions and none is named, or when the broker delivers
    nothing for ``idle_timeout`` seconds before the end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from triage.stream.broker import fetch_high_watermarks

    async def open_journal() -> tuple[Any, Any, int]:
        # aiokafka binds a consumer and its assignment to the running loop: set up inside it
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=50, request_timeout_ms=10_000)
        try:
            await asyncio.wait_for(consumer.start(), idle_timeout)
        except Exception as exc:  # aiokafka raises several kinds; all mean "not reachable"
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise HistoryError(f"{bootstrap}: cannot reach the broker "
                               f"({type(exc).__name__})") from None
        try:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise HistoryError(f"{topic}: no such topic on {bootstrap}")
            chosen = partition
            if chosen is None:
                if len(partitions) > 1:
                    raise HistoryError(
                        f"{topic} has {len(partitions)} partitions (one journal per "
                        f"municipality): choose one with --partition")
                chosen = next(iter(partitions))
            if chosen not in partitions:
                raise HistoryError(f"{topic} has no partition {chosen} "
                                   f"(it has {sorted(partitions)})")
            tp = TopicPartition(topic, chosen)
            end = (await fetch_high_watermarks(bootstrap, [tp]))[tp]
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
        except BaseException:
            await consumer.stop()
            raise
        return consumer, tp, end

    with asyncio.Runner() as runner:
        consumer, tp, end = runner.run(open_journal())
        try:
            position, last_progress = 0, time.monotonic()
            while position < end:
                batch = runner.run(consumer.getmany(tp, timeout_ms=500, max_records=5000))
                records = batch.get(tp, [])
                if not records:
                    if time.monotonic() - last_progress > idle_timeout:
                        raise HistoryError(f"{topic}[{tp.partition}]: no records for "
                                           f"{idle_timeout:.0f} s at offset {position} of "
                                           f"{end}")
                    continue
                last_progress = time.monotonic()
                for record in records:
                    if record.offset >= end:
                        position = end
                        break
                    position = record.offset + 1
                    if record.value is not None and _is_event(record.headers):
                        yield record.value
        finally:
            runner.run(consumer.stop())
