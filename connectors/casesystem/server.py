"""A reference municipal case system: a real HTTP server implementing ``openapi.yaml``.

It serves the active cases of a cases JSON Lines file (CONTRACT.md "Reference data") and the UDK
§ 8 records of an optional JSON Lines file (one ``{"cpr", "benefits", "income"}`` per line), and
keeps every task it receives in a SQLite store (:mod:`connectors.casesystem.store`), so its
idempotency survives a restart.

What it holds is personal data, so it is built like a service that holds it:

* **Authenticated.** Every endpoint but ``/v1/health`` requires ``Authorization: Bearer
  <token>`` (401 otherwise); the token is given, or a random one is made and kept in
  :attr:`ReferenceCaseSystem.token`.
* **CPR numbers never in a URL.** A person is looked up with ``POST …/lookup`` and the number
  in the JSON body; a ``cpr`` query parameter is refused (400), proxies and access logs record
  URLs.
* **JSON only.** A body of any other content type is answered 415.
* **Tasks cannot be squatted.** A ``PUT`` of a known ``task_id`` with a different body (apart
  from ``created_at``) is a conflict (409); the stored task is kept.
* **Bounded.** Header and idle timeouts, a connection limit, request line, header and body
  limits, a request timeout (:mod:`triage.web_limits`); lists are paginated (``limit`` at most
  1,000, the tasks a page at a time from the store).

For tests and the demo::

    server = ReferenceCaseSystem("cases.jsonl", udk_path="udk.jsonl", port=0)
    await server.start()          # binds a free port; server.url is "http://127.0.0.1:NNNNN"
    server.token                  # the bearer token clients must send
    server.faults.delay = 2.0     # answer every request 2 s late
    server.faults.fail = True     # answer every request 503
    server.faults.flap = True     # answer every other request 503 (the first one fails)
    await server.stop()           # server down; start() again binds the same port
    server.request_count          # requests that reached the server, faults included

From the command line, :func:`run_reference_server` blocks until SIGINT or SIGTERM.

No access log is written, and the process's log is masked and rate-limited
(:mod:`triage.logsafety`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.casesystem.store import PutResult, TaskStore
from triage import cprnumber, logsafety
from triage.models.address import Cpr
from triage.models.events import AtpBenefit
from triage.models.reference import CaseRecord
from triage.models.wire import TaskRecord
from triage.web_limits import GuardedAppRunner, HttpLimits, request_timeout_middleware

__all__ = ["Faults", "ReferenceCaseSystem", "run_reference_server", "serve_forever"]

DEFAULT_PAGE_LIMIT = 500
DEFAULT_TASK_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 1000
PROBLEM = "application/problem+json"
_DIGITS = re.compile(r"[0-9]{1,18}")
"""A page token or limit: ASCII digits, at most 18 (an int64, whatever the store holds)."""
LIMITS = HttpLimits(max_body=256 * 1024, max_connections=512)
"""The reference server's HTTP limits: a task is a few KB, so 256 KiB is generous."""


# --- the UDK record --------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class UdkBenefit(_Strict):
    benefit: AtpBenefit
    amount: float
    period_from: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    period_to: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class UdkIncome(_Strict):
    amount: float
    income_type: Literal["wage", "pension", "benefit", "other"]
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")


class UdkPerson(_Strict):
    cpr: Cpr
    benefits: list[UdkBenefit] = Field(default_factory=list)
    income: list[UdkIncome] = Field(default_factory=list)


# --- faults ----------------------------------------------------------------------------------


@dataclass
class Faults:
    """Failure simulation. Every request (health included) passes through these, in order:
    ``delay`` seconds late, then 503 if ``fail``, or if ``flap`` and it is an odd-numbered
    request since flapping began (the first fails, the second succeeds, …)."""

    delay: float = 0.0
    fail: bool = False
    flap: bool = False
    status: int = 503
    _flap_count: int = field(default=0, repr=False)

    def reset(self) -> None:
        self.delay, self.fail, self.flap, self._flap_count = 0.0, False, False, 0

    def should_fail(self) -> bool:
        if self.fail:
            return True
        if self.flap:
            self._flap_count += 1
            return self._flap_count % 2 == 1
        self._flap_count = 0
        return False


# --- helpers ---------------------------------------------------------------------------------


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json")


def _problem(status: int, title: str, detail: str,
             headers: dict[str, str] | None = None) -> web.Response:
    """RFC 9457 problem details. Callers never put a CPR number in ``detail``."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.Response(body=orjson.dumps(body), status=status, content_type=PROBLEM,
                        headers=headers)


def _read_jsonl(path: Path) -> list[bytes]:
    with path.open("rb") as fh:
        return [line for line in (raw.strip() for raw in fh) if line]


def _validation_summary(exc: ValidationError) -> str:
    """Field names and reasons only — never the input values."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts[:5])


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json"))


def _page_params(query: Any, default: int) -> tuple[int, int] | web.Response:
    """``(offset, limit)`` from ``page_token`` and ``limit``, or a 400 problem."""
    # ASCII digits only, and few of them: str.isdigit() also accepts "²" (int() refuses it) and
    # int() refuses more than 4,300 digits — both were a 500, not a 400
    token = query.get("page_token", "0")
    if not _DIGITS.fullmatch(token) or str(int(token)) != token:
        return _problem(400, "Bad Request", "page_token: not a token this server issued")
    raw_limit = query.get("limit", str(default))
    if not _DIGITS.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_PAGE_LIMIT:
        return _problem(400, "Bad Request", f"limit: must be an integer 1..{MAX_PAGE_LIMIT}")
    return int(token), int(raw_limit)


class _Lookup(BaseModel):
    """The body of a lookup: the person, never in the URL."""

    model_config = ConfigDict(extra="forbid")
    cpr: str


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- the server ------------------------------------------------------------------------------


class ReferenceCaseSystem:
    """The reference case system, started and stopped from a running event loop.

    ``store_path`` is the SQLite task store (created ``0600``); None keeps tasks in memory
    (they survive ``stop()``/``start()``, not the process). ``token`` is the bearer token
    clients must send; None makes a random one (:attr:`token`).
    """

    def __init__(
        self,
        cases_path: str | Path,
        udk_path: str | Path | None = None,
        store_path: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        limits: HttpLimits = LIMITS,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token or secrets.token_urlsafe(32)
        self.limits = limits
        self.faults = Faults()
        self.request_count = 0
        self.requests: list[tuple[str, str]] = []  # (method, route template)
        self.store = TaskStore(store_path)
        self.cases: list[dict[str, Any]] = []
        self._cases_by_cpr: dict[str, list[dict[str, Any]]] = {}
        self.udk: dict[str, dict[str, Any]] = {}
        self._runner: GuardedAppRunner | None = None
        self._load_cases(Path(cases_path))
        if udk_path is not None:
            self._load_udk(Path(udk_path))

    def __repr__(self) -> str:
        return f"ReferenceCaseSystem({self.url!r}, token=<secret>)"

    # -- data

    def _load_cases(self, path: Path) -> None:
        for number, line in enumerate(_read_jsonl(path), start=1):
            try:
                case = CaseRecord.model_validate_json(line)
            except ValidationError as exc:
                raise ValueError(f"{path}, line {number}: {_validation_summary(exc)}") from None
            self.add_case(case.model_dump(mode="json"))

    def _load_udk(self, path: Path) -> None:
        for number, line in enumerate(_read_jsonl(path), start=1):
            try:
                person = UdkPerson.model_validate_json(line)
            except ValidationError as exc:
                raise ValueError(f"{path}, line {number}: {_validation_summary(exc)}") from None
            self.udk[person.cpr] = person.model_dump(mode="json")

    def add_case(self, case: dict[str, Any]) -> None:
        """Add one active case (already in wire form)."""
        self.cases.append(case)
        for cpr in dict.fromkeys(m["cpr"] for m in case["members"]):
            self._cases_by_cpr.setdefault(cpr, []).append(case)

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def runner(self) -> GuardedAppRunner | None:
        """The running server's runner (its :class:`~triage.web_limits.GuardedServer` is
        ``runner.guarded``), None when stopped."""
        return self._runner

    def _app(self) -> web.Application:
        app = web.Application(
            middlewares=[request_timeout_middleware(self.limits.request_timeout),
                         self._faults_middleware, self._auth_middleware,
                         self._json_middleware],
            client_max_size=self.limits.max_body, handler_args=self.limits.handler_args())
        app.router.add_get("/v1/health", self._health)
        app.router.add_get("/v1/cases", self._cases)
        app.router.add_post("/v1/cases/lookup", self._lookup_cases)
        app.router.add_put("/v1/tasks/{task_id}", self._put_task)
        app.router.add_get("/v1/tasks/{task_id}", self._get_task)
        app.router.add_get("/v1/tasks", self._list_tasks)
        app.router.add_post("/v1/udk/persons/lookup", self._udk_person)
        return app

    async def start(self) -> None:
        """Listen on ``host:port``; on a first start with port 0 a free port is chosen and kept,
        so a later ``start()`` after ``stop()`` comes back on the same port."""
        if self._runner is not None:
            return
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        # handler_cancellation: a client that gave up (timeout) cancels its slow handler, so a
        # delayed request never holds up stop().
        runner = GuardedAppRunner(self._app(), limits=self.limits, access_log=None,
                                  handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            sock.close()
            raise
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and close open connections (the server is down). Data is kept."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def close(self) -> None:
        """Close the task store (after :meth:`stop`, when done with the server)."""
        self.store.close()

    async def __aenter__(self) -> ReferenceCaseSystem:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        self.close()

    # -- middleware

    @web.middleware
    async def _faults_middleware(self, request: web.Request,
                                 handler: Handler) -> web.StreamResponse:
        self.request_count += 1
        resource = request.match_info.route.resource
        self.requests.append((request.method, resource.canonical if resource else "<no route>"))
        if self.faults.delay > 0:
            await asyncio.sleep(self.faults.delay)
        if self.faults.should_fail():
            return _problem(self.faults.status, "Service Unavailable",
                            "the case system is temporarily unavailable (simulated)")
        return await handler(request)

    @web.middleware
    async def _auth_middleware(self, request: web.Request,
                               handler: Handler) -> web.StreamResponse:
        if request.path == "/v1/health":
            return await handler(request)
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        # aiohttp decodes header bytes that are not UTF-8 as surrogate escapes; encoding them
        # back the same way compares the bytes the client sent (a plain encode() raised: 500)
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                credentials.strip().encode("utf-8", "surrogateescape"), self.token.encode()):
            return _problem(401, "Unauthorized", "a valid bearer token is required",
                            headers={"WWW-Authenticate": 'Bearer realm="casesystem"'})
        return await handler(request)

    @web.middleware
    async def _json_middleware(self, request: web.Request,
                               handler: Handler) -> web.StreamResponse:
        if request.method in ("POST", "PUT", "PATCH") and not _is_json(request.content_type):
            return _problem(415, "Unsupported Media Type",
                            "the body must be application/json")
        return await handler(request)

    # -- handlers

    async def _health(self, request: web.Request) -> web.Response:
        return _json({"status": "ok", "cases": len(self.cases), "tasks": len(self.store)})

    async def _read_json(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = orjson.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return _problem(413, "Content Too Large",
                            f"the body is larger than {self.limits.max_body} bytes")
        except orjson.JSONDecodeError:
            return _problem(422, "Unprocessable Content", "body: not JSON")
        if not isinstance(body, dict):
            return _problem(422, "Unprocessable Content", "body: not a JSON object")
        return body

    async def _person(self, request: web.Request) -> str | web.Response:
        """The CPR number of a lookup body, or a problem (never echoing the value)."""
        body = await self._read_json(request)
        if isinstance(body, web.Response):
            return body
        try:
            lookup = _Lookup.model_validate(body)
            return cprnumber.validate(lookup.cpr)
        except ValidationError as exc:
            return _problem(422, "Unprocessable Content", _validation_summary(exc))
        except cprnumber.InvalidCpr as exc:
            return _problem(400, "Bad Request", f"cpr: {exc}")

    async def _cases(self, request: web.Request) -> web.Response:
        if "cpr" in request.query:
            return _problem(400, "Bad Request", "cpr: not accepted in the URL (URLs are logged); "
                            "use POST /v1/cases/lookup with the number in the body")
        params = _page_params(request.query, DEFAULT_PAGE_LIMIT)
        if isinstance(params, web.Response):
            return params
        offset, limit = params
        page = self.cases[offset:offset + limit]
        end = offset + len(page)
        next_token = str(end) if end < len(self.cases) else None
        return _json({"cases": page, "next_page_token": next_token})

    async def _lookup_cases(self, request: web.Request) -> web.Response:
        cpr = await self._person(request)
        if isinstance(cpr, web.Response):
            return cpr
        return _json({"cases": self._cases_by_cpr.get(cpr, []), "next_page_token": None})

    async def _put_task(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        body = await self._read_json(request)
        if isinstance(body, web.Response):
            return body
        try:
            task = TaskRecord.model_validate(body)
        except ValidationError as exc:
            return _problem(422, "Unprocessable Content", _validation_summary(exc))
        if task.task_id != task_id:
            return _problem(422, "Unprocessable Content",
                            "task_id: the body's task_id differs from the path's")
        result, stored = self.store.put(task.model_dump(mode="json"))
        if result is PutResult.CONFLICT:
            return _problem(409, "Conflict", "task_id: already received with a different body "
                            "(another case, title, score or events); the stored task is kept")
        if result is PutResult.REPEAT:
            return _json(stored, status=200)
        return _json(stored, status=201, headers={"Location": f"/v1/tasks/{task_id}"})

    async def _get_task(self, request: web.Request) -> web.Response:
        task = self.store.get(request.match_info["task_id"])
        if task is None:
            return _problem(404, "Not Found", "no task with this id")
        return _json(task)

    async def _list_tasks(self, request: web.Request) -> web.Response:
        params = _page_params(request.query, DEFAULT_TASK_PAGE_LIMIT)
        if isinstance(params, web.Response):
            return params
        after, limit = params
        tasks, next_position = self.store.page(after, limit)
        return _json({"tasks": tasks, "next_page_token":
                      str(next_position) if next_position is not None else None})

    async def _udk_person(self, request: web.Request) -> web.Response:
        cpr = await self._person(request)
        if isinstance(cpr, web.Response):
            return cpr
        person = self.udk.get(cpr)
        if person is None:
            return _problem(404, "Not Found", "no UDK record for this person")
        return _json(person)


# --- command line ----------------------------------------------------------------------------


async def serve_forever(
    cases: str | Path,
    udk: str | Path | None = None,
    store: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    token: str | None = None,
    on_ready: Callable[[ReferenceCaseSystem], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the reference server until SIGINT/SIGTERM (or until ``stop`` is set)."""
    server = ReferenceCaseSystem(cases, udk_path=udk, store_path=store, host=host, port=port,
                                 token=token)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        await server.start()
        if on_ready is not None:
            on_ready(server)
        await stop.wait()
    finally:
        await server.stop()
        server.close()
        for sig in installed:
            loop.remove_signal_handler(sig)


def run_reference_server(
    cases: str | Path,
    udk: str | Path | None = None,
    store: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    token: str,
) -> None:
    """Blocking entry point for ``triage casesystem serve``: serve until SIGINT/SIGTERM, with
    a masked, rate-limited log."""
    logsafety.install()

    def ready(server: ReferenceCaseSystem) -> None:
        where = f"tasks in {store}" if store is not None else "tasks in memory"
        print(f"reference case system listening on {server.url} "
              f"({len(server.cases)} cases, {len(server.udk)} UDK records, {where}); "
              "Ctrl-C stops it", file=sys.stderr, flush=True)

    asyncio.run(serve_forever(cases, udk, store, host, port, token=token, on_ready=ready))
