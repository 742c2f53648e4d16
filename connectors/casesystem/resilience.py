"""Small async building blocks for calling a service that may be slow, down or flapping.

* :func:`retry` — exponential backoff with full jitter (AWS Architecture Blog, "Exponential
  Backoff and Jitter"): before attempt *n+1* it sleeps a uniform random time in
  ``[0, min(max_delay, base_delay * 2**(n-1))]``. The random source and the sleep are injectable,
  so tests are exact and instant.
* :class:`CircuitBreaker` — closed → open after ``failure_threshold`` consecutive failures; while
  open every call fails fast with :class:`CircuitOpen` without touching the service; after
  ``reset_timeout`` it is half-open and lets one trial call through: a success closes it, a
  failure opens it again. The clock is injectable.
* :class:`TTLCache` — ``cachetools.TTLCache`` (bounded, entries expire after ``ttl``; when full
  the least recently used entry is evicted) with the clock as a named argument.

No library does the first two in an async-friendly, clock-injectable way without pulling in a
framework, so they are hand-written here and kept small; the cache is cachetools'.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TypeVar

import cachetools

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "TTLCache",
    "backoff_delay",
    "retry",
]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

Clock = Callable[[], float]


# --- retry -----------------------------------------------------------------------------------


def backoff_delay(
    attempt: int, *, base_delay: float, max_delay: float, jitter: bool = True,
    rng: random.Random | None = None,
) -> float:
    """The pause after failed attempt number ``attempt`` (1-based).

    The cap grows as ``base_delay * 2**(attempt-1)`` up to ``max_delay``; with ``jitter`` (full
    jitter) the pause is uniform in ``[0, cap]``, which spreads retrying clients apart.
    """
    cap = min(max_delay, base_delay * 2.0 ** (attempt - 1))
    if not jitter:
        return cap
    uniform = rng.uniform if rng is not None else random.uniform
    return uniform(0.0, cap)


async def retry(
    call: Callable[[], Awaitable[T]],
    attempts: int,
    base_delay: float,
    max_delay: float,
    jitter: bool = True,
    *,
    retry_on: Callable[[BaseException], bool] = lambda exc: isinstance(exc, Exception),
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Await ``call()`` up to ``attempts`` times; return its first result.

    An exception for which ``retry_on`` is false propagates at once; after the last attempt the
    last exception propagates. Cancellation is never retried.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if attempt == attempts or not retry_on(exc):
                raise
        await sleep(backoff_delay(attempt, base_delay=base_delay, max_delay=max_delay,
                                  jitter=jitter, rng=rng))
    raise AssertionError("unreachable")  # pragma: no cover


# --- circuit breaker -------------------------------------------------------------------------


class BreakerState(Enum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitOpen(Exception):
    """The breaker is open: the call was not made."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"circuit open; next trial call in {max(retry_in, 0.0):.1f} s")
        self.retry_in = retry_in


class CircuitBreaker:
    """Consecutive-failure circuit breaker.

    Use :meth:`call`, or the three steps :meth:`before_call` / :meth:`record_success` /
    :meth:`record_failure` when the caller decides itself what counts as a failure.
    In half-open state one trial call is let through at a time; the others fail fast.
    """

    def __init__(
        self, failure_threshold: int = 5, reset_timeout: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def failures(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    def before_call(self) -> None:
        """Raise :class:`CircuitOpen` unless a call may go through now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return
        assert self._opened_at is not None
        raise CircuitOpen(self._opened_at + self.reset_timeout - self._clock())

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._trial_in_flight = False
        if self._opened_at is not None:  # a failed trial call: open again, for a full timeout
            self._opened_at = self._clock()
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._opened_at = self._clock()

    def release(self) -> None:
        """The call ended neither in success nor failure (e.g. cancelled): free the trial slot."""
        self._trial_in_flight = False

    async def call(
        self, fn: Callable[[], Awaitable[T]],
        is_failure: Callable[[BaseException], bool] = lambda exc: True,
    ) -> T:
        self.before_call()
        try:
            result = await fn()
        except Exception as exc:
            if is_failure(exc):
                self.record_failure()
            else:
                self.record_success()
            raise
        except BaseException:
            self.release()
            raise
        self.record_success()
        return result


# --- cache -----------------------------------------------------------------------------------


class TTLCache(cachetools.TTLCache[K, V]):
    """A bounded mapping whose entries expire ``ttl`` seconds (by ``clock``) after insertion.

    When full, inserting evicts the least recently used entry. Not thread-safe; within one event
    loop it needs no lock.
    """

    def __init__(self, maxsize: int, ttl: float, clock: Clock = time.monotonic) -> None:
        super().__init__(maxsize=maxsize, ttl=ttl, timer=clock)
