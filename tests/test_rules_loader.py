"""Rule files are validated completely at load, with file:line: rule-id: message."""

from __future__ import annotations

import pytest

from tests.world import DEFAULT_RULES
from triage.rules import Matcher, RulesetError, evaluate, load_ruleset, parse_ruleset
from triage.rules.engine import PENDING
from triage.rules.model import MISSING

RULE = """
  - id: {id}
    when: {when}
    score: {score}
    reason: r
    title: t
"""


def ruleset(*rules: str) -> bytes:
    return ("ruleset: test\nthreshold: 0.5\nrules:" + "".join(rules)).encode()


def problems(data: bytes) -> list[str]:
    with pytest.raises(RulesetError) as info:
        parse_ruleset(data, "r.yaml")
    return info.value.problems


def test_default_ruleset_loads_and_has_a_content_hash_version():
    rs = load_ruleset(DEFAULT_RULES)
    assert rs.version.startswith("default@") and len(rs.version) == len("default@") + 12
    assert load_ruleset(DEFAULT_RULES).version == rs.version
    edited = DEFAULT_RULES.read_bytes().replace(b"threshold: 0.5", b"threshold: 0.6")
    assert parse_ruleset(edited).version != rs.version


@pytest.mark.parametrize(("when", "score", "message"), [
    ("{nope.fact: 1}", 0.5, "r.yaml:5: a: unknown fact 'nope.fact'"),
    ("{person.role: boss}", 0.5, "r.yaml:5: a: person.role: 'boss' is not a valid enum value"),
    ("{case.together: 'yes'}", 0.5, "r.yaml:5: a: case.together: 'yes' is not a valid bool"),
    ("{income.amount: {gt: abc}}", 0.5, "r.yaml:5: a: income.amount: 'abc' is not a valid number"),
    ("{case.benefit: {gt: 1}}", 0.5, "r.yaml:5: a: case.benefit: 'gt' compares numbers"),
    ("{income.amount: {between: 1}}", 0.5, "r.yaml:5: a: income.amount: a condition mapping"),
    ("{event.type: died}", 1.5, "r.yaml:6: a: score must be a number in [0, 1]"),
])
def test_invalid_rules_are_reported_with_file_line_and_rule_id(when, score, message):
    found = problems(ruleset(RULE.format(id="a", when=when, score=score)))
    assert any(p.startswith(message) for p in found), found


def test_every_problem_in_a_file_is_reported_together():
    found = problems(ruleset(RULE.format(id="a", when="{x.y: 1}", score=0.1),
                             RULE.format(id="b", when="{event.type: bogus}", score=0.1),
                             RULE.format(id="b", when="{event.type: died}", score=0.1)))
    assert [p.split(":")[1] for p in found] == ["5", "11", "16"]
    assert "duplicate rule id" in found[-1]


def test_unknown_keys_duplicate_keys_and_reserved_ids_are_errors():
    data = ruleset(RULE.format(id="unclassified", when="{}", score=0.1),
                   "\n  - id: c\n    when: {}\n    score: 0.1\n    reason: r\n    title: t\n"
                   "    title: u\n    colour: red\n")
    found = problems(data)
    assert any("reserved" in p for p in found)
    assert any("duplicate key 'title'" in p for p in found)
    assert any("unknown key 'colour'" in p for p in found)


def test_yaml_syntax_errors_and_unreadable_files(tmp_path):
    assert problems(b"rules: [\n  - id: a\n")[0].startswith("r.yaml:")
    with pytest.raises(RulesetError, match="cannot read rule file"):
        load_ruleset(tmp_path / "missing.yaml")


def test_rules_are_data_code_in_a_rule_is_just_a_string():
    data = ruleset(RULE.format(id="a", when="{event.code: '__import__(\"os\").system(\"x\")'}",
                               score=0.9))
    rs = parse_ruleset(data)
    facts = {"event.code": "A01"}
    assert evaluate(rs.rules, facts) is None


def test_first_match_wins_and_pending_facts_make_a_rule_wait():
    rs = parse_ruleset(ruleset(
        RULE.format(id="split", when="{household.moved_together: false}", score=0.8),
        RULE.format(id="occupied", when="{household.destination_occupied: true}", score=0.7),
        RULE.format(id="together", when="{household.moved_together: true}", score=0.0)))
    pending = frozenset({"household.moved_together"})
    assert evaluate(rs.rules, {"household.destination_occupied": False}, pending) is PENDING
    assert evaluate(rs.rules, {"household.moved_together": True}).id == "together"
    assert evaluate(rs.rules, {"household.moved_together": False}).id == "split"
    # a rule that depends on a pending fact but has a false matcher is skipped at once
    rs2 = parse_ruleset(ruleset(
        RULE.format(id="split", when="{household.moved_together: false, case.together: true}",
                    score=0.8),
        RULE.format(id="x", when="{case.together: false}", score=0.9)))
    assert evaluate(rs2.rules, {"case.together": False}, pending).id == "x"


@pytest.mark.parametrize(("op", "value", "actual", "expected"), [
    ("eq", None, MISSING, True), ("eq", True, MISSING, False), ("ne", 1, MISSING, False),
    ("gt", 0, 0.0, False), ("gt", 0, 0.01, True), ("le", 5, 5, True),
    ("in", frozenset({"a", "b"}), "a", True), ("not_in", frozenset({"a"}), "a", False),
])
def test_matcher_semantics(op, value, actual, expected):
    assert Matcher("f", op, value).test(actual) is expected


@pytest.mark.parametrize(("facts", "rule"), [
    # DOMAIN rule 4 and the death/emigration "otherwise": the case lookup rarely reaches them
    # (it finds cases through membership, households and destinations), but they must stay
    # explicit so that a person outside the case is suppressed, never unclassified.
    ({"event.type": "address_changed", "move.same_address": False,
      "person.member_or_household": False, "person.is_member": False,
      "move.to_case_home": False}, "flytning-uden-betydning"),
    ({"event.type": "died", "person.member_or_household": False, "person.is_member": False,
      "person.role": "none", "person.in_household": False}, "ophoer-uden-betydning"),
    # a household move whose member facts are missing is never guessed at
    ({"event.type": "address_changed", "move.same_address": False}, None),
])
def test_default_ruleset_on_bare_facts(facts, rule):
    rs = load_ruleset(DEFAULT_RULES)
    result = evaluate(rs.for_type(facts["event.type"]), facts)
    assert (result.id if result is not None else None) == rule
