"""The client the service uses to call the municipal case system (``openapi.yaml``).

Every call goes through the same path: the circuit breaker decides whether to try at all, each
attempt has ``timeout`` seconds, a timeout / refused connection / 5xx / 429 is retried with
exponential backoff and full jitter up to ``attempts`` times, and if it still fails the caller
gets :class:`LookupUnavailable` — a plain-words message with no CPR number in it — on which the
service raises the event as "could not be checked" (DOMAIN.md) rather than guess.

``cases_for`` answers are cached per person for ``cache_ttl`` seconds (bounded, least recently
used evicted first), and concurrent lookups of the same person share one request.

A CPR number never goes into a URL (proxies and access logs record URLs): person lookups are
``POST …/lookup`` with the number in the JSON body. Every call but the health check carries
``Authorization: Bearer <token>`` (``token``, or ``token_file`` re-read when it changes; see
:mod:`connectors.casesystem.auth`). The loggers of httpx and httpcore are masked
(:mod:`triage.logsafety`).

Metrics (in ``registry``; a private one unless given):

* ``triage_casesystem_requests_total{operation, outcome}`` — one per call, by final outcome:
  ``ok``, ``cache_hit``, ``coalesced``, ``created``, ``duplicate``, ``not_found``, ``conflict``,
  ``rejected``, ``bad_response``, ``timeout``, ``unreachable``, ``transport_error``,
  ``server_error``, ``breaker_open``.
* ``triage_casesystem_retries_total{operation}`` — attempts beyond the first.
* ``triage_casesystem_breaker_state`` — 0 closed, 1 open, 2 half-open (read at scrape time).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from connectors.casesystem.auth import BearerAuth
from connectors.casesystem.resilience import CircuitBreaker, CircuitOpen, TTLCache, retry
from triage.cprnumber import mask
from triage.logsafety import MaskingFilter
from triage.models.outputs import Task
from triage.models.reference import CaseRecord

__all__ = [
    "CaseSystemClient",
    "CaseSystemError",
    "LookupUnavailable",
    "TaskConflict",
    "TaskRejected",
]

_TEN_DIGITS = re.compile(r"(?<!\d)(\d{6})\d{4}(?!\d)")


def redact_cpr(text: str) -> str:
    """Mask anything that looks like a CPR number (ten digits in a row) as ``DDMMYY-****``."""
    return _TEN_DIGITS.sub(r"\1-****", text)


class CaseSystemError(Exception):
    """Base of this client's errors. Messages never contain a CPR number."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_cpr(message))


class LookupUnavailable(CaseSystemError):
    """The case system could not answer (a lookup or a delivery): it timed out, refused the
    connection, answered 5xx after the retries, the circuit breaker is open, or its answer was
    unusable. ``reason`` is a short code (the metrics outcome), ``operation`` the client method.
    """

    def __init__(self, message: str, *, reason: str, operation: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.operation = operation


class TaskConflict(CaseSystemError):
    """HTTP 409: the case system already holds a *different* task under this id — a bug, or a
    task planted there by someone else. Never a repeat."""


class TaskRejected(CaseSystemError):
    """HTTP 4xx on delivery (422: the case system found the task invalid)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


# httpx logs every request line at INFO. No URL of ours carries a CPR number any more, but a
# base URL or a server's answer might: mask whatever these loggers write. (The old filter here
# set ``record.args = None``; mode's log formatter turns that into ``(None,)`` and the
# ``msg % args`` of every uncached lookup then failed: "--- Logging error --- … not all
# arguments converted". :func:`triage.logsafety.mask_record` stores ``args = ()``.)
_HTTPX_FILTER = MaskingFilter()


def _install_log_filter() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _HTTPX_FILTER not in logger.filters:
            logger.addFilter(_HTTPX_FILTER)


_install_log_filter()


class _Failed(Exception):
    """One failed attempt that may be retried."""

    def __init__(self, reason: str, detail: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.detail, self.status = reason, detail, status


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        if isinstance(detail, str):
            return f" ({detail[:200]})"
    return ""


def _validation_summary(exc: ValidationError) -> str:
    errors = exc.errors(include_input=False, include_url=False)
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors[:3])


class CaseSystemClient:
    """Async client of the municipal case system. Use as ``async with`` or call :meth:`aclose`.

    ``transport`` is any httpx async transport (tests pass a recording or mock transport); by
    default httpx's own. ``timeout`` bounds each attempt; ``attempts`` counts the first one.
    ``clock`` drives the cache and the default breaker; ``rng`` the backoff jitter.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 2.0,
        attempts: int = 3,
        base_delay: float = 0.05,
        max_delay: float = 1.0,
        breaker: CircuitBreaker | None = None,
        cache_ttl: float = 60.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        registry: CollectorRegistry | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        token_file: str | Path | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.timeout = timeout
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.breaker = breaker or CircuitBreaker(failure_threshold=5, reset_timeout=30.0,
                                                 clock=clock)
        self._rng = rng or random.Random()
        self._sleep = sleep
        auth = (BearerAuth(token=token) if token else
                BearerAuth(path=token_file) if token_file is not None else None)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), transport=transport, timeout=httpx.Timeout(timeout),
            headers={"accept": "application/json", **(headers or {})}, auth=auth)
        self._cache: TTLCache[str, tuple[CaseRecord, ...]] | None = (
            TTLCache(maxsize=cache_size, ttl=cache_ttl, clock=clock)
            if cache_size > 0 and cache_ttl > 0 else None)
        self._inflight: dict[str, asyncio.Task[tuple[CaseRecord, ...]]] = {}
        self.registry = registry if registry is not None else CollectorRegistry()
        self._requests = Counter(
            "triage_casesystem_requests",
            "Calls to the case system, by operation and final outcome.",
            ["operation", "outcome"], registry=self.registry)
        self._retries = Counter(
            "triage_casesystem_retries", "Attempts beyond the first, by operation.", ["operation"],
            registry=self.registry)
        self._breaker_state = Gauge(
            "triage_casesystem_breaker_state",
            "Case system circuit breaker: 0 closed, 1 open, 2 half-open.",
            registry=self.registry)
        self._breaker_state.set_function(lambda: float(self.breaker.state.value))
        _install_log_filter()

    async def __aenter__(self) -> CaseSystemClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the calls

    async def cases_for(self, cpr: str) -> list[CaseRecord]:
        """The active cases the person is a member of (cached for ``cache_ttl``)."""
        if self._cache is not None:
            cached = self._cache.get(cpr)
            if cached is not None:
                self._count("cases_for", "cache_hit")
                return list(cached)
        task = self._inflight.get(cpr)
        if task is None:
            task = asyncio.ensure_future(self._fetch_cases(cpr))
            self._inflight[cpr] = task
            task.add_done_callback(lambda t: self._forget(cpr, t))
        else:
            self._count("cases_for", "coalesced")
        return list(await asyncio.shield(task))

    def _forget(self, cpr: str, task: asyncio.Task[tuple[CaseRecord, ...]]) -> None:
        if self._inflight.get(cpr) is task:
            del self._inflight[cpr]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when no one waits

    async def _fetch_cases(self, cpr: str) -> tuple[CaseRecord, ...]:
        what = f"the cases lookup for {mask(cpr)}"
        response = await self._request("cases_for", what, "POST", "/v1/cases/lookup",
                                       json={"cpr": cpr})
        if response.status_code != 200:
            raise self._rejected("cases_for", what, response)
        cases = tuple(self._parse_cases("cases_for", what, response))
        if self._cache is not None:
            self._cache[cpr] = cases
        self._count("cases_for", "ok")
        return cases

    async def all_cases(self, *, page_size: int = 500) -> list[CaseRecord]:
        """Every active case, following the pages (for a warm start)."""
        what = "the list of all active cases"
        result: list[CaseRecord] = []
        token: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": page_size}
            if token is not None:
                params["page_token"] = token
            response = await self._request("all_cases", what, "GET", "/v1/cases", params=params)
            if response.status_code != 200:
                raise self._rejected("all_cases", what, response)
            result.extend(self._parse_cases("all_cases", what, response))
            next_token: object = response.json().get("next_page_token")
            if next_token is None:
                break
            if not isinstance(next_token, str) or not next_token:
                raise self._bad_response("all_cases", what, "next_page_token is not a string")
            token = next_token
        self._count("all_cases", "ok")
        return result

    async def deliver(self, task: Task | Mapping[str, Any]) -> bool:
        """Deliver a task; True if the case system created it, False if it already had it.

        Raises :class:`TaskConflict` (409), :class:`TaskRejected` (other 4xx) or
        :class:`LookupUnavailable`. PUT is idempotent, so retrying a lost answer is safe.
        """
        task_id: object
        if isinstance(task, Task):
            body, task_id = task.to_json(), task.task_id
        else:
            body, task_id = orjson.dumps(dict(task)), task.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise TaskRejected("the task has no task_id; it was not sent", status=0)
        what = f"the delivery of task {task_id}"
        response = await self._request(
            "deliver", what, "PUT", f"/v1/tasks/{quote(task_id, safe='')}", content=body,
            headers={"content-type": "application/json"})
        if response.status_code == 201:
            self._count("deliver", "created")
            return True
        if response.status_code == 200:
            self._count("deliver", "duplicate")
            return False
        if response.status_code == 409:
            self._count("deliver", "conflict")
            raise TaskConflict(f"the case system already holds a different task under id "
                               f"{task_id} (HTTP 409){_problem_detail(response)}")
        self._count("deliver", "rejected")
        raise TaskRejected(f"the case system rejected {what}: HTTP {response.status_code}"
                           f"{_problem_detail(response)}", status=response.status_code)

    async def udk(self, cpr: str) -> dict[str, Any] | None:
        """The person's UDK § 8 record (benefits and income), or None if UDK has none."""
        what = f"the UDK lookup for {mask(cpr)}"
        response = await self._request("udk", what, "POST", "/v1/udk/persons/lookup",
                                       json={"cpr": cpr})
        if response.status_code == 404:
            self._count("udk", "not_found")
            return None
        if response.status_code != 200:
            raise self._rejected("udk", what, response)
        try:
            record = response.json()
        except ValueError:
            raise self._bad_response("udk", what, "not JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("benefits"), list):
            raise self._bad_response("udk", what, "not a UDK record")
        self._count("udk", "ok")
        return record

    async def health(self) -> bool:
        """Whether the case system answers its health check (one attempt, breaker ignored)."""
        try:
            response = await self._http.get("/v1/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    # -- the common path

    async def _request(self, operation: str, what: str, method: str, path: str,
                       **kwargs: Any) -> httpx.Response:
        """One call with breaker, timeout and retries. Returns any response below 500 (429
        excepted); raises :class:`LookupUnavailable` when the case system could not answer."""
        tries = 0
        last: _Failed | None = None

        async def attempt() -> httpx.Response:
            nonlocal tries, last
            self.breaker.before_call()
            tries += 1
            if tries > 1:
                self._retries.labels(operation).inc()
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TimeoutException:
                last = _Failed("timeout", "no answer in time")
            except httpx.ConnectError:
                last = _Failed("unreachable", "could not connect")
            except httpx.TransportError as exc:
                last = _Failed("transport_error", type(exc).__name__)
            except BaseException:
                self.breaker.release()
                raise
            else:
                if response.status_code < 500 and response.status_code != 429:
                    self.breaker.record_success()
                    return response
                last = _Failed("server_error", "", status=response.status_code)
            self.breaker.record_failure()
            raise last

        try:
            return await retry(attempt, self.attempts, self.base_delay, self.max_delay,
                               retry_on=lambda exc: isinstance(exc, _Failed), rng=self._rng,
                               sleep=self._sleep)
        except CircuitOpen as exc:
            if last is not None:  # this call's own attempts opened the breaker: report why
                self._count(operation, last.reason)
                message = (f"{self._failure_text(what, last, tries)}; the circuit breaker is "
                           "now open, so no further attempt was made")
                raise LookupUnavailable(message, reason=last.reason,
                                        operation=operation) from None
            self._count(operation, "breaker_open")
            raise LookupUnavailable(
                f"{what} was not attempted: the case system failed "
                f"{self.breaker.failure_threshold} times in a row, so the circuit breaker is "
                f"open (next trial call in {max(exc.retry_in, 0.0):.1f} s)",
                reason="breaker_open", operation=operation) from None
        except _Failed as failure:
            self._count(operation, failure.reason)
            raise LookupUnavailable(self._failure_text(what, failure, tries),
                                    reason=failure.reason, operation=operation) from None

    def _failure_text(self, what: str, failure: _Failed, tries: int) -> str:
        attempts = self._attempts_text(tries)
        if failure.reason == "timeout":
            return (f"the case system did not answer {what} within {self.timeout:g} s "
                    f"(timeout; {attempts})")
        if failure.reason == "unreachable":
            return (f"could not connect to the case system for {what}: connection refused or "
                    f"host unreachable ({attempts})")
        if failure.reason == "server_error":
            return (f"the case system answered {what} with HTTP {failure.status}, an error on "
                    f"its side ({attempts})")
        return f"the connection to the case system broke during {what}: {failure.detail} " \
               f"({attempts})"

    @staticmethod
    def _attempts_text(tries: int) -> str:
        return "1 attempt" if tries == 1 else f"{tries} attempts"

    def _parse_cases(self, operation: str, what: str,
                     response: httpx.Response) -> list[CaseRecord]:
        try:
            body = response.json()
            raw = body["cases"]
            if not isinstance(raw, list):
                raise TypeError
            return [CaseRecord.model_validate(item) for item in raw]
        except ValidationError as exc:
            raise self._bad_response(operation, what, _validation_summary(exc)) from None
        except (ValueError, KeyError, TypeError):
            raise self._bad_response(operation, what, "not a case list") from None

    def _bad_response(self, operation: str, what: str, detail: str) -> LookupUnavailable:
        self._count(operation, "bad_response")
        return LookupUnavailable(f"the case system's answer to {what} was unusable: {detail}",
                                 reason="bad_response", operation=operation)

    def _rejected(self, operation: str, what: str, response: httpx.Response) -> LookupUnavailable:
        self._count(operation, "rejected")
        return LookupUnavailable(
            f"the case system rejected {what}: HTTP {response.status_code}"
            f"{_problem_detail(response)}", reason="rejected", operation=operation)

    def _count(self, operation: str, outcome: str) -> None:
        self._requests.labels(operation, outcome).inc()
