"""Running a ruleset: first match wins, with a three-valued twist for pending facts.

A household fact (``household.moved_together``) can be pending while its household move still
collects members. A rule whose other matchers all hold but that tests a pending fact *might*
match, so the engine may not skip it: it answers :data:`PENDING`, and the caller re-evaluates
when the correlation has decided. A rule with any matcher that is certainly false is skipped as
usual, so a move elsewhere is decided at once even while the household fact is pending.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Final

from triage.rules.model import MISSING, Rule


class _Pending:
    def __repr__(self) -> str:
        return "PENDING"


PENDING: Final = _Pending()

NO_PENDING: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Ruleset:
    """A validated, ordered list of rules, its threshold and its content-hash version."""

    name: str
    version: str
    threshold: float
    rules: tuple[Rule, ...]
    source: str = "<memory>"
    _by_type: dict[str, tuple[Rule, ...]] = field(default_factory=dict, repr=False,
                                                  compare=False)

    def for_type(self, event_type: str) -> tuple[Rule, ...]:
        """The rules that can match an event of this type, in order (cached per type)."""
        rules = self._by_type.get(event_type)
        if rules is None:
            rules = tuple(r for r in self.rules
                          if (types := r.event_types()) is None or event_type in types)
            self._by_type[event_type] = rules
        return rules

    def raises(self, score: float) -> bool:
        return score >= self.threshold


def evaluate(rules: tuple[Rule, ...], facts: Mapping[str, Any],
             pending: Set[str] = NO_PENDING) -> Rule | _Pending | None:
    """The first rule that matches ``facts``; PENDING if that depends on a pending fact;
    None when no rule matches (the caller applies the fail-safe)."""
    get = facts.get
    for rule in rules:
        unknown = False
        for matcher in rule.matchers:
            if matcher.fact in pending:
                unknown = True
            elif not matcher.test(get(matcher.fact, MISSING)):
                break
        else:
            return PENDING if unknown else rule
    return None
