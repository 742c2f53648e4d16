"""Credentials for the case system: a bearer token, from configuration, never logged.

``openapi.yaml`` describes two security schemes. In production the municipal integration
platform issues access tokens by OAuth2 client credentials (``integrationPlatform``); the
reference server accepts one static bearer token (``referenceToken``). Either way the client
sends ``Authorization: Bearer <token>``; where the token comes from is configuration:

* ``TRIAGE_CASESYSTEM_TOKEN`` — the token itself, or
* ``TRIAGE_CASESYSTEM_TOKEN_FILE`` — a file holding it (e.g. a mounted secret, or a file the
  platform's agent refreshes with client-credentials tokens). :class:`BearerAuth` reads it
  again whenever it changes, so a rotated token is picked up without a restart.

The reference server reads the same variables (``triage casesystem serve --token-file``), so
one setting configures both ends in a demo or test.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import httpx

__all__ = ["BearerAuth", "CredentialsError", "read_token_file", "token_from_env"]

MIN_TOKEN_LENGTH = 16


class CredentialsError(ValueError):
    """The configured token is unusable. The message never contains the token."""


def read_token_file(path: str | Path) -> str:
    """The token in ``path`` (surrounding whitespace removed)."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot read the token file: {exc.strerror}") from None
    return _checked(token, f"{path}")


def token_from_env(environ: dict[str, str] | None = None) -> str | None:
    """``TRIAGE_CASESYSTEM_TOKEN``, else the file named by ``TRIAGE_CASESYSTEM_TOKEN_FILE``,
    else None."""
    env = os.environ if environ is None else environ
    token = env.get("TRIAGE_CASESYSTEM_TOKEN")
    if token:
        return _checked(token.strip(), "TRIAGE_CASESYSTEM_TOKEN")
    path = env.get("TRIAGE_CASESYSTEM_TOKEN_FILE")
    return read_token_file(path) if path else None


def _checked(token: str, where: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise CredentialsError(f"{where}: the token must be at least {MIN_TOKEN_LENGTH} "
                               "characters")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise CredentialsError(f"{where}: the token must not contain spaces or control "
                               "characters")
    return token


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer …`` from a fixed token or a token file (re-read when its
    modification time changes). The token never appears in a repr."""

    def __init__(self, token: str | None = None, path: str | Path | None = None) -> None:
        if (token is None) == (path is None):
            raise ValueError("give exactly one of token or path")
        self._token = _checked(token, "token") if token is not None else None
        self._path = Path(path) if path is not None else None
        self._stamp: int | None = None
        if self._path is not None:
            self._current()  # fail fast on an unreadable file

    def __repr__(self) -> str:
        return f"BearerAuth({'file ' + str(self._path) if self._path else 'token'}=<secret>)"

    def _current(self) -> str:
        if self._path is None:
            assert self._token is not None
            return self._token
        try:
            stamp = self._path.stat().st_mtime_ns
        except OSError as exc:
            raise CredentialsError(f"{self._path}: cannot read the token file: "
                                   f"{exc.strerror}") from None
        if stamp != self._stamp or self._token is None:
            self._token, self._stamp = read_token_file(self._path), stamp
        return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if request.url.path != "/v1/health":  # the one public operation
            request.headers["Authorization"] = f"Bearer {self._current()}"
        yield request
