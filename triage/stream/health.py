"""What ``/health`` and ``/ready`` say, and the watch that notices a replaced Kafka cluster.

An orchestrator restarts a worker whose ``/health`` fails and takes a worker whose ``/ready``
fails out of service, so both must tell the truth:

* **a stop under way** — the worker stopped itself (:meth:`WorkerHealth.stop_loudly`): the
  decide loop failed on a record or a delivery, or the cluster was replaced;
* **the broker unavailable** — the cluster has not answered a metadata request for longer than
  ``broker_timeout``, or the router has had no fetch response for that long;
* **a stalled decider** — the journal has records the decider has not applied, and it applied
  none for longer than ``stall_timeout``.

:class:`ClusterWatch` asks the cluster for its id every few seconds. A **different id** means the
cluster was replaced (a new, empty one on the same address): the journal the worker's state was
built from, and the offsets it committed, are gone. The worker then stops loudly — a one-line
critical log, exit status 1 — rather than deciding new events against state from another
cluster or skipping them; a fresh start rebuilds from the new journal. A journal whose high
watermark lies below the decider's position is the same fault seen from the journal, and stops
the worker the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from mode import Service

log = logging.getLogger(__name__)

class WorkerHealth:
    """The worker's health: reasons it is unhealthy (empty when healthy), and a loud stop."""

    def __init__(self, *, broker_timeout: float = 15.0, stall_timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.broker_timeout = broker_timeout
        self.stall_timeout = stall_timeout
        self._clock = clock
        self.broker_seen = clock()
        """When the cluster (or a fetch) last answered."""
        self.applied_at = clock()
        """When the decider last applied a journal record."""
        self.journal_lag: Callable[[], int] = lambda: 0
        """Journal records not yet applied (set by the worker)."""
        self.fetched_at: Callable[[], float | None] = lambda: None
        """When the router last had a fetch response (monotonic seconds; set by the worker)."""
        self.fatal: str | None = None
        """Why the worker stopped itself, if it did."""

    def applied(self) -> None:
        self.applied_at = self._clock()

    def broker_answered(self) -> None:
        self.broker_seen = self._clock()

    def problems(self) -> list[str]:
        now = self._clock()
        out = []
        if self.fatal:
            out.append(self.fatal)
        fetched = self.fetched_at()
        last_contact = max(self.broker_seen, fetched if fetched is not None else float("-inf"))
        if now - last_contact > self.broker_timeout:
            out.append(f"the Kafka cluster has not answered for {now - last_contact:.0f} s")
        lag = self.journal_lag()
        if lag > 0 and now - self.applied_at > self.stall_timeout:
            out.append(f"the decider applied nothing for {now - self.applied_at:.0f} s with "
                       f"{lag} journal records unread")
        return out

    def stop_loudly(self, reason: str) -> None:
        """Log one critical line and stop the worker gracefully; ``triage worker`` then exits
        with status 1 (:func:`triage.stream.run.run_worker`)."""
        if self.fatal is None:
            self.fatal = reason
            log.critical("stopping: %s", reason)
            os.kill(os.getpid(), signal.SIGTERM)


class ClusterWatch(Service):
    """Asks the cluster for its id every ``interval`` seconds; a new id stops the worker."""

    def __init__(self, bootstrap: str, health: WorkerHealth, *, interval: float = 2.0,
                 client_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bootstrap = bootstrap
        self.health = health
        self.interval = interval
        self.client_kwargs = client_kwargs or {}
        self.cluster_id: str | None = None

    async def describe(self) -> str | None:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000,
                                    **self.client_kwargs)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            return str(cluster["cluster_id"])
        except Exception:  # unreachable: health says so once broker_timeout has passed
            return None
        finally:
            with contextlib.suppress(Exception):  # closing a client that never connected
                await admin.close()

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            found = await self.describe()
            if found is not None:
                self.health.broker_answered()
                if self.cluster_id is None:
                    self.cluster_id = found
                elif found != self.cluster_id:
                    self.health.stop_loudly(
                        f"the Kafka cluster was replaced (id {self.cluster_id} -> {found}): the "
                        "journal and committed offsets this worker's state came from are gone; "
                        "start it again to rebuild from the new journal")
                    return
            await self.sleep(self.interval)
