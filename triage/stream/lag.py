"""Consumer lag from the fetch high watermark, read without a request to the broker.

Every fetch response carries each partition's high watermark (the offset the next record
produced will get); the consumer's position is the offset of the next record it will read. Lag
is their difference. Both are kept by the consumer in memory, so reading them at scrape time
costs nothing; a partition not fetched yet has no high watermark and is left out.
"""

from __future__ import annotations

from typing import Any


def aiokafka_lag(consumer: Any) -> dict[tuple[str, int], int]:
    """Lag per assigned partition of a plain :class:`aiokafka.AIOKafkaConsumer`."""
    lags: dict[tuple[str, int], int] = {}
    if consumer is None:
        return lags
    try:
        assignment = consumer._subscription.subscription.assignment
        for tp in consumer.assignment():
            state = assignment.state_value(tp)
            if state is None or state.highwater is None or not state.has_valid_position:
                continue
            lags[(tp.topic, tp.partition)] = max(0, state.highwater - state.position)
    except (AttributeError, TypeError):  # not started, or between assignments
        return {}
    return lags
