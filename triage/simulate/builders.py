"""Event objects exactly in CONTRACT.md's input format.

One small function per event family. They only shape dictionaries (key order is fixed, so the
serialised bytes are deterministic); choosing who and what is the scenarios' job, and applying an
event to the world is the caller's.

CPR hændelseskoder: the contract says ``code`` may be absent, and the corpus uses that freedom —
some event types carry a code, some ``null``, some no key at all — so a consumer that insists on
the field shows up.
"""

from __future__ import annotations

from typing import Any

ABSENT = object()
"""Sentinel for "leave the ``code`` key out"."""

CPR_CODES: dict[str, Any] = {
    "address_changed": "A01",
    "name_changed": "A13",
    "died": "A21",
    "emigrated": ABSENT,
    "disappeared": None,
    "child_added": ABSENT,
    "address_protection_changed": None,
    "guardianship_changed": ABSENT,
    "cpr_number_changed": None,
}
CIVIL_CODES = {"G": "A19", "F": "A20", "P": "A23"}


def cpr(event_id: str, registered_at: str, event_type: str, person: str, *,
        code: Any = None, derived_marker: str | None = None,
        fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CPR event: common fields, then the type's own."""
    if code is None:
        code = CPR_CODES.get(event_type)
    event: dict[str, Any] = {
        "event_id": event_id, "source": "cpr", "type": event_type,
        "registered_at": registered_at, "cpr": person,
    }
    if code is not ABSENT:
        event["code"] = code
    event["derived_marker"] = derived_marker
    if fields:
        event.update(fields)
    return event


def address_changed(event_id: str, registered_at: str, person: str,
                    from_: dict[str, Any] | None, to: dict[str, Any],
                    move_date: str) -> dict[str, Any]:
    return cpr(event_id, registered_at, "address_changed", person,
               fields={"from": from_, "to": to, "move_date": move_date})


def dar(event_id: str, registered_at: str, event_type: str, before: dict[str, Any],
        after: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "event_id": event_id, "source": "dar", "type": event_type,
        "registered_at": registered_at, "address_id": before["address_id"],
        "before": before, "after": after,
    }


def atp(event_id: str, registered_at: str, event_type: str, person: str,
        **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id, "source": "atp", "type": event_type,
        "registered_at": registered_at, "cpr": person,
    }
    event.update(fields)
    return event
