"""The worker's page and API, installed on its faust web server (aiohttp underneath).

==========================  ====================================================================
``GET /``                   the dashboard (HTML; polls the API below)
``GET /api/summary``        every figure of the page, one JSON document
``GET /api/series``         suppressed/raised/invalid per ``bucket`` (hour, day) of ``clock``
                            (registered_at, decided_at), the ``last`` N buckets
``GET /api/chart``          a chart as SVG: ``name`` = series (with clock, bucket), rule, type,
                            unit
``GET /api/event?id=``      the explorer: one event's decision, its verdicts, facts and tasks
``GET /api/case?id=``       the explorer: every decision about one case, and its tasks
``GET|POST /login``         the login form (only when a viewer token is configured)
``GET /assets/{name}``      the page's script and style sheet
==========================  ====================================================================

``docs/dashboard.md`` documents the JSON. All of ``/`` and ``/api/…`` need the viewer token when
one is set (:mod:`triage.web.access`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import faust
import orjson
from aiohttp import web as aioweb

from triage.decisionlog.store import SERIES_BUCKETS, SERIES_CLOCKS, DecisionLog
from triage.stream.settings import is_loopback
from triage.web import page, svg
from triage.web.access import COOKIE, Access, WebAccessError
from triage.web.figures import live_figures, log_figures, log_state, summary

log = logging.getLogger(__name__)
Handler = Callable[[Any, aioweb.Request], Awaitable[aioweb.StreamResponse]]
FAUST_BUILT_INS = ("faust.web.apps.production_index:blueprint", "faust.web.apps.router:blueprint",
                   "faust.web.apps.tables.blueprint")


def _json(data: Any, status: int = 200) -> aioweb.Response:
    return aioweb.Response(body=orjson.dumps(data), status=status,
                           content_type="application/json", headers=page.HEADERS)


def _html(text: str, status: int = 200) -> aioweb.Response:
    return aioweb.Response(text=text, status=status, content_type="text/html",
                           headers=page.HEADERS)


def install(app: faust.App, worker: Any, *, poll_ms: int = 5000) -> None:
    """Serve the page and its API from ``app``'s web server, with the figures of ``worker``
    (a :class:`triage.stream.app.TriageWorker`, whose ``decision_log`` feed may be None)."""
    settings = worker.settings
    token = settings.viewer_token.get_secret_value() if settings.viewer_token else None
    access = Access(token)
    if not access.required and not is_loopback(settings.web_host):
        raise WebAccessError(f"the page would be served on {settings.web_host} without a "
                             "viewer token: set TRIAGE_VIEWER_TOKEN or bind to loopback")
    _replace_faust_pages(app)
    metrics = worker.metrics
    metrics.allow_rules(rule.id for rule in worker.ruleset.rules)
    if metrics.ruleset("active") is None:
        metrics.set_ruleset(worker.ruleset.version, "active")
    _serve_client_metrics(worker)
    _measure_lag(worker)

    def feed() -> Any:
        return getattr(worker, "decision_log", None)

    async def from_log(method: Callable[[DecisionLog], Any]) -> Any:
        current = feed()
        if current is None:
            return None
        return await current.store.call(method)

    def guarded(handler: Handler, *, html: bool = False) -> Handler:
        async def view(self: Any, request: aioweb.Request) -> aioweb.StreamResponse:
            if not access.allowed(request):
                if html:
                    raise aioweb.HTTPSeeOther("/login")
                return _json({"error": "the viewer token is required"}, 401)
            try:
                return await handler(self, request)
            except aioweb.HTTPException:
                raise
            except Exception as exc:  # the log's database is down: say so, keep serving
                log.warning("%s failed: %s: %s", request.path, type(exc).__name__, exc)
                return _json({"error": f"decision log unavailable: {type(exc).__name__}"},
                             503)
        view.__name__ = handler.__name__
        return view

    def updating_gauges() -> None:
        update = getattr(worker, "_update_gauges", None)
        if update is not None:
            update()

    async def index(self: Any, request: aioweb.Request) -> aioweb.StreamResponse:
        return _html(page.dashboard(poll_ms))

    async def api_summary(self: Any, request: aioweb.Request) -> aioweb.StreamResponse:
        updating_gauges()
        state = log_state(feed())
        try:
            logged = await from_log(log_figures)
        except Exception as exc:  # the log's database is down: the live figures still show
            logged = None
            state["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return _json(summary(live_figures(metrics.registry), logged, state))

    def series_args(request: aioweb.Request) -> tuple[str, str, int] | None:
        clock = request.query.get("clock", "registered_at")
        bucket = request.query.get("bucket", "hour")
        try:
            last = min(max(int(request.query.get("last", "48")), 1), 1000)
        except ValueError:
            return None
        if clock not in SERIES_CLOCKS or bucket not in SERIES_BUCKETS:
            return None
        return clock, bucket, last

    async def api_series(self: Any, request: aioweb.Request) -> aioweb.StreamResponse:
        args = series_args(request)
        if args is None:
            return _json({"error": "clock: registered_at|decided_at, bucket: hour|day, "
                                   "last: 1..1000"}, 400)
        clock, bucket, last = args
        points = await from_log(partial(DecisionLog.series, clock=clock, bucket=bucket,
                                        last=last))
        return _json({"clock": clock, "bucket": bucket, "points": points or []})

    async def api_chart(self: Any, request: aioweb.Request) -> aioweb.StreamResponse:
        name = request.query.get("name", "")
        if name == "series":
            args = series_args(request)
            if args is None:
                return _json({"error": "bad clock, bucket or last"}, 400)
            clock, bucket, last = args
            points = await from_log(partial(DecisionLog.series, clock=clock, bucket=bucket,
                                            last=last)) or []
            clock_name = "event time" if clock == "registered_at" else "decision time"
            image = svg.columns(points, title=f"Decisions per {bucket} ({clock_name}, UTC)")
        elif name in ("rule", "type", "unit"):
            column = "event_type" if name == "type" else name
            breakdown = await from_log(partial(DecisionLog.breakdown, column=column)) or {}
            title = {"rule": "By deciding rule", "type": "By event type",
                     "unit": "By owning unit"}[name]
            image = svg.bars(list(breakdown.items()), title=title)
        else:
            return _json({"error": "name: series, rule, type or unit"}, 400)
        return aioweb.Response(text=image, content_type="image/svg+xml", headers=page.HEADERS)

    async def api_event(self: Any, request: aioweb.Request) -> aioweb.StreamResponse:
        event_id = request.query.get("id", "").strip()
        if not event_id or len(event_id) > 200:
            return _json({"error": "id: an event id"}, 400)
        found = await from_log(partial(DecisionLog.show, event_id=event_id))
        if found is None:
            return _json({"error": "no decision about this event in the decision log"}, 404)
        return _json(found)

    async def api_case(self: Any, request: aioweb.Request) -> aioweb.StreamResponse:
        case_id = request.query.get("id", "").strip()
        if not case_id or len(case_id) > 200:
            return _json({"error": "id: a case id"}, 400)
        found = await from_log(partial(DecisionLog.case, case_id=case_id))
        if found is None or (not found["decisions"] and not found["tasks"]):
            return _json({"error": "no decision about this case in the decision log"}, 404)
        return _json(found)

    def serve(path: str, handler: Any) -> None:
        app.page(path)(handler)

    serve("/", guarded(index, html=True))
    serve("/api/summary", guarded(api_summary))
    serve("/api/series", guarded(api_series))
    serve("/api/chart", guarded(api_chart))
    serve("/api/event", guarded(api_event))
    serve("/api/case", guarded(api_case))

    async def assets(self: Any, request: aioweb.Request, name: str) -> aioweb.StreamResponse:
        body = page.asset(name)
        if body is None:
            raise aioweb.HTTPNotFound()
        return aioweb.Response(body=body, content_type=page.ASSET_TYPES[name],
                               headers={"Cache-Control": "no-cache",
                                        "X-Content-Type-Options": "nosniff"})

    serve("/assets/{name}", assets)

    @app.page("/login")
    class Login(faust.web.View):
        async def get(self, request: aioweb.Request) -> aioweb.StreamResponse:
            if not access.required:
                raise aioweb.HTTPSeeOther("/")
            return _html(page.login())

        async def post(self, request: aioweb.Request) -> aioweb.StreamResponse:
            if not access.required:
                raise aioweb.HTTPSeeOther("/")
            try:
                form = await request.post()
            except ValueError:  # not UTF-8, or a multipart body without its boundary: was a 500
                return _html(page.login(failed=True), 400)
            candidate = form.get("token")
            if not isinstance(candidate, str) or not access.token_matches(candidate):
                return _html(page.login(failed=True), 401)
            response = aioweb.Response(status=303, headers={"Location": "/",
                                                            **page.HEADERS})
            response.set_cookie(COOKIE, access.session_cookie(), httponly=True,
                                samesite="Strict", path="/",
                                secure=request.scheme == "https")
            return response


def _replace_faust_pages(app: faust.App) -> None:
    """faust serves ``{"status": "OK"}`` at ``/`` and its topology at ``/router`` and
    ``/table``; the page takes ``/``, and the internals are not for the outside."""
    blueprints = app.web.blueprints
    blueprints._enabled = [(prefix, bp) for prefix, bp in blueprints._enabled
                           if bp not in FAUST_BUILT_INS]


def _serve_client_metrics(worker: Any) -> None:
    """The case-system client counts its requests in a registry of its own: serve it on the
    worker's ``/metrics`` too."""
    from triage.stream.metrics import registry_collector

    client = getattr(worker, "client", None)
    if client is not None and getattr(client, "registry", None) is not None \
            and client.registry is not worker.metrics.registry:
        worker.metrics.registry.register(registry_collector(client.registry))


def _measure_lag(worker: Any) -> None:
    """Consumer lag of the decide loop and the router on ``/metrics``."""
    from triage.stream.lag import aiokafka_lag

    sources = worker.metrics.lag_sources
    sources.append(lambda: aiokafka_lag(worker.decide_loop.consumer))
    router = getattr(worker, "router", None)
    if router is not None:
        sources.append(lambda: aiokafka_lag(router.consumer))
