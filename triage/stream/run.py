"""Running the worker process: logging with CPR masking, faust's worker, graceful shutdown."""

from __future__ import annotations

import logging
import re
import sys

from triage.stream.settings import WorkerSettings

_CPR = re.compile(r"(?<!\d)(\d{6})-?\d{4}(?!\d)")


class MaskCpr(logging.Filter):
    """Masks anything shaped like a CPR number in every log record (``DDMMYY-****``): a last
    line of defence, since our own messages never contain one."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _CPR.sub(r"\1-****", message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def run_worker(settings: WorkerSettings, loglevel: str = "info") -> int:
    """Start the worker and block until SIGTERM/SIGINT, then shut down gracefully: stop
    consuming, flush produced records, commit offsets, leave the group."""
    import faust

    from triage.stream.app import TriageWorker

    worker = TriageWorker(settings)
    faust_worker = faust.Worker(worker.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskCpr())
    logging.getLogger().addFilter(MaskCpr())
    try:
        faust_worker.execute_from_commandline()  # exits when stopped
    except SystemExit:
        if worker.health.fatal is None:
            raise
    print(f"triage worker: stopped: {worker.health.fatal}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_worker(WorkerSettings()))
