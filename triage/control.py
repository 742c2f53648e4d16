"""Control records: operator changes to a running core, as records of the worker's journal.

The core's state is a function of its journal (``triage/stream/decider.py``), so a change an
operator makes live — promote a ruleset, carry a shadow, create or expire a silence — must be a
journal record too: applied where it stands in the stream, and applied again at the same point
when a worker rebuilds after a restart, so every record is decided by the ruleset (and the
silences) that decided it the first time. This module is the core side of that: how a change is
written (:func:`ruleset_record`, :func:`shadow_record`, :func:`silence_record`,
:func:`expire_record`) and what applying one does (:func:`apply_control`). The worker's
adapter only produces these records and routes records whose ``triage-kind`` header is one of
:data:`KINDS` here instead of to :meth:`Triage.process`.

A ruleset record carries the rule file's bytes, not a path or a version: the journal then holds
everything a rebuild needs, the version is recomputed from the bytes (the same bytes, the same
version), and a file edited on disk since cannot change the past. Validate before journalling
(:func:`triage.rules.parse_ruleset`, :meth:`Silences.add` via :func:`check_silence`): an
invalid change is rejected with its messages and never reaches the journal, so applying a
journalled record cannot fail differently the second time.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import orjson

from triage.core import Outputs, Triage
from triage.rules import parse_ruleset
from triage.silences import Silence, parse_silence, refusals
from triage.stream.settings import KIND_HEADER

RULESET, SHADOW, SILENCE, EXPIRE = "ruleset", "shadow", "silence", "silence-expire"
KINDS = frozenset({RULESET, SHADOW, SILENCE, EXPIRE})
"""Header values of control records (``tick`` is the clock's, :mod:`triage.stream.decider`)."""


class ControlError(ValueError):
    """A control record that cannot be applied (it should never have been journalled)."""


Record = tuple[list[tuple[str, bytes]], bytes]
"""Kafka headers and value of a control record."""


def ruleset_record(rule_file: bytes) -> Record:
    """Make this rule file the active ruleset from this point of the journal."""
    return [(KIND_HEADER, RULESET.encode())], rule_file


def shadow_record(rule_file: bytes | None) -> Record:
    """Carry this rule file as the shadow ruleset from here (None or empty: no shadow)."""
    return [(KIND_HEADER, SHADOW.encode())], rule_file or b""


def silence_record(silence: Silence) -> Record:
    return [(KIND_HEADER, SILENCE.encode())], orjson.dumps(silence.to_dict())


def expire_record(silence_id: str, at: datetime) -> Record:
    """End a silence early at event time ``at`` (the watermark when the operator asked)."""
    return [(KIND_HEADER, EXPIRE.encode())], orjson.dumps(
        {"id": silence_id, "at": at.isoformat()})


def kind_of(headers: Any) -> str | None:
    """The control kind of a journal record's headers, or None for an event (or a tick)."""
    for key, value in headers or ():
        if key == KIND_HEADER:
            kind = value.decode() if isinstance(value, bytes) else str(value)
            return kind if kind in KINDS else None
    return None


def check_silence(core: Triage, data: dict[str, Any]) -> Silence:
    """Validate a new silence against the core's active ruleset and its silences, as
    creating it would (:class:`triage.silences.SilenceError` with every reason)."""
    from triage.silences import SilenceError

    silence = parse_silence(data)
    problems = refusals(silence, core.ruleset)
    if core.silences.get(silence.id) is not None:
        problems.append(f"a silence with id {silence.id} exists already")
    if problems:
        raise SilenceError(problems)
    return silence


def apply_control(core: Triage, kind: str, value: bytes) -> Outputs:
    """Apply one control record to ``core``; the decisions it makes ready are returned (a new
    ruleset may decide events that waited for a household move)."""
    if kind == RULESET:
        return core.use_ruleset(parse_ruleset(value, "<journal>"))
    if kind == SHADOW:
        return core.use_shadow(parse_ruleset(value, "<journal>") if value else None)
    if kind == SILENCE:
        core.silences.add(parse_silence(orjson.loads(value)), core.ruleset)
        return Outputs()
    if kind == EXPIRE:
        data = orjson.loads(value)
        # read outside the suppress: a record without "id" or "at" is corrupt and must stop the
        # worker loudly, not be skipped as if its silence were already forgotten
        silence_id, at = data["id"], datetime.fromisoformat(data["at"])
        with contextlib.suppress(KeyError):  # forgotten after its grace: nothing left to end
            core.silences.expire(silence_id, at)
        return Outputs()
    raise ControlError(f"unknown control record kind {kind!r}")
