"""Task ids as keyed hashes, so nobody outside the service can compute one in advance.

A task id is derived from the correlation group (or event) and the case, so a redelivered or
replayed event gets the same id and the case system's idempotent ``PUT /v1/tasks/{task_id}``
creates nothing twice. With a *public* hash of those parts, anyone who can see an event id and a
case id could plant a harmless-looking task under the id first and the real delivery would be
taken for a repeat (issue 9, "tasks can be forged and squatted"). So the id is a MAC: keyed
BLAKE2b (RFC 7693, keyed mode) of the parts, with a secret key from configuration.

The key: ``TRIAGE_TASK_KEY`` (at least 16 characters) or ``TRIAGE_TASK_KEY_FILE`` (a file
holding it). Without either, a documented development key is used and the worker logs a
warning once: ids are then as guessable as before. The worker, ``triage replay`` and backtests
read the same variables, so a replay run with the same key reproduces the worker's task ids.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

__all__ = ["DEV_TASK_KEY", "TaskIds", "TaskKeyError", "task_key_from_env",
           "warn_if_development_key"]

DEV_TASK_KEY = b"triage-development-task-key (not a secret)"
"""Used when no key is configured. Public, so ids made with it can be forged: development only."""

MIN_KEY_LENGTH = 16

log = logging.getLogger(__name__)
_warned = False


class TaskKeyError(ValueError):
    """The configured task key is unusable (too short, unreadable file). Never echoes the key."""


def task_key_from_env(environ: dict[str, str] | None = None, *, warn: bool = True) -> bytes:
    """The task key from ``TRIAGE_TASK_KEY`` or ``TRIAGE_TASK_KEY_FILE``; the development key
    (with a one-time warning, unless ``warn`` is false) when neither is set. The worker warns,
    as it delivers tasks to a case system; offline runs (replay, backtests) only write files,
    and a warning there would be noise on every command."""
    env = os.environ if environ is None else environ
    value = env.get("TRIAGE_TASK_KEY")
    path = env.get("TRIAGE_TASK_KEY_FILE")
    if value is None and path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TaskKeyError(f"TRIAGE_TASK_KEY_FILE: cannot read {path}: "
                               f"{exc.strerror}") from None
    if value is None or value == "":
        if warn:
            _warn_dev_key()
        return DEV_TASK_KEY
    if len(value) < MIN_KEY_LENGTH:
        raise TaskKeyError(f"the task key must be at least {MIN_KEY_LENGTH} characters")
    return value.encode()


def warn_if_development_key(key: bytes) -> None:
    """Warn (once per process) when ``key`` is the public development key."""
    if key == DEV_TASK_KEY:
        _warn_dev_key()


def _warn_dev_key() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("no TRIAGE_TASK_KEY configured: task ids use the public development key "
                    "and can be forged; set TRIAGE_TASK_KEY in production")


def _fingerprint(key: bytes) -> str:
    return hashlib.blake2b(key, digest_size=8, person=b"triage-taskkey").hexdigest()


class TaskIds:
    """Makes task ids: ``task-`` and 16 hex digits of a keyed BLAKE2b of the parts."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        # BLAKE2b takes keys of up to 64 bytes; a longer secret is condensed first.
        self._key = key if len(key) <= 64 else hashlib.blake2b(key, digest_size=64).digest()

    def __repr__(self) -> str:
        return "TaskIds(key=<secret>)"

    # The key is never written into a checkpoint (the worker pickles its decider): a restored
    # core takes the key configured now, as a core rebuilt from the journal would.
    def __getstate__(self) -> dict[str, str]:
        return {"fingerprint": _fingerprint(self._key)}

    def __setstate__(self, state: dict[str, str]) -> None:
        self._key = TaskIds(task_key_from_env())._key
        if state.get("fingerprint") != _fingerprint(self._key):
            log.warning("the task key differs from the one in use when this state was saved: "
                        "tasks of groups still open get ids under the new key")

    def of(self, *parts: str) -> str:
        """The task id for ``parts`` (e.g. correlation id and case id): stable for one key."""
        digest = hashlib.blake2b("\x1f".join(parts).encode(), key=self._key, digest_size=8)
        return f"task-{digest.hexdigest()}"
