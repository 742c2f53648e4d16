"""Broken lines for the dead-letter path: what a real feed occasionally delivers.

:func:`corrupt` takes a valid event that is about to be written, gives the copy a fresh event id
(so it never collides with a real event) and breaks it in one of the ways CONTRACT.md calls
invalid: not JSON at all, JSON cut off mid-line, a JSON array instead of an object, a required
field missing, a CPR number with an impossible date, an unknown ``source``, a field of the wrong
type, a timestamp without offset. The broken copy never reaches the world model.

It returns the line's bytes and the event id a consumer can still read from it (``None`` when
the line is not a parseable JSON object with an ``event_id``).
"""

from __future__ import annotations

import random
from typing import Any

import orjson

KINDS = ("not_json", "truncated", "json_array", "missing_field", "invalid_cpr",
         "unknown_source", "wrong_type", "naive_timestamp")

_REQUIRED: dict[str, tuple[str, ...]] = {
    "address_changed": ("to", "move_date", "cpr"),
    "died": ("date", "cpr"),
    "emigrated": ("date", "cpr"),
    "disappeared": ("date", "cpr"),
    "civil_status_changed": ("civil_status", "date"),
    "child_added": ("child_cpr", "parents", "address", "date"),
    "name_changed": ("cpr",),
    "address_protection_changed": ("cpr",),
    "guardianship_changed": ("cpr",),
    "cpr_number_changed": ("new_cpr", "cpr"),
    "benefit_started": ("benefit", "amount", "period_from"),
    "benefit_changed": ("benefit", "amount", "period_from"),
    "benefit_ended": ("benefit", "period_from"),
    "income_reported": ("amount", "income_type", "period"),
    "single_status_changed": ("single", "cpr"),
    "address_renamed": ("before", "address_id"),
    "address_renumbered": ("before", "address_id"),
    "postcode_changed": ("before", "address_id"),
    "municipality_changed": ("before", "address_id"),
    "address_retired": ("before", "address_id"),
}
"""Per known type, fields whose absence makes the event invalid (besides the common ones)."""

_NOT_JSON = (
    b"<html><body><h1>503 Service Unavailable</h1></body></html>",
    b"cpr;A01;flytning;se vedhaeftet",
    b"event_id=%s source=cpr type=address_changed",
    b"\x00\x00\x00\x02\x8f",
    b"{'event_id': '%s', 'source': 'cpr'}",
)


def corrupt(rng: random.Random, event: dict[str, Any],
            new_id: str) -> tuple[bytes, str | None, str]:
    """``(line, readable event id or None, kind)`` for a broken copy of ``event``."""
    copy = dict(event)
    copy["event_id"] = new_id
    kind = rng.choice(KINDS)
    if event.get("type") not in _REQUIRED:  # unknown types are lenient: break the syntax
        kind = rng.choice(("not_json", "truncated", "json_array"))
    if kind == "invalid_cpr" and "cpr" not in copy:
        kind = "unknown_source"
    if kind == "not_json":
        text = rng.choice(_NOT_JSON)
        return (text % new_id.encode() if b"%s" in text else text), None, kind
    if kind == "truncated":
        data = orjson.dumps(copy)
        return data[: rng.randrange(8, len(data) - 1)], None, kind
    if kind == "json_array":
        return b"[" + orjson.dumps(copy) + b"]", None, kind
    if kind == "missing_field":
        field = rng.choice(("registered_at", "event_id", *_REQUIRED[copy["type"]]))
        del copy[field]
        return orjson.dumps(copy), (None if field == "event_id" else new_id), kind
    if kind == "invalid_cpr":  # day 32/00/41 or month 13: no such date
        number = copy["cpr"]
        if rng.random() < 0.7:
            copy["cpr"] = rng.choice(("32", "00", "41")) + number[2:]
        else:
            copy["cpr"] = number[:2] + "13" + number[4:]
    elif kind == "unknown_source":
        copy["source"] = "skat"
    elif kind == "wrong_type":
        if "amount" in copy:
            copy["amount"] = [copy["amount"]]
        elif "to" in copy:
            copy["to"] = copy["to"]["label"]
        elif "before" in copy:
            copy["before"] = [copy["before"]]
        else:
            copy["cpr"] = int(copy["cpr"])
    elif kind == "naive_timestamp":
        copy["registered_at"] = copy["registered_at"][:19]
    return orjson.dumps(copy), new_id, kind
