"""Operators change the running worker: promote or reload a ruleset, end or start silences.

Every change is validated first against the live core, then written as a control record into
the journal (:mod:`triage.control`), where the decider applies it at its place in the stream —
so a rebuild after a restart applies it at the same point, and every record is decided by the
ruleset (and silences) that decided it the first time. Rejected changes never reach the journal;
the old ruleset keeps deciding. Every attempt, accepted or rejected, is an audit record on
``triage.audit`` (key: the ruleset name) and counted in ``triage_rules_reloads_total{result}``.

HTTP, on the worker's web port (CONTRACT.md "Live operation"):

===================================  ===========================================================
``POST /api/rules/promote``          body: a rule file (YAML); ``?file=NAME`` names it in errors
``POST /api/rules/reload``           re-read ``TRIAGE_RULES`` (also on SIGHUP)
``GET /api/silences``                the silences and their state
``POST /api/silences``               body: a silence (JSON; :func:`triage.silences.parse_silence`)
``DELETE /api/silences/{id}``        end a silence now (at the stream's event time)
===================================  ===========================================================

The changing endpoints need ``Authorization: Bearer <operator token>`` (``TRIAGE_OPERATOR_TOKEN``
or ``TRIAGE_OPERATOR_TOKEN_FILE``); with none configured they answer 403 — disabled. Listing
silences needs the viewer token when one is set, like the page. Tokens are compared in constant
time and never logged.

At start the journal decides: after the rebuild, the active ruleset is the one the journal's
last ruleset record made active (``TRIAGE_RULES`` only for a journal that has none). A start
with a ``TRIAGE_RULES`` that differs is logged as a warning; ``reload`` makes it active.
``TRIAGE_SHADOW_RULES`` is journalled at start whenever it differs from the shadow in force.
"""

from __future__ import annotations

import hmac
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faust
import orjson
from aiohttp import web as aioweb

from triage.control import (
    check_silence,
    expire_record,
    ruleset_record,
    shadow_record,
    silence_record,
)
from triage.rules import RulesetError, parse_ruleset
from triage.rules.change import describe_change
from triage.silences import SilenceError

if TYPE_CHECKING:
    from triage.core import Triage
    from triage.stream.app import TriageWorker
    from triage.stream.decider import RoutedDecider

log = logging.getLogger(__name__)
MAX_RULE_FILE = 256 * 1024
"""Bytes a promoted rule file may have."""


class ChangeRefused(Exception):
    """A change that is not made; ``problems`` say why, one line each."""

    def __init__(self, status: int, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.status, self.problems = status, problems


class OperatorDesk:
    """Validates operator changes against the live core, journals them and audits them."""

    def __init__(self, worker: TriageWorker) -> None:
        self.worker = worker
        self.reloading: Any = None
        """The SIGHUP reload in progress, if any."""

    def decider(self, *, ready: bool = True) -> RoutedDecider:
        """The journal partition's decider (one per municipality, CONTRACT.md); with
        ``ready``, only once the worker is ready (the start-up reconciliation runs before)."""
        deciders = self.worker.deciders
        if not deciders or (ready and not self.worker.ready):
            raise ChangeRefused(503, ["the worker is not ready (rebuilding or not assigned)"])
        return next(iter(deciders.values()))

    def core(self) -> Triage:
        return self.decider().core

    def event_time(self) -> datetime | None:
        """The stream's event time (the pipeline's clock), None before any event."""
        latest = self.decider().pipeline.latest
        return datetime.fromtimestamp(latest, UTC) if latest is not None else None

    async def promote(self, text: bytes, source: str, who: str, action: str = "promote",
                      ) -> dict[str, Any]:
        core = self.core()
        old = core.ruleset
        try:
            ruleset = parse_ruleset(text, source)
        except RulesetError as exc:
            await self.audit(action, "rejected", who, old.name, old.version, None,
                             problems=list(exc.problems))
            raise ChangeRefused(422, list(exc.problems)) from None
        summary = describe_change(old, ruleset)
        await self.worker.journal(ruleset_record(text))
        await self.audit(action, "accepted", who, ruleset.name, old.version, ruleset.version,
                         summary=summary)
        return {"from": old.version, "to": ruleset.version, "summary": summary}

    async def reload(self, who: str) -> dict[str, Any]:
        path = self.worker.settings.rules
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            problem = f"{path}: cannot read: {exc.strerror}"
            await self.audit("reload", "rejected", who, None, self.core().ruleset.version,
                             None, problems=[problem])
            raise ChangeRefused(422, [problem]) from None
        return await self.promote(text, str(path), who, action="reload")

    async def journal_shadow(self, path: Path | None, who: str = "TRIAGE_SHADOW_RULES") -> None:
        """Carry ``path``'s ruleset as the shadow (None: none), unless it is so already."""
        core = self.decider(ready=False).core
        text = Path(path).read_bytes() if path is not None else None
        shadow = parse_ruleset(text, str(path)) if text is not None else None
        current = core.shadow.version if core.shadow is not None else None
        if (shadow.version if shadow is not None else None) == current:
            return
        await self.worker.journal(shadow_record(text))
        await self.audit("shadow", "accepted", who, shadow.name if shadow else None, current,
                         shadow.version if shadow else None,
                         summary=describe_change(core.ruleset, shadow) if shadow else "no shadow")

    def silences(self) -> list[dict[str, Any]]:
        core = self.core()
        now = self.event_time()
        return [{**s.to_dict(), "state": core.silences.state(s, now)} for s in core.silences]

    async def add_silence(self, data: Any, who: str) -> dict[str, Any]:
        core = self.core()
        if not isinstance(data, dict):
            raise ChangeRefused(400, ["a silence is a JSON object"])
        try:
            silence = check_silence(core, data)
        except (SilenceError, ValueError) as exc:
            problems = list(getattr(exc, "problems", [str(exc)]))
            await self.audit("silence", "rejected", who, core.ruleset.name,
                             core.ruleset.version, None, problems=problems)
            raise ChangeRefused(422, problems) from None
        await self.worker.journal(silence_record(silence))
        await self.audit("silence", "accepted", who, core.ruleset.name, core.ruleset.version,
                         core.ruleset.version, summary=silence.describe())
        return silence.to_dict()

    async def expire_silence(self, silence_id: str, who: str) -> dict[str, Any]:
        core = self.core()
        if core.silences.get(silence_id) is None:
            raise ChangeRefused(404, [f"no silence with id {silence_id[:80]}"])
        at = self.event_time() or datetime.now(UTC)  # nothing seen yet: now
        await self.worker.journal(expire_record(silence_id, at))
        await self.audit("silence-expire", "accepted", who, core.ruleset.name,
                         core.ruleset.version, core.ruleset.version,
                         summary=f"silence {silence_id} ends at {at.isoformat()}")
        return {"id": silence_id, "ends_at": at.isoformat()}

    async def audit(self, action: str, result: str, who: str, name: str | None,
                    from_version: str | None, to_version: str | None, *,
                    summary: str | None = None, problems: list[str] | None = None) -> None:
        entry = {"at": datetime.now(UTC).isoformat(), "who": who[:100], "action": action,
                 "result": result, "ruleset": name, "from": from_version, "to": to_version,
                 "summary": summary, "problems": (problems or [])[:50]}
        self.worker.metrics.reloads.labels(result).inc()
        log.info("operator %s %s: %s -> %s%s", action, result, from_version, to_version,
                 f" ({summary})" if summary else "")
        await self.worker.audit(orjson.dumps(entry), (name or "").encode())


def install(app: faust.App, worker: TriageWorker) -> OperatorDesk:
    """Serve the operator endpoints from ``app``'s web server (module docstring)."""
    from triage.web.access import Access

    desk = OperatorDesk(worker)
    token = worker.settings.operator_secret()
    viewer = worker.settings.viewer_token
    readers = Access(viewer.get_secret_value() if viewer is not None else None)

    def operator_of(request: aioweb.Request) -> str:
        if token is None:
            raise ChangeRefused(403, ["disabled: set TRIAGE_OPERATOR_TOKEN (or "
                                      "TRIAGE_OPERATOR_TOKEN_FILE) to allow changes"])
        header = request.headers.get("Authorization", "")
        # surrogate escapes (header bytes that are not UTF-8) back to the bytes sent: a plain
        # encode() raised, a 500 instead of the 401
        if not (header.startswith("Bearer ") and hmac.compare_digest(
                header[7:].strip().encode("utf-8", "surrogateescape"), token.encode())):
            raise ChangeRefused(401, ["the operator token is required"])
        return request.headers.get("X-Triage-Operator", "operator")[:100] or "operator"

    def answer(data: Any, status: int = 200) -> aioweb.Response:
        return aioweb.Response(body=orjson.dumps(data), status=status,
                               content_type="application/json")

    async def body_of(request: aioweb.Request) -> bytes:
        body = await request.content.read(MAX_RULE_FILE + 1)
        if len(body) > MAX_RULE_FILE:
            raise ChangeRefused(413, [f"the body exceeds {MAX_RULE_FILE} bytes"])
        return body

    async def handle(request: aioweb.Request, change: Any) -> aioweb.Response:
        try:
            return answer(await change())
        except ChangeRefused as exc:
            return answer({"errors": exc.problems}, exc.status)

    @app.page("/api/rules/promote")
    class Promote(faust.web.View):
        async def post(self, request: aioweb.Request) -> aioweb.StreamResponse:
            async def change() -> dict[str, Any]:
                who = operator_of(request)
                source = request.query.get("file", "<promoted>")[:200]
                return await desk.promote(await body_of(request), source, who)
            return await handle(request, change)

    @app.page("/api/rules/reload")
    class Reload(faust.web.View):
        async def post(self, request: aioweb.Request) -> aioweb.StreamResponse:
            async def change() -> dict[str, Any]:
                return await desk.reload(operator_of(request))
            return await handle(request, change)

    @app.page("/api/silences")
    class SilenceList(faust.web.View):
        async def get(self, request: aioweb.Request) -> aioweb.StreamResponse:
            if not readers.allowed(request):
                return answer({"errors": ["the viewer token is required"]}, 401)
            async def listing() -> dict[str, Any]:
                return {"silences": desk.silences()}
            return await handle(request, listing)

        async def post(self, request: aioweb.Request) -> aioweb.StreamResponse:
            async def change() -> dict[str, Any]:
                who = operator_of(request)
                try:
                    data = orjson.loads(await body_of(request))
                except orjson.JSONDecodeError as exc:
                    raise ChangeRefused(400, [f"not JSON: {exc}"]) from None
                return await desk.add_silence(data, who)
            return await handle(request, change)

    @app.page("/api/silences/{silence_id}")
    class SilenceOne(faust.web.View):
        async def delete(self, request: aioweb.Request,
                         silence_id: str) -> aioweb.StreamResponse:
            async def change() -> dict[str, Any]:
                return await desk.expire_silence(silence_id, operator_of(request))
            return await handle(request, change)

    return desk


def sighup_reload(desk: OperatorDesk) -> None:
    """SIGHUP: reload ``TRIAGE_RULES`` as ``POST /api/rules/reload`` would (audited)."""
    import asyncio

    async def reload() -> None:
        started = time.monotonic()
        try:
            result = await desk.reload("SIGHUP")
            log.info("SIGHUP reload: %s -> %s in %.2f s", result["from"], result["to"],
                     time.monotonic() - started)
        except ChangeRefused as exc:
            log.error("SIGHUP reload rejected, the active ruleset stays: %s", exc)

    desk.reloading = asyncio.ensure_future(reload())  # kept: a task nobody holds may vanish
