"""Log lines that are masked, bounded in size and bounded in number.

A CPR number never reaches a log in clear, whoever writes the line: our code, httpx, aiohttp,
faust, asyncio. Issue 9 found three holes in the old per-handler filter — a number inside an
exception's text or traceback (``X-Cpr 0101901234`` in aiohttp's "bad header" error), a request
line with a number, and handlers created after the filter was installed — and two volume
problems: one 10 MB request body wrote 375 KB of log, and a broker outage wrote 7,158 ERROR
lines in 30 s (with a full descriptor table, 44 MB of "Too many open files").

So, in two places:

* **At birth** (:func:`install_record_factory`, a ``logging`` record factory): every record in
  the process is masked as it is created — the formatted message, the traceback text
  (``exc_text``, formatted then and there) and ``stack_info`` — and each is cut to a bounded
  length. Whatever handler or formatter writes it later, even one added after start-up, sees only
  the masked text. The original format string is kept as ``record.triage_template`` for the
  rate limiter.
* **At the door** (:class:`RateLimitFilter`, on the handlers): at most ``burst`` records of one
  kind (logger, level, format string) per ``period`` seconds, and a global budget across all
  kinds; what is dropped is counted and reported on the next line of that kind that passes
  (``[1234 similar lines suppressed]``). :class:`MaskingFilter` does the same masking as the
  factory, for handlers of processes that did not install it.

:func:`install` does both for the root logger's handlers (adding a stderr handler when there
is none).

Masked is anything shaped like a CPR number — ten digits, or six and four separated by ``-``
or a space — not preceded or followed by a digit: ``DDMMYY-****``. Some other ten-digit numbers
are masked too; that is the safe side.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_MESSAGE_CHARS", "MAX_TRACEBACK_CHARS", "MaskingFilter", "RateLimitFilter",
           "install", "install_record_factory", "mask_record", "mask_text"]

CPR_SHAPED = re.compile(r"(?<!\d)(\d{6})[- ]?\d{4}(?!\d)")
MAX_MESSAGE_CHARS = 2_000
MAX_TRACEBACK_CHARS = 8_000


def mask_text(text: str) -> str:
    """``text`` with everything shaped like a CPR number masked as ``DDMMYY-****``."""
    return CPR_SHAPED.sub(r"\1-****", text)


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters not logged]"


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask and bound a record in place: message, traceback text and stack text.

    The message is formatted once and stored with empty ``args`` (so no formatter formats it
    again, and a ``%`` in the masked text is harmless). A message that cannot be formatted —
    the caller's arguments do not fit its format string — is logged as its parts instead of
    raising a "--- Logging error ---" traceback.
    """
    if getattr(record, "triage_masked", False):
        return record
    record.triage_template = record.msg
    try:
        message = record.getMessage()
    except Exception:  # a bad format/args pair: log what it was, not a traceback
        message = f"{record.msg!s} {record.args!r}"
    record.msg = _bounded(mask_text(message), MAX_MESSAGE_CHARS)
    record.args = ()
    if record.exc_info and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = _bounded(mask_text(record.exc_text), MAX_TRACEBACK_CHARS)
    if record.stack_info:
        record.stack_info = _bounded(mask_text(record.stack_info), MAX_TRACEBACK_CHARS)
    record.triage_masked = True
    return record


class MaskingFilter(logging.Filter):
    """A handler or logger filter that masks and bounds every record (:func:`mask_record`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


_factory_lock = threading.Lock()
_installed_factory: Callable[..., logging.LogRecord] | None = None


def install_record_factory() -> None:
    """Mask every log record of this process as it is created (idempotent)."""
    global _installed_factory
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if current is _installed_factory:
            return
        previous = current

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return mask_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed_factory = factory


class _Bucket:
    __slots__ = ("stamp", "suppressed", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens, self.stamp, self.suppressed = tokens, stamp, 0


class RateLimitFilter(logging.Filter):
    """At most ``burst`` records of one kind per ``period`` seconds, and ``total_burst`` per
    ``period`` across all kinds; a kind is (logger, level, format string). Dropped records are
    counted (:attr:`suppressed`) and announced on the next record of their kind that passes.
    At most ``max_kinds`` kinds are tracked (least recently seen forgotten first)."""

    def __init__(self, *, burst: int = 20, period: float = 60.0, total_burst: int = 600,
                 max_kinds: int = 2_000, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.period, self.total_burst = burst, period, total_burst
        self.max_kinds = max_kinds
        self._clock = clock
        self._kinds: OrderedDict[tuple[str, int, str], _Bucket] = OrderedDict()
        self._total = _Bucket(float(total_burst), clock())
        self._lock = threading.Lock()
        self.suppressed = 0
        """Records dropped so far."""

    def _take(self, bucket: _Bucket, capacity: int, now: float) -> bool:
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * capacity
                            / self.period)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def filter(self, record: logging.LogRecord) -> bool:
        template = getattr(record, "triage_template", record.msg)
        key = (record.name, record.levelno, str(template)[:200])
        with self._lock:
            now = self._clock()
            bucket = self._kinds.get(key)
            if bucket is None:
                bucket = _Bucket(float(self.burst), now)
                self._kinds[key] = bucket
                if len(self._kinds) > self.max_kinds:
                    self._kinds.popitem(last=False)
            else:
                self._kinds.move_to_end(key)
            if not (self._take(bucket, self.burst, now)
                    and self._take(self._total, self.total_burst, now)):
                bucket.suppressed += 1
                self.suppressed += 1
                return False
            dropped, bucket.suppressed = bucket.suppressed, 0
        if dropped:
            mask_record(record)
            record.msg = f"[{dropped} similar lines suppressed] {record.msg}"
        return True


def install(*, level: int | None = None, rate_limit: RateLimitFilter | None = None,
            ) -> RateLimitFilter:
    """Mask every record of the process and rate-limit the root logger's handlers (a stderr
    handler is added when the root logger has none). Returns the rate limiter."""
    install_record_factory()
    root = logging.getLogger()
    if level is not None:
        root.setLevel(level)
    if not root.handlers:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter("[%(asctime)s] [%(levelname)s] %(name)s: "
                                              "%(message)s"))
        root.addHandler(stderr)
    limiter = rate_limit or RateLimitFilter()
    for handler in root.handlers:
        for existing in list(handler.filters):
            if isinstance(existing, RateLimitFilter | MaskingFilter):
                handler.removeFilter(existing)
        handler.addFilter(limiter)
        handler.addFilter(MaskingFilter())
    return limiter
