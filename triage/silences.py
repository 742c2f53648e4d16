"""Silences: an operator mutes the verdicts that match some facts, for a span of event time.

Alertmanager's silences, for this domain. A :class:`Silence` has an id, an author, a comment, a
start and an end, and matchers in the rule language (``event.type: address_renamed``,
``case.unit: [jobcenter]``, ``income.amount: {lt: 100}``) plus the pseudo-fact ``rule`` (the id of
the rule that decided the verdict). A raised verdict that a silence matches is suppressed with
rule ``silenced:<id>``, and its reason says which silence did it, who set it and why, and what
it would otherwise have been — a silenced verdict is never a mystery.

**Event time only.** Start and end are compared with the event's ``registered_at``, never with
the wall clock, so a replay or a rebuild decides exactly as the live worker did. A silence
expires by itself once event time passes its end; it stays known for a grace period (the
correlation window) after that, so the late members of a household move registered while it was
active are judged by it like the first ones.

**What can never be silenced.** Verdicts of a rule with ``payment_hold`` (a death stops a
payment), of ``could-not-check`` (the service could not look), of ``unclassified`` (no rule
understood the event), and of the event-time fail-safes ``arrived-too-late`` and
``registered-at-out-of-range``. A silence that names one of them, or whose matchers could
match a verdict of a payment-hold rule of the active ruleset, is refused when it is created
(:meth:`Silences.add`); and the stage itself never mutes such a verdict, whatever silence is
in force (:meth:`Silences.mutes`), so a silence created against an older ruleset cannot
either.

Silences are state of the core: the worker must journal every change (phase 2,
``docs/rules-ops.md``) so a rebuild applies it at the same point of the stream.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from triage.cprnumber import mask_in_text
from triage.facts import CATALOGUE, Fact
from triage.rules.engine import Ruleset
from triage.rules.loader import parse_matcher
from triage.rules.model import MISSING, Matcher, Rule

NEVER_SILENCED = frozenset({"unclassified", "could-not-check", "arrived-too-late",
                            "registered-at-out-of-range", "event-id-conflict"})
"""Built-in rules whose verdicts no silence may touch (besides every payment-hold rule): the
fail-safe raises of an event no rule understood, one that could not be checked, one that
arrived too late to be checked against its household, one with an implausible time."""

RULE_FACT = Fact("rule", "string", "The id of the rule that decided the verdict (silences only).")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
SILENCED_PREFIX = "silenced:"


class SilenceError(ValueError):
    """A silence that cannot be created; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        # the problems quote what the operator sent (a key, a value, a rule id), and they go
        # to the HTTP answer and the audit topic: anything CPR-shaped in them is masked
        problems = [mask_in_text(p) for p in problems]
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Silence:
    """One operator's mute: verdicts matching ``matchers`` of events registered in
    [``starts_at``, ``ends_at``) are suppressed."""

    id: str
    matchers: tuple[Matcher, ...]
    author: str
    comment: str
    starts_at: datetime
    ends_at: datetime

    @property
    def rule_id(self) -> str:
        return f"{SILENCED_PREFIX}{self.id}"

    def active_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def matches(self, rule: Rule, facts: Mapping[str, Any]) -> bool:
        get = facts.get
        for m in self.matchers:
            actual = rule.id if m.fact == "rule" else get(m.fact, MISSING)
            if not m.test(actual):
                return False
        return True

    def describe(self) -> str:
        """The matchers as an operator wrote them, e.g. ``event.type eq 'address_renamed'``."""
        return ", ".join(m.describe() for m in self.matchers)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for listings, the journal and the audit topic)."""
        return {"id": self.id, "matchers": {m.fact: _plain_condition(m) for m in self.matchers},
                "author": self.author, "comment": self.comment,
                "starts_at": self.starts_at.isoformat(), "ends_at": self.ends_at.isoformat()}


def parse_silence(data: Mapping[str, Any]) -> Silence:
    """A silence from its plain form (``id``, ``matchers``, ``author``, ``comment``,
    ``starts_at``, ``ends_at``; times RFC 3339 with offset, or datetimes). Every problem is
    reported at once; author and comment are kept with anything CPR-shaped masked."""
    problems: list[str] = []
    known = {"id", "matchers", "author", "comment", "starts_at", "ends_at"}
    for key in data:
        if key not in known:
            problems.append(f"unknown key {key!r} (expected one of {sorted(known)})")
    silence_id = data.get("id")
    if not isinstance(silence_id, str) or not _ID.fullmatch(silence_id):  # "$" passes "x\n"
        problems.append("id: lower-case letters, digits and '-', at most 64")
    texts = {}
    for key in ("author", "comment"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{key}: a silence needs a non-empty {key}")
        else:
            texts[key] = mask_in_text(value.strip())
    times = {}
    for key in ("starts_at", "ends_at"):
        value = data.get(key)
        try:
            when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            problems.append(f"{key}: not an RFC 3339 time")
            continue
        if when.utcoffset() is None:
            problems.append(f"{key}: needs an offset (event time is compared with registered_at)")
        else:
            times[key] = when
    if len(times) == 2 and times["ends_at"] <= times["starts_at"]:
        problems.append("ends_at must be after starts_at")
    matchers = _matchers(data.get("matchers"), problems)
    if problems:
        raise SilenceError(problems)
    return Silence(str(silence_id), matchers, texts["author"], texts["comment"],
                   times["starts_at"], times["ends_at"])


def _matchers(raw: Any, problems: list[str]) -> tuple[Matcher, ...]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append("matchers: a non-empty mapping of fact: condition (a silence of "
                        "everything is never allowed)")
        return ()
    out = []
    for name, condition in raw.items():
        fact = RULE_FACT if name == "rule" else CATALOGUE.get(name)
        if fact is None:
            problems.append(f"matchers: unknown fact {name!r} (see 'triage rules facts'; "
                            f"'rule' matches the deciding rule's id)")
            continue
        matcher = parse_matcher(name, condition, fact)
        if isinstance(matcher, str):
            problems.append(f"matchers: {name}: {matcher}")
        else:
            out.append(matcher)
    return tuple(out)


def refusals(silence: Silence, ruleset: Ruleset) -> list[str]:
    """Why ``silence`` may not be created against ``ruleset`` (empty when it may)."""
    problems = []
    for m in silence.matchers:
        if m.fact == "rule" and m.op in ("eq", "in"):
            named = {m.value} if m.op == "eq" else set(m.value)
            for rule_id in sorted(named & NEVER_SILENCED):
                problems.append(f"rule {rule_id} can never be silenced")
            known = {r.id for r in ruleset.rules}
            for rule_id in sorted(named - NEVER_SILENCED - known, key=_none_last):
                problems.append(f"rule {rule_id} is not in ruleset {ruleset.version}")
    for rule in ruleset.rules:
        if rule.payment_hold and could_match(silence.matchers, rule):
            problems.append(
                f"it could silence verdicts of {rule.id}, which holds the payment; rules with "
                f"payment_hold can never be silenced: narrow the matchers so they exclude it")
    return problems


def could_match(matchers: tuple[Matcher, ...], rule: Rule) -> bool:
    """Whether some (event, case) could satisfy both the silence's matchers and the rule's
    (a static check, exact for the rule language: per fact, some value passes every condition
    on it). Earlier rules that might take the verdict first are not considered: the answer errs
    on the side of "could"."""
    by_fact: dict[str, list[Matcher]] = {}
    for m in (*matchers, *rule.matchers):
        by_fact.setdefault(m.fact, []).append(m)
    for fact, conditions in by_fact.items():
        if fact == "rule":
            if not all(m.test(rule.id) for m in conditions):
                return False
        elif not any(all(m.test(v) for m in conditions) for v in _candidates(conditions)):
            return False
    return True


def _candidates(conditions: list[Matcher]) -> list[Any]:
    """Values that represent every case the conditions can distinguish."""
    fact = CATALOGUE.get(conditions[0].fact)
    constants: list[Any] = []
    for m in conditions:
        constants.extend(m.value if m.op in ("in", "not_in") else [m.value])
    values: list[Any] = [MISSING, None]
    if fact is not None and fact.type == "bool":
        return [*values, True, False]
    if fact is not None and fact.type == "enum":
        return [*values, *fact.values]
    numbers = sorted({float(c) for c in constants
                      if isinstance(c, int | float) and not isinstance(c, bool)})
    if numbers:
        between = [(a + b) / 2 for a, b in pairwise(numbers)]
        return [*values, *numbers, *between, numbers[0] - 1, numbers[-1] + 1]
    return [*values, *constants, "\x00another value"]


def _plain_condition(m: Matcher) -> Any:
    value = sorted(m.value, key=_none_last) if m.op in ("in", "not_in") else m.value
    return value if m.op == "eq" else {m.op: value}


def _none_last(value: Any) -> tuple[bool, Any]:
    """Sort key of a list condition's values: one type per fact, and ``null`` (absent), which
    every fact accepts too — ``sorted(["a", None])`` raised TypeError, a 500 on a POST."""
    return (value is None, value)


@dataclass
class Silences:
    """The silences in force, and the stage that applies them to verdicts.

    ``grace`` is how long after its end a silence is still applied to events registered while
    it was active (they may be decided later, e.g. when a household move's window closes).
    """

    grace: timedelta = timedelta(hours=24)
    _silences: dict[str, Silence] = field(default_factory=dict)
    _rules: dict[tuple[str, str], Rule] = field(default_factory=dict)
    muted: Counter[str] = field(default_factory=Counter)
    """Verdicts suppressed, per silence id (for metrics)."""
    refused: Counter[str] = field(default_factory=Counter)
    """Verdicts a silence matched but could not touch (payment hold, could-not-check,
    unclassified), per silence id."""

    def __len__(self) -> int:
        return len(self._silences)

    def __iter__(self) -> Iterator[Silence]:
        return iter(sorted(self._silences.values(), key=lambda s: (s.starts_at, s.id)))

    def get(self, silence_id: str) -> Silence | None:
        return self._silences.get(silence_id)

    def add(self, silence: Silence, ruleset: Ruleset) -> None:
        """Put ``silence`` in force, refusing it (:class:`SilenceError`) when it could touch a
        verdict that can never be silenced under ``ruleset`` (the active one), or when its id
        is taken."""
        problems = refusals(silence, ruleset)
        if silence.id in self._silences:
            problems.append(f"a silence with id {silence.id} exists already")
        if problems:
            raise SilenceError(problems)
        self._silences[silence.id] = silence

    def expire(self, silence_id: str, at: datetime) -> Silence:
        """End a silence early, at event time ``at`` (an operator's "expire"); KeyError when
        there is none by that id."""
        silence = self._silences[silence_id]
        if at < silence.ends_at:
            silence = replace(silence, ends_at=max(at, silence.starts_at))
            self._silences[silence_id] = silence
            self._rules = {k: v for k, v in self._rules.items() if k[0] != silence_id}
        return silence

    def state(self, silence: Silence, now: datetime | None) -> str:
        """``pending``, ``active`` or ``expired`` at event time ``now`` (None: nothing seen)."""
        if now is None or now < silence.starts_at:
            return "pending"
        return "active" if now < silence.ends_at else "expired"

    def advance(self, now: float) -> list[Silence]:
        """Event time is now ``now`` (POSIX seconds): forget silences whose end lies more than
        the grace period behind it, and return them."""
        if not self._silences:
            return []
        horizon = now - self.grace.total_seconds()
        gone = [s for s in self._silences.values() if s.ends_at.timestamp() < horizon]
        for silence in gone:
            del self._silences[silence.id]
        if gone:
            ids = {s.id for s in gone}
            self._rules = {k: v for k, v in self._rules.items() if k[0] not in ids}
        return gone

    def mutes(self, rule: Rule, facts: Mapping[str, Any], at: datetime) -> Rule | None:
        """The ``silenced:<id>`` rule that suppresses a raised verdict of ``rule`` with these
        facts, for an event registered at ``at``; None when no silence in force matches, or the
        verdict can never be silenced."""
        if not self._silences:
            return None
        for silence in self._silences.values():
            if silence.active_at(at) and silence.matches(rule, facts):
                if rule.payment_hold or rule.id in NEVER_SILENCED:
                    self.refused[silence.id] += 1
                    return None
                self.muted[silence.id] += 1
                return self._silenced_rule(silence, rule)
        return None

    def _silenced_rule(self, silence: Silence, rule: Rule) -> Rule:
        key = (silence.id, rule.id)
        found = self._rules.get(key)
        if found is None:
            found = Rule(
                id=silence.rule_id, matchers=(), score=rule.score, title=rule.title,
                unit=rule.unit, payment_hold=False,
                reason=(f"Undertrykt af silence {silence.id} ({silence.author}: "
                        f"{silence.comment}), gældende til {silence.ends_at.isoformat()}; "
                        f"ellers rejst af reglen {rule.id}: {rule.reason}"))
            self._rules[key] = found
        return found
