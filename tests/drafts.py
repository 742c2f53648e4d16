"""Draft rulesets built from the shipped one, the way an operator edits ``rules/default.yaml``:
lower a rule's score, put a rule in front, drop a rule. Each draft is parsed and validated by the
real loader, so its version is the hash of its text like any rule file's."""

from __future__ import annotations

from typing import Any

import yaml

from triage.rules import DEFAULT_RULES, Ruleset, parse_ruleset


def default_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_RULES.read_text())
    return data


def draft_text(*, name: str = "draft", scores: dict[str, float] | None = None,
               prepend: list[dict[str, Any]] | None = None, drop: tuple[str, ...] = (),
               edits: dict[str, dict[str, Any]] | None = None) -> bytes:
    data = default_data()
    data["ruleset"] = name
    rules = [r for r in data["rules"] if r["id"] not in drop]
    for rule in rules:
        if scores and rule["id"] in scores:
            rule["score"] = scores[rule["id"]]
        if edits and rule["id"] in edits:
            rule.update(edits[rule["id"]])
    data["rules"] = [*(prepend or []), *rules]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode()


def draft(**kw: Any) -> Ruleset:
    return parse_ruleset(draft_text(**kw), "<draft>")


LOWERED = {"flytning-husstand-ud-af-kommunen": 0.3, "husstand-splittet": 0.4,
           "stamdata": 0.6}
"""Scores changed so that moves out of the municipality and split households are suppressed
(a risky draft), and master-data changes raised."""

MOVES_FIRST = {"id": "udflytning-afventer-husstand", "score": 0.75,
               "when": {"event.type": "address_changed", "move.leaves_case_municipality": True,
                        "household.moved_together": True},
               "reason": "Hele husstanden er flyttet ud af kommunen.",
               "title": "Husstand fraflyttet kommunen samlet"}
"""A rule in front that waits for the household where the default decides at once."""

EVERY_MOVE_RAISES = {"id": "alle-flytninger", "score": 0.9,
                     "when": {"event.type": "address_changed", "person.is_member": True,
                              "person.role": "child"},
                     "reason": "Et barn på sagen er flyttet.", "title": "Barn flyttet"}
"""A rule in front that decides at once where the default waits for the household."""


def risky_draft() -> Ruleset:
    """A draft touching every path: lowered scores, a rule that waits where the default does
    not, one that decides where the default waits."""
    return draft(scores=LOWERED, prepend=[MOVES_FIRST, EVERY_MOVE_RAISES])
