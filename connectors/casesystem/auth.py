"""Credentials for the case system: a bearer token, from configuration, never logged.

``openapi.yaml`` describes two security schemes. In production the municipal integration
platform issues access tokens by OAuth2 client credentials (``integrationPlatform``); the
reference server accepts one static bearer token (``referenceToken``). Either way the client
sends ``Authorization: Bearer <token>``; where the token comes from is configuration:

* ``TRIAGE_CASESYSTEM_TOKEN`` — the token itself, or
* ``TRIAGE_CASESYSTEM_TOKEN_FILE`` — a file holding it (read on every start; e.g. a mounted
  secret, or a file a platform sidecar refreshes with client-credentials tokens).

The reference server reads the same variables (``triage casesystem serve --token-file``), so
one setting configures both ends in a demo or test.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CredentialsError", "read_token_file", "token_from_env"]

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
