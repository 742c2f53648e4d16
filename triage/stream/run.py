"""Running the worker process: safe logging, faust's worker, graceful shutdown.

Logging (:mod:`triage.logsafety`): every record of the process is masked as it is created
(anything shaped like a CPR number becomes ``DDMMYY-****``, tracebacks included) and bounded in
length; once faust has configured its handlers, they are rate-limited, so an outage or a flood
of bad requests cannot fill the disk.
"""

from __future__ import annotations

import logging
import sys
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

    worker = TriageWorker(settings)
    faust_worker: Any = Worker(worker.app, loglevel=loglevel, quiet=True,
                               redirect_stdouts=False)
    try:
        faust_worker.execute_from_commandline()  # exits when stopped
    except SystemExit:
        if worker.health.fatal is None:
            raise
    print(f"triage worker: stopped: {worker.health.fatal}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_worker(WorkerSettings()))
