"""Who may read the page and its API (CONTRACT.md: reading endpoints that show case ids need
the viewer token).

With ``TRIAGE_VIEWER_TOKEN`` set, ``/`` and ``/api/…`` answer only a request that carries the
token as ``Authorization: Bearer <token>``, or the session cookie a browser gets by posting the
token to the login form (``POST /login``). The cookie holds an HMAC of the token, never the
token itself, is ``HttpOnly`` and ``SameSite=Strict``, and dies when the token is changed. The
token never travels in a URL, so it is in no history, proxy log or ``Referer``.

Without a token the page is served on loopback only: the settings refuse a non-loopback
``TRIAGE_WEB_HOST`` (:func:`triage.stream.settings.is_loopback`), and :func:`install` checks it
again. ``/health``, ``/ready`` and ``/metrics`` show no case ids and stay open, for probes and
Prometheus.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

COOKIE = "triage_viewer"


class WebAccessError(RuntimeError):
    """The page would be reachable from other machines without a token."""


class Access:
    """The viewer token check; ``token`` None means open (and loopback only)."""

    def __init__(self, token: str | None) -> None:
        self.token = token or None
        self._session = (hmac.new(self.token.encode(), b"triage viewer session",
                                  hashlib.sha256).hexdigest() if self.token else None)

    @property
    def required(self) -> bool:
        return self.token is not None

    def token_matches(self, candidate: str) -> bool:
        # a header or form value aiohttp could not decode as UTF-8 holds surrogate escapes:
        # encoded back to the bytes sent, it is simply wrong (a plain encode() raised: 500)
        return self.token is not None and hmac.compare_digest(
            candidate.encode("utf-8", "surrogateescape"), self.token.encode())

    def allowed(self, request: Any) -> bool:
        """Whether ``request`` (aiohttp) may read: no token configured, the bearer token, or
        the session cookie."""
        if self.token is None:
            return True
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and self.token_matches(header[7:].strip()):
            return True
        cookie = request.cookies.get(COOKIE)
        return bool(cookie) and self._session is not None and hmac.compare_digest(
            cookie.encode("utf-8", "surrogateescape"), self._session.encode())

    def session_cookie(self) -> str:
        assert self._session is not None
        return self._session
