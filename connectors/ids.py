"""Event ids derived from registry data, as keyed hashes.

A connector that builds an ``event_id`` from what a record says — a CPR number, an event code,
a timestamp — must give the same id when the same record is delivered again (the core treats a
repeated id as a redelivery), so the id is a hash of those fields. An *unkeyed* hash of a CPR
number can be recomputed by anyone who guesses the number, and CPR numbers are easy to guess
(a birth date and four digits): the id would leak the number it was made from. So ids are
HMAC-SHA-256 of the fields under a secret key, shaped as a UUID (version 8, "custom").

The key comes from configuration: ``--id-key`` on the command line, else the environment
variable ``TRIAGE_ID_KEY``. Without either, a documented development key is used and a warning
says so — fine for tests and demos, never for production, where ids made with the public key can
be guessed again. Changing the key changes every id: keep it stable for a deployment (ids made
under the old key are no longer recognised as redeliveries).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import uuid
from dataclasses import dataclass, field

__all__ = ["DEVELOPMENT_KEY", "ENV_VAR", "IdKey", "default_key", "keyed_id"]

log = logging.getLogger(__name__)

ENV_VAR = "TRIAGE_ID_KEY"
DEVELOPMENT_KEY = "triage-development-id-key-not-secret"
"""The key used when none is configured. It is public: ids made with it can be recomputed."""

_SEPARATOR = b"\x1f"


@dataclass(frozen=True, slots=True)
class IdKey:
    """A secret for event ids. ``repr`` never shows it."""

    secret: bytes = field(repr=False)
    development: bool = False

    @classmethod
    def from_config(cls, value: str | None = None, *, warn: bool = True) -> IdKey:
        """The key given, else ``TRIAGE_ID_KEY``, else the development key (logged as a
        warning unless ``warn`` is false: the caller says it its own way)."""
        value = value if value else os.environ.get(ENV_VAR) or None
        if value is None:
            if not warn:
                return cls(DEVELOPMENT_KEY.encode(), development=True)
            log.warning("%s is not set: event ids use the public development key and can be "
                        "recomputed from CPR numbers; set %s (or --id-key) in production",
                        ENV_VAR, ENV_VAR)
            return cls(DEVELOPMENT_KEY.encode(), development=True)
        return cls(value.encode())

    def event_id(self, *parts: object) -> str:
        """A UUID-shaped HMAC-SHA-256 of ``parts`` (None counts as empty)."""
        message = _SEPARATOR.join(b"" if p is None else str(p).encode() for p in parts)
        digest = bytearray(hmac.new(self.secret, message, hashlib.sha256).digest()[:16])
        digest[6] = (digest[6] & 0x0F) | 0x80  # version 8: custom
        digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 9562 variant
        return str(uuid.UUID(bytes=bytes(digest)))


_default: IdKey | None = None


def default_key() -> IdKey:
    """The process-wide key from the environment (read once; the warning is logged once)."""
    global _default
    if _default is None:
        _default = IdKey.from_config()
    return _default


def keyed_id(*parts: object, key: IdKey | None = None) -> str:
    """:meth:`IdKey.event_id` with ``key``, or the process-wide default key."""
    return (key or default_key()).event_id(*parts)
