"""Loading and validating a rule file, with every problem reported as ``file:line: id: message``.

Validation is complete at load time (Alertmanager's lesson): unknown keys, unknown facts, values
of the wrong type or outside a fact's allowed values, scores outside [0, 1], duplicate ids and
duplicate YAML keys are all errors, collected together so an operator fixes a file in one pass.
The version of a ruleset is ``NAME@`` plus the first 12 hex digits of the SHA-256 of the file's
bytes: any edit, however small, is a new version, and the same file always has the same version.
"""

from __future__ import annotations

import hashlib
import math
import re
import reprlib
from pathlib import Path
from typing import Any

import yaml

from triage.cprnumber import mask_in_text
from triage.facts import CATALOGUE, Fact
from triage.rules.engine import Ruleset
from triage.rules.model import OPERATORS, Matcher, Rule
from triage.yaml_nodes import YamlProblem, compose, plain_value

RESERVED_IDS = frozenset({"unclassified", "no-affected-case", "could-not-check", "invalid"})
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TOP_KEYS = {"ruleset", "threshold", "rules", "description"}
_RULE_KEYS = {"id", "description", "when", "score", "reason", "title", "unit", "payment_hold"}
_SHOWN = reprlib.Repr()
"""How a message quotes a value: bounded, so an alias bomb quoted back stays one short line."""
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 3, 80, 80


class RulesetError(ValueError):
    """A rule file that cannot be used; ``problems`` lists every ``file:line: id: message``."""

    def __init__(self, problems: list[str]) -> None:
        # a problem quotes what the file says (a key, a value, an id): anything CPR-shaped in
        # it is masked, since these lines reach terminals, logs and the operator endpoints
        problems = [mask_in_text(p) for p in problems]
        super().__init__("\n".join(problems))
        self.problems = problems


def load_ruleset(path: str | Path) -> Ruleset:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RulesetError([f"{path}: cannot read rule file: {exc.strerror}"]) from None
    return parse_ruleset(data, str(path))


def parse_ruleset(data: bytes, source: str = "<memory>") -> Ruleset:
    try:
        root = compose(data.decode("utf-8"))
        if not isinstance(root, yaml.MappingNode):
            raise RulesetError([f"{source}:1: a rule file is a mapping with 'rules:'"])
        return _validated(root, data, source)
    except UnicodeDecodeError as exc:
        raise RulesetError([f"{source}:1: not valid YAML: {exc}"]) from None
    except YamlProblem as exc:
        raise RulesetError([f"{source}:{exc.line}: {exc}"]) from None


def _validated(root: yaml.MappingNode, data: bytes, source: str) -> Ruleset:
    problems: list[str] = []

    def err(node: yaml.Node, rule_id: str | None, message: str) -> None:
        where = f"{rule_id}: " if rule_id else ""
        problems.append(f"{source}:{node.start_mark.line + 1}: {where}{message}")

    top = _mapping(root, None, err)
    for key, (knode, _) in top.items():
        if key not in _TOP_KEYS:
            err(knode, None, f"unknown key {key!r} (expected one of {sorted(_TOP_KEYS)})")
    if not isinstance(_scalar(top.get("description"), ""), str):
        err(top["description"][1], None, "'description' must be a text")
    name = _scalar(top.get("ruleset"), "default")
    threshold = _scalar(top.get("threshold"), 0.5)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or \
            not 0.0 <= threshold <= 1.0:
        err(top["threshold"][1], None, "threshold must be a number in [0, 1]")
        threshold = 0.5
    if not isinstance(name, str) or not _ID.fullmatch(name):  # "$" would pass "x\n"
        err(top["ruleset"][1], None, "ruleset name must be lower-case letters, digits, '-'")
        name = "invalid"

    rules: list[Rule] = []
    rules_node = top.get("rules", (None, None))[1]
    if not isinstance(rules_node, yaml.SequenceNode) or not rules_node.value:
        err(rules_node or root, None, "'rules' must be a non-empty list")
    else:
        seen: dict[str, int] = {}
        for item in rules_node.value:
            rule_id = _declared_id(item)
            if rule_id is not None and rule_id in seen:
                err(item, rule_id, f"duplicate rule id (first defined on line {seen[rule_id]})")
            elif rule_id is not None:
                seen[rule_id] = item.start_mark.line + 1
            rule = _rule(item, err)
            if rule is not None:
                rules.append(rule)
    if problems:
        raise RulesetError(problems)
    version = f"{name}@{hashlib.sha256(data).hexdigest()[:12]}"
    return Ruleset(name, version, float(threshold), tuple(rules), source)


def _declared_id(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.MappingNode):
        for knode, vnode in node.value:
            if knode.value == "id" and isinstance(vnode, yaml.ScalarNode):
                return str(vnode.value)
    return None


def _rule(node: yaml.Node, err: Any) -> Rule | None:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        err(node, None, "a rule is a mapping with id, when, score, reason, title")
        return None
    fields = _mapping(node, None, err)
    rule_id = _scalar(fields.get("id"), None)
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):  # "$" would pass "x\n"
        err(node, None, "rule needs an 'id' of lower-case letters, digits and '-'")
        return None
    if rule_id in RESERVED_IDS:
        err(fields["id"][1], rule_id, "this id is reserved for a built-in rule")
    ok = True
    for key, (knode, _) in fields.items():
        if key not in _RULE_KEYS:
            err(knode, rule_id, f"unknown key {key!r} (expected one of {sorted(_RULE_KEYS)})")
            ok = False
    score = _scalar(fields.get("score"), None)
    if not isinstance(score, int | float) or isinstance(score, bool) or not 0.0 <= score <= 1.0:
        err(fields.get("score", (node, node))[1], rule_id, "score must be a number in [0, 1]")
        ok = False
    texts: dict[str, str] = {}
    for key in ("reason", "title"):
        value = _scalar(fields.get(key), None)
        if not isinstance(value, str) or not value.strip():
            err(fields.get(key, (node, node))[1], rule_id, f"'{key}' must be a non-empty text")
            ok = False
        else:
            texts[key] = value.strip()
    unit = _scalar(fields.get("unit"), None)
    if unit is not None and (not isinstance(unit, str) or not unit):
        err(fields["unit"][1], rule_id, "'unit' must be a text (the owning unit)")
        ok = False
    hold = _scalar(fields.get("payment_hold"), False)
    if not isinstance(hold, bool):
        err(fields["payment_hold"][1], rule_id, "'payment_hold' must be true or false")
        ok = False
    description = _scalar(fields.get("description"), "")
    if not isinstance(description, str):  # str() of an alias bomb would be gigabytes
        err(fields["description"][1], rule_id, "'description' must be a text")
        ok = False
    matchers = _matchers(fields.get("when"), rule_id, node, err)
    if matchers is None or not ok:
        return None
    return Rule(rule_id, matchers, float(score), texts["reason"], texts["title"], unit,
                hold, str(description or ""), line)


def _matchers(entry: tuple[yaml.Node, yaml.Node] | None, rule_id: str, rule_node: yaml.Node,
              err: Any) -> tuple[Matcher, ...] | None:
    if entry is None:
        err(rule_node, rule_id, "rule needs 'when' (a mapping of fact: condition; {} matches all)")
        return None
    when = entry[1]
    if not isinstance(when, yaml.MappingNode):
        err(when, rule_id, "'when' must be a mapping of fact: condition")
        return None
    matchers: list[Matcher] = []
    ok = True
    for fact_name, (knode, vnode) in _mapping(when, rule_id, err).items():
        if fact_name not in CATALOGUE:
            err(knode, rule_id, f"unknown fact {fact_name!r} (see 'triage rules facts')")
            ok = False
            continue
        matcher = parse_matcher(fact_name, plain_value(vnode))
        if isinstance(matcher, str):
            err(vnode, rule_id, f"{fact_name}: {matcher}")
            ok = False
            continue
        matchers.append(matcher)
    return tuple(matchers) if ok else None


def parse_matcher(fact_name: str, raw: Any, fact: Fact | None = None) -> Matcher | str:
    """One condition in the rule language (``value``, ``[a, b]`` or ``{op: value}``) on a fact
    of the catalogue (or on ``fact``, when given), or the problem with it as a message.

    The same language serves rule files and silences (:mod:`triage.silences`)."""
    fact = fact or CATALOGUE[fact_name]
    if isinstance(raw, dict):
        if len(raw) != 1 or next(iter(raw)) not in OPERATORS:
            return f"a condition mapping has exactly one operator of {', '.join(OPERATORS)}"
        op, value = next(iter(raw.items()))
    elif isinstance(raw, list):
        op, value = "in", raw
    else:
        op, value = "eq", raw
    problem = _check_value(fact, op, value)
    if problem:
        return problem
    return Matcher(fact_name, op, frozenset(value) if op in ("in", "not_in") else value)


def _check_value(fact: Fact, op: str, value: Any) -> str | None:
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            return f"'{op}' needs a non-empty list"
        bad = [v for v in value if not fact.accepts(v)]
    elif op in ("gt", "ge", "lt", "le"):
        if fact.type != "number":
            return f"'{op}' compares numbers, but this fact is {fact.type}"
        bad = [] if fact.accepts(value) and value is not None else [value]
    else:
        bad = [] if fact.accepts(value) else [value]
    if fact.type == "number" and not bad:
        # .nan is a YAML float, but a condition on it never holds (or, with ne, always does)
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if isinstance(v, float) and math.isnan(v)]
    if bad:
        allowed = f" (allowed: {', '.join(fact.values)})" if fact.type == "enum" else ""
        return f"{_SHOWN.repr(bad[0])} is not a valid {fact.type} value for this fact{allowed}"
    return None


def _mapping(node: yaml.MappingNode, rule_id: str | None,
             err: Any) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key → (key node, value node), reporting duplicate keys (PyYAML keeps the last silently)."""
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode):  # ``? [a, b]``: its value is unhashable
            err(knode, rule_id, "a key must be a plain text, not a list or a mapping")
            continue
        key = knode.value
        if key in out:
            err(knode, rule_id, f"duplicate key {key!r}")
        out[key] = (knode, vnode)
    return out




def _scalar(entry: tuple[yaml.Node, yaml.Node] | None, default: Any) -> Any:
    if entry is None:
        return default
    return plain_value(entry[1])
