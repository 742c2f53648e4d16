"""Checkpoints of a journal partition's decider, so a restart does not replay the whole journal.

The decider's state — the register as events changed it, the case index, open household moves,
events waiting for them or held for event-time order, remembered event ids — is a function of
the journal up to an offset. Every ``interval`` journal records the worker writes that state to
``TRIAGE_CHECKPOINT_DIR`` (a directory every worker that may take the partition over can read: a
shared volume in production). A worker that takes the partition over loads the newest checkpoint
at or below the offset the group committed and replays only the journal records after it.

A checkpoint file is one JSON header line and the state (pickled, compressed)::

    {"format": "triage-checkpoint", "version": 1, "partition": 0, "offset": 40000,
     "compat": {...}, "last_record": "<blake2b of the record before offset>", "mac": "<hmac>"}

It is used only when everything checks out, else the next older one, else the full journal:

* the **MAC** (HMAC-SHA256 over header and state, key ``TRIAGE_CHECKPOINT_KEY``; without one, a
  key file created 0600 in the directory) — a damaged or forged file is never unpickled;
* the **compatibility key** — checkpoint format, the code's state schema, Python version,
  ruleset version, window, lateness, clock bound, municipality and the digest of the reference
  files: a checkpoint of other settings or other reference data would decide differently;
* the **journal** — the record just before the checkpoint's offset must be the one the
  checkpoint saw (a reset or replaced cluster has other records there).

Every fallback is logged with its reason and counted (``triage_checkpoint_fallbacks_total``).
Files are written atomically (temporary file, fsync, rename), mode 0600 — they hold CPR
numbers — and only the newest ``keep`` per partition are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import pickle
import secrets
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

FORMAT = "triage-checkpoint"
VERSION = 1
STATE_SCHEMA = 3
"""Bump when the decider's state classes change shape: older checkpoints are then refused.
2: the core carries rulesets by version, a shadow ruleset and silences. 3: the event-time
buffer holds (registered_at, arrival, held) tuples (issue 13)."""


class CheckpointRefused(Exception):
    """A checkpoint that must not be used; ``reason`` is a short label for the metric."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def record_digest(value: bytes, kind: bytes | None) -> str:
    return hashlib.blake2b((kind or b"") + b"\x00" + value, digest_size=16).hexdigest()


def file_digest(*paths: Path | None) -> str:
    h = hashlib.sha256()
    for path in paths:
        if path is not None:
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    h.update(chunk)
        h.update(b"\x00")
    return h.hexdigest()


@dataclass(frozen=True)
class Found:
    path: Path
    partition: int
    offset: int


class CheckpointStore:
    """The checkpoints of one deployment in one directory."""

    def __init__(self, directory: Path, compat: dict[str, Any], *, key: bytes | None = None,
                 keep: int = 2) -> None:
        self.directory = directory
        self.compat = {**compat, "format_version": VERSION, "state_schema": STATE_SCHEMA,
                       "python": f"{sys.version_info.major}.{sys.version_info.minor}"}
        self.keep = keep
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._key = key if key else self._local_key()

    def _local_key(self) -> bytes:
        path = self.directory / "checkpoint.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        return path.read_bytes()

    def _mac(self, header: bytes, state: bytes) -> str:
        return hmac.new(self._key, header + b"\n" + state, hashlib.sha256).hexdigest()

    # --- writing ------------------------------------------------------------------------------

    def write(self, partition: int, offset: int, decider: Any, last_record: str) -> Path:
        """Checkpoint ``decider`` (its state after journal records ``< offset``)."""
        state = zlib.compress(pickle.dumps(decider, protocol=pickle.HIGHEST_PROTOCOL), 1)
        header = orjson.dumps({"format": FORMAT, "version": VERSION, "partition": partition,
                               "offset": offset, "compat": self.compat,
                               "last_record": last_record}, option=orjson.OPT_SORT_KEYS)
        mac = self._mac(header, state)
        final = self.directory / f"p{partition}-{offset:012d}.ckpt"
        temporary = final.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(header + b"\n" + mac.encode() + b"\n" + state)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        for old in list(self.found(partition))[self.keep:]:
            old.path.unlink(missing_ok=True)
        return final

    # --- reading ------------------------------------------------------------------------------

    def found(self, partition: int, upto: int | None = None) -> Iterator[Found]:
        """This partition's checkpoints at or below ``upto``, newest first."""
        entries = []
        for path in self.directory.glob(f"p{partition}-*.ckpt"):
            try:
                offset = int(path.stem.split("-", 1)[1])
            except ValueError:
                continue
            if upto is None or offset <= upto:
                entries.append(Found(path, partition, offset))
        yield from sorted(entries, key=lambda f: f.offset, reverse=True)

    def load(self, found: Found) -> tuple[Any, str]:
        """The decider in ``found`` and the digest of the journal record before its offset;
        :class:`CheckpointRefused` when it must not be used."""
        try:
            data = found.path.read_bytes()
            header, mac, state = data.split(b"\n", 2)
            meta = orjson.loads(header)
        except (OSError, ValueError, orjson.JSONDecodeError) as exc:
            raise CheckpointRefused("damaged", f"{found.path.name}: unreadable ({exc})") from None
        # bytes, not text: compare_digest raises TypeError on non-ASCII text, and a damaged
        # MAC line must fall back to an older checkpoint, not crash the start
        if not hmac.compare_digest(mac, self._mac(header, state).encode()):
            raise CheckpointRefused("damaged", f"{found.path.name}: its MAC does not match")
        if meta.get("format") != FORMAT or meta.get("compat") != self.compat:
            changed = sorted(k for k in set(self.compat) | set(meta.get("compat") or {})
                             if (meta.get("compat") or {}).get(k) != self.compat.get(k))
            raise CheckpointRefused("incompatible", f"{found.path.name}: written with other "
                                    f"{', '.join(changed) or 'format'}")
        if meta.get("partition") != found.partition or meta.get("offset") != found.offset:
            raise CheckpointRefused("damaged", f"{found.path.name}: header names another place")
        try:
            decider = pickle.loads(zlib.decompress(state))  # MAC-verified: written by us
        except Exception as exc:
            raise CheckpointRefused("damaged",
                                    f"{found.path.name}: cannot be read ({type(exc).__name__})"
                                    ) from None
        return decider, str(meta["last_record"])
