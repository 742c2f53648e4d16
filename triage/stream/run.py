"""Running the worker process: safe logging, faust's worker, graceful shutdown.

Logging (:mod:`triage.logsafety`): every record of the process is masked as it is created
(anything shaped like a CPR number becomes ``DDMMYY-****``, tracebacks included) and bounded in
length; once faust has configured its handlers, they are rate-limited, so an outage or a flood
of bad requests cannot fill the disk.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from triage import logsafety
from triage.stream.settings import WorkerSettings


def run_worker(settings: WorkerSettings, loglevel: str = "info") -> int:
    """Start the worker and block until SIGTERM/SIGINT, then shut down gracefully: stop
    consuming, flush produced records, commit offsets, leave the group."""
    import faust

    from triage.stream.app import TriageWorker

    logsafety.install_record_factory()

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            logsafety.install()

        async def on_stop(self) -> None:
            _stop_watchdog(worker, STOP_GRACE)
            await super().on_stop()

    worker = TriageWorker(settings)
    faust_worker: Any = Worker(worker.app, loglevel=loglevel, quiet=True,
                               redirect_stdouts=False)
    try:
        faust_worker.execute_from_commandline()  # exits when stopped
    except SystemExit:
        reason = worker.health.fatal or _crash_reason(worker)
        if reason is None:
            raise
        print(f"triage worker: stopped: {reason}", file=sys.stderr)
        return 1
    return 0  # pragma: no cover  (execute_from_commandline always raises SystemExit)


STOP_GRACE = 60.0
"""Seconds a stopping worker may take (flush, commit, leave the group) before it is ended."""


def _crash_reason(worker: Any) -> str | None:
    """Why a service of the worker crashed (which stops the worker), or None."""
    reason = getattr(worker.app, "crash_reason", None)
    if reason is None:
        return None
    return f"{type(reason).__name__}: {str(reason)[:300]}"


def _stop_watchdog(worker: Any, grace: float) -> None:
    """A stop must end: faust can wait forever for a stream after a service crashed. After
    ``grace`` seconds the process exits with status 1, saying why (nothing is lost: offsets
    not committed are decided again after a restart, and repeats are identical)."""
    def overdue() -> None:
        reason = worker.health.fatal or _crash_reason(worker) or "stop requested"
        logging.getLogger(__name__).critical(
            "the worker did not stop within %.0f s (%s): exiting", grace, reason)
        print(f"triage worker: stopped: {reason} (the stop took longer than {grace:.0f} s)",
              file=sys.stderr, flush=True)
        os._exit(1)

    timer = threading.Timer(grace, overdue)
    timer.daemon = True
    timer.start()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_worker(WorkerSettings()))
