"""Baselines for ``make bench``: what moving a message costs without any triage.

``python -m bench.baselines faust IN OUT`` runs a bare faust agent that only forwards messages
(faust at its best on this broker: a 10 ms fetch wait, the worker's producer settings);
``python -m bench.baselines aiokafka IN OUT`` a plain aiokafka consume→produce loop with manual
commits. Both read the comma-separated input
topics ``IN`` and write to ``OUT``, keyed as they came, until SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from typing import Any


def _fast_fetch_transport(fetch_wait_ms: int) -> Any:
    """faust 0.15.3 hard-codes a 1.5 s fetch wait; on Tansu a waiting fetch only returns when
    that expires, which alone adds ~1.4 s of latency. This transport shortens it, so the bare
    faust baseline is faust at its best on this broker (the worker used it while its decider
    was a faust agent)."""
    from faust.transport.drivers import aiokafka as faust_aiokafka

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_wait_ms
            return consumer

    class FastConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> Any:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(faust_aiokafka.Transport):
        Consumer = FastConsumer

    return Transport


def run_faust(inputs: list[str], output: str, bootstrap: str, app_id: str, port: int) -> None:
    import faust

    from triage.stream.app import RAW

    transport = _fast_fetch_transport(10)

    class App(faust.App):
        def _new_transport(self) -> Any:
            return transport(self.conf.broker_consumer, self)

    app = App(app_id, broker=f"kafka://{bootstrap}", store="memory://",
              processing_guarantee="at_least_once", web_port=port, web_bind="127.0.0.1",
              topic_partitions=3, consumer_auto_offset_reset="earliest",
              broker_session_timeout=3.0, broker_rebalance_timeout=3.0,
              broker_heartbeat_interval=0.5, broker_commit_interval=1.0,
              producer_linger=0.001, stream_wait_empty=True,
              datadir=tempfile.mkdtemp(prefix=f"{app_id}-data-"))
    source = app.topic(*inputs, **RAW)
    sink = app.topic(output, **RAW)

    @app.agent(source)
    async def forward(stream: Any) -> None:
        async for event in stream.events():
            await sink.send(key=event.key, value=event.value)

    faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False
                 ).execute_from_commandline()


async def run_aiokafka(inputs: list[str], output: str, bootstrap: str, group: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(*inputs, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=10, session_timeout_ms=3000,
                                heartbeat_interval_ms=500)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=1000)
            if not batch:
                continue
            for messages in batch.values():
                for message in messages:
                    await producer.send(output, value=message.value, key=message.key)
            await producer.flush()
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    kind, inputs, output = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    bootstrap = os.environ["BENCH_BOOTSTRAP"]
    if kind == "faust":
        run_faust(inputs, output, bootstrap, os.environ.get("BENCH_APP", "bench-faust"),
                  int(os.environ.get("BENCH_PORT", "6070")))
    else:
        asyncio.run(run_aiokafka(inputs, output, bootstrap,
                                 os.environ.get("BENCH_APP", "bench-aiokafka")))
