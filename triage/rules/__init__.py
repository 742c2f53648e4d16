"""Rules: operator-tunable data that turns facts into verdicts.

A ruleset is a YAML file (``rules/default.yaml`` is the shipped one). It is loaded and validated
completely by :func:`load_ruleset` — every error reported as ``file:line: rule-id: message`` —
so the engine can trust it. Rules are declarative matchers over named facts
(:mod:`triage.facts`); nothing in a rule file is ever evaluated as code.

How rules combine: **ordered, first match wins** (like Alertmanager's routing tree without
``continue``). For each (event, case) the engine walks the rules top to bottom and the first rule
whose matchers all hold decides: its score, reason, title, unit and payment hold. A score at or
above the ruleset's ``threshold`` raises; below it suppresses. When no rule matches, the built-in
fail-safe rule ``unclassified`` raises ("kunne ikke klassificeres").
"""

from pathlib import Path

from triage.rules.engine import PENDING, Ruleset, evaluate
from triage.rules.loader import RulesetError, load_ruleset, parse_ruleset
from triage.rules.model import Matcher, Rule

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "rules" / "default.yaml"
"""The shipped ruleset, ``rules/default.yaml`` at the top of the repository."""

__all__ = ["DEFAULT_RULES", "PENDING", "Matcher", "Rule", "Ruleset", "RulesetError", "evaluate",
           "load_ruleset", "parse_ruleset"]
