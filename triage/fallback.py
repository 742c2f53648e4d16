"""Who owns a raised event that touches no known case: the configured fallback unit.

A raised decision with no case — the case system could not be asked (``could-not-check``), an
event type nobody knows (``unclassified``), an event id reused with other content
(``event-id-conflict``) — would otherwise reach no caseworker at all (issue 9: 1,475 such
events in one run with the case system down). The core turns each into one task for the
fallback unit, ``TRIAGE_FALLBACK_UNIT`` (default ``borgerservice``, the citizen service desk that
can look the person up).

The task keeps CONTRACT.md's shape, so the case system and every consumer read it unchanged:
``case_id`` is the documented pseudo id :data:`NO_CASE` (never a real case id: it contains no
digit and case systems number their cases) and ``benefit`` is :data:`NO_BENEFIT`. The person is
named only masked (``facts["person"]``, ``DDMMYY-****``); the event ids lead to the event.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_FALLBACK_UNIT", "NO_BENEFIT", "NO_CASE", "fallback_unit_from_env"]

NO_CASE = "no-case"
"""The ``case_id`` of a task that belongs to no known case."""

NO_BENEFIT = "none"
"""The ``benefit`` of such a task."""

DEFAULT_FALLBACK_UNIT = "borgerservice"


def fallback_unit_from_env(environ: dict[str, str] | None = None) -> str:
    """``TRIAGE_FALLBACK_UNIT``, or :data:`DEFAULT_FALLBACK_UNIT` when unset or blank."""
    env = os.environ if environ is None else environ
    return env.get("TRIAGE_FALLBACK_UNIT", "").strip() or DEFAULT_FALLBACK_UNIT
