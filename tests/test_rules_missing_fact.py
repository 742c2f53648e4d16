"""A fact that does not apply to an event is *missing*, not null (README "Rules"): a condition on
it does not hold — ``ne`` and ``not_in`` included — except ``fact: null``. The engine must look
facts up with that sentinel; a ``None`` default would make ``ne``/``not_in`` hold for every event
the fact does not apply to."""

from __future__ import annotations

from triage.rules import evaluate, parse_ruleset

RULES = b"""
ruleset: missing-facts
threshold: 0.5
rules:
  - id: ikke-samme-adresse
    when: {move.same_address: {ne: true}}
    score: 0.9
    reason: r
    title: t
  - id: ikke-husstandsflytning
    when: {household.moved_together: {not_in: [true]}}
    score: 0.9
    reason: r
    title: t
  - id: ingen-kommunekode
    when: {move.municipality_changed: null}
    score: 0.1
    reason: r
    title: t
"""


def test_ne_and_not_in_on_a_missing_fact_do_not_hold_but_null_does() -> None:
    rules = parse_ruleset(RULES).rules
    death = {"event.type": "died", "person.is_member": True}
    result = evaluate(rules, death)
    assert result is not None and getattr(result, "id", None) == "ingen-kommunekode"


def test_ne_holds_on_a_fact_that_applies() -> None:
    rules = parse_ruleset(RULES).rules
    move = {"event.type": "address_changed", "move.same_address": False}
    result = evaluate(rules, move)
    assert getattr(result, "id", None) == "ikke-samme-adresse"
