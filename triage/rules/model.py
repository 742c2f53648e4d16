"""A rule and its matchers, as the loader builds them and the engine runs them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MISSING: Any = object()
"""The value of a fact that does not apply to the event."""

OPERATORS = ("eq", "ne", "in", "not_in", "gt", "ge", "lt", "le")


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one fact: ``fact <op> value``.

    In YAML: ``fact: value`` (equals), ``fact: [a, b]`` (one of), or ``fact: {op: value}`` with op
    one of eq, ne, in, not_in, gt, ge, lt, le. ``fact: null`` matches an absent or null fact; every
    other matcher fails on an absent fact.
    """

    fact: str
    op: str
    value: Any

    def test(self, actual: Any) -> bool:
        op, value = self.op, self.value
        if actual is MISSING:
            actual = None
            if not (op == "eq" and value is None):
                return False
        if op == "eq":
            return bool(actual == value)
        if op == "in":
            return actual in value
        if op == "ne":
            return bool(actual != value)
        if op == "not_in":
            return actual not in value
        if actual is None:
            return False
        if op == "gt":
            return bool(actual > value)
        if op == "ge":
            return bool(actual >= value)
        if op == "lt":
            return bool(actual < value)
        return bool(actual <= value)

    def describe(self) -> str:
        return f"{self.fact} {self.op} {self.value!r}"


@dataclass(frozen=True, slots=True)
class Rule:
    """What decides a verdict when all its matchers hold."""

    id: str
    matchers: tuple[Matcher, ...]
    score: float
    reason: str
    title: str
    unit: str | None = None
    payment_hold: bool = False
    description: str = ""
    line: int = 0

    def event_types(self) -> frozenset[str] | None:
        """The event types this rule can match, or None when it does not constrain the type."""
        for m in self.matchers:
            if m.fact == "event.type" and m.op == "eq":
                return frozenset({m.value})
            if m.fact == "event.type" and m.op == "in":
                return frozenset(m.value)
        return None
