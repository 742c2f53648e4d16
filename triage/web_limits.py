"""Bounded HTTP servers: header and idle timeouts, a connection limit, body and field limits.

Both HTTP servers of the project run on aiohttp — the reference case system, and the worker's
web port (faust's web server is aiohttp too). Out of the box neither bounds anything an attacker
controls: issue 9 held 1,500 half-open requests on each (never timed out; with a 1,024
descriptor limit ``/health`` stopped answering for 25 s and the log grew by 44 MB of "Too many
open files"). :class:`HttpLimits` says what is allowed, and

* :class:`GuardedAppRunner` — an ``aiohttp.web.AppRunner`` whose server holds at most
  ``max_connections`` connections: when a new one would exceed that, the oldest connection that
  is *not* in the middle of a request (idle, or still sending its request line and headers) is
  closed to make room — so a crowd of half-open connections cannot lock out ``/health`` — and
  if every connection is busy with a request, the new one is closed. The limit is also kept
  below half the process's descriptor limit, so ``accept()`` never meets "Too many open
  files";
* ``keepalive_timeout = header_timeout``: aiohttp closes a connection that has not completed a
  request header within that time after connecting, or after its last response (the idle
  timeout) — a slow-loris that trickles one header byte at a time is closed all the same;
* ``max_line_size``, ``max_field_size``, ``max_headers``: a longer request line or header, or
  more headers, is answered 400 (aiohttp's parser);
* ``client_max_size = max_body``: a larger body is answered 413 before it is read;
* :func:`request_timeout_middleware`: a handler (reading the body included) that takes longer
  than ``request_timeout`` is answered 408 and the connection closed.

For faust: :func:`faust_web_options` gives the ``faust.App`` settings (body and parser limits,
and faust's own ``/router/``, ``/table/``, ``/stats/``, ``/graph/``, ``/performance/`` pages
switched off: they expose internals nobody here uses), and :func:`harden_faust_web` swaps the
runner faust builds for a :class:`GuardedAppRunner`. Both must be applied to the app before the
worker starts: ``App(..., **faust_web_options(limits))`` then ``harden_faust_web(app, limits)``.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

__all__ = ["GuardedAppRunner", "GuardedServer", "HttpLimits", "faust_web_options",
           "harden_faust_web", "request_timeout_middleware"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    """What one HTTP server allows a client. Times in seconds, sizes in bytes."""

    header_timeout: float = 10.0
    """From connect (or the last response) to a complete request header; also the idle
    timeout of a kept-alive connection."""
    request_timeout: float = 30.0
    """For a handler to finish, reading the request body included."""
    max_connections: int = 256
    max_body: int = 1 << 20
    max_line: int = 8190
    """Longest request line (method, target, version)."""
    max_field: int = 8190
    """Longest header line."""
    max_headers: int = 64
    untimed_paths: tuple[str, ...] = ()
    """Path prefixes exempt from ``request_timeout`` (e.g. a dashboard's event stream)."""

    def handler_args(self) -> dict[str, Any]:
        """Keyword arguments of aiohttp's request handler (``Application(handler_args=…)``)."""
        return {"keepalive_timeout": self.header_timeout, "max_line_size": self.max_line,
                "max_field_size": self.max_field, "max_headers": self.max_headers}

    def application_options(self) -> dict[str, Any]:
        """Keyword arguments of ``aiohttp.web.Application``."""
        return {"client_max_size": self.max_body, "handler_args": self.handler_args(),
                "middlewares": [request_timeout_middleware(self.request_timeout,
                                                           self.untimed_paths)]}

    def connection_limit(self) -> int:
        """``max_connections``, but never more than half the descriptor limit."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, soft // 2))


def request_timeout_middleware(seconds: float, untimed: tuple[str, ...] = ()) -> Middleware:
    """An aiohttp middleware answering 408 when a handler takes longer than ``seconds``
    (requests whose path starts with one of ``untimed`` are exempt)."""

    @web.middleware
    async def timeout(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                      ) -> web.StreamResponse:
        if untimed and request.path.startswith(untimed):
            return await handler(request)
        try:
            async with asyncio.timeout(seconds):
                return await handler(request)
        except TimeoutError:
            return web.json_response(
                {"type": "about:blank", "title": "Request Timeout", "status": 408,
                 "detail": f"the request was not completed within {seconds:g} s"},
                status=408, content_type="application/problem+json",
                headers={"Connection": "close"})

    return timeout


class GuardedServer(Server):
    """aiohttp's low-level server with a connection limit (see the module docstring)."""

    def __init__(self, *args: Any, max_connections: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.shed = 0
        """Connections closed to stay within the limit."""

    def connection_made(self, handler: RequestHandler, transport: Any) -> None:
        super().connection_made(handler, transport)
        if len(self._connections) > self.max_connections:
            victim = next((h for h in self._connections
                           if h is not handler and not _busy(h)), handler)
            self.shed += 1
            if self.shed == 1 or self.shed % 1000 == 0:
                log.warning("HTTP connection limit (%d) reached: closed %d idle or half-open "
                            "connections so far", self.max_connections, self.shed)
            victim.force_close()
            self._connections.pop(victim, None)


def _busy(handler: RequestHandler) -> bool:
    """Whether the connection is in the middle of a request (headers read, handler running).
    aiohttp keeps this in ``_current_request`` (pinned aiohttp version, see pyproject)."""
    return getattr(handler, "_current_request", None) is not None


class GuardedAppRunner(web.AppRunner):
    """An ``AppRunner`` whose server is a :class:`GuardedServer` under ``limits``."""

    def __init__(self, app: web.Application, *, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits

    async def _make_server(self) -> Server:
        plain = await super()._make_server()  # runs the app's startup, freezes it
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation,
                             loop=plain._loop, max_connections=self.limits.connection_limit(),
                             **plain._kwargs)

    @property
    def guarded(self) -> GuardedServer | None:
        server = self.server
        return server if isinstance(server, GuardedServer) else None


def faust_web_options(limits: HttpLimits) -> dict[str, Any]:
    """Settings for ``faust.App(...)``: the limits, and faust's internal pages off."""
    return {"web_application_options": limits.application_options(),
            "web_router_enabled": False, "web_tables_enabled": False,
            "web_stats_enabled": False, "web_graph_enabled": False,
            "web_metrics_enabled": False}


def harden_faust_web(app: Any, limits: HttpLimits) -> GuardedAppRunner:
    """Give a ``faust.App``'s web server a :class:`GuardedAppRunner` (before it starts).

    faust's aiohttp driver builds ``AppRunner(web_app, access_log=None)`` in its constructor
    (``faust.web.drivers.aiohttp.Web``) and starts that runner's site; replacing the runner
    before start is the only hook it offers.
    """
    web_driver = app.web
    runner = GuardedAppRunner(web_driver.web_app, access_log=None, limits=limits,
                              handler_cancellation=True)
    web_driver._runner = runner
    return runner
