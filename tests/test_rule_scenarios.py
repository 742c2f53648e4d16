"""``triage rules test``: the shipped scenarios pass and exercise every rule of the default
ruleset; a wrong expectation fails naming it; an unusable scenario is exit 2 at file:line."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from tests.drafts import draft_text
from triage.cli import main
from triage.rules import DEFAULT_RULES, load_ruleset
from triage.scenarios import SCENARIOS, run_suite, scenario_files

FAMILY = SCENARIOS / "family-moves-together.yaml"


def rules_test(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["rules", "test", *args])
    return status, out.getvalue() + err.getvalue()


def test_the_shipped_scenarios_pass():
    status, output = rules_test("--coverage")
    assert status == 0, output
    files = scenario_files([SCENARIOS])
    assert len(files) >= 15
    assert output.count("\nok   ") + output.startswith("ok   ") == len(files)


def test_every_rule_of_the_default_ruleset_is_exercised_by_a_scenario():
    """Exercised: an expectation that names the rule held. When a rule is added to
    rules/default.yaml, this names it until a scenario under rules/scenarios/ covers it."""
    ruleset = load_ruleset(DEFAULT_RULES)
    suite = run_suite(scenario_files([SCENARIOS]), ruleset)
    assert suite.invalid == [] and suite.failures == 0
    missing = suite.unexercised(ruleset)
    assert not missing, ("rules of rules/default.yaml that no scenario in rules/scenarios/ "
                         f"exercises: {', '.join(missing)}")


def test_a_deliberately_wrong_scenario_fails_naming_the_expectation(tmp_path):
    wrong = tmp_path / "wrong.yaml"
    text = FAMILY.read_text()
    assert text.count("C1: {outcome: suppressed, rule: husstand-flyttet-samlet}\n") == 2
    wrong.write_text(text.replace("C1: {outcome: suppressed, rule: husstand-flyttet-samlet}\n",
                                  "C1: {outcome: raised, rule: husstand-splittet}\n", 1))
    line = 1 + wrong.read_text().splitlines().index(
        "        C1: {outcome: raised, rule: husstand-splittet}")
    status, output = rules_test(str(wrong))
    assert status == 1
    assert f"wrong.yaml:{line}: barn-moves / C1: outcome: expected 'raised', got " \
           f"'suppressed'; rule: expected 'husstand-splittet', got 'husstand-flyttet-samlet'" \
           in output
    assert "Hele husstanden er flyttet samlet" in output  # why it happened instead
    assert "1 failed" in output


def test_a_draft_is_tested_against_the_shipped_scenarios(tmp_path):
    """The operator's use: does my draft still decide what the scenarios say?"""
    draft = tmp_path / "draft.yaml"
    draft.write_bytes(draft_text(scores={"doedsfald-modtager": 0.2}))
    status, output = rules_test("--rules", str(draft))
    assert status == 1
    assert "recipient-dies / C1: outcome: expected 'raised', got 'suppressed'" in output
    assert "rules/scenarios/deaths.yaml:" in output


def test_unexpected_and_missing_verdicts_and_tasks_are_failures(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(FAMILY.read_text()
                        .replace("        C1: {outcome: suppressed, rule: husstand-flyttet-"
                                 "samlet}\n  - id: mor-moves",
                                 "        C2: {outcome: suppressed}\n  - id: mor-moves")
                        .replace("tasks: []", "tasks:\n  - {case: C1, rule: husstand-splittet}"))
    status, output = rules_test(str(scenario))
    assert status == 1
    assert "barn-moves / C2: no verdict for this case (cases touched: C1)" in output
    assert "barn-moves / C1: unexpected verdict for this case" in output
    assert "task for C1: no such task (tasks for C1: none)" in output


@pytest.mark.parametrize(("text", "line", "message"), [
    ("scenario: x\nevents:\n  - {id: a, type: died, persn: mor}\n", 3, "unknown key 'persn'"),
    ("scenario: x\nevents:\n  - id: a\n    type: died\n    person: nobody\n", 5,
     "'nobody' is not one of the persons"),
    ("scenario: x\npersons: {mor: {}}\nevents:\n  - id: a\n    type: benefit_started\n"
     "    person: mor\n    benefit: folkepension\n", 4,
     "event a is not a valid benefit_started event: amount: Field required"),
    ("scenario: x\nevents:\n  - {id: a, at: soon, type: died}\n", 3, "not a virtual time"),
    ("scenario: x\nevents: [{id: a, type: died}\n", 3, "not valid YAML"),
    ("scenario: x\ncases:\n  C1: {benefit: kontanthjaelp}\nevents: [{tick: 1h}]\n", 3,
     "cases.C1.applicant: Field required"),
    ("scenario: x\nfacts:\n  - facts: {event.typ: died}\n    expect: {rule: y}\n", 3,
     "unknown fact 'event.typ'"),
    ("scenario: x\nscenario: y\nevents: [{tick: 1h}]\n", 2, "duplicate key 'scenario'"),
    ("scenario: x\nsilences:\n  - {id: s, matchers: {event.type: died}, until: 1d}\n"
     "events: [{tick: 1h}]\n", 3, "refused: it could silence verdicts of doedsfald-modtager"),
])
def test_an_unusable_scenario_is_exit_2_at_its_line(tmp_path, text, line, message):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(text)
    status, output = rules_test(str(scenario))
    assert status == 2, output
    assert f"bad.yaml:{line}: " in output and message in output, output


def test_a_missing_path_or_an_empty_directory_is_a_usage_error(tmp_path):
    assert rules_test(str(tmp_path / "nope.yaml"))[0] == 2
    assert rules_test(str(tmp_path))[0] == 2


def test_scenarios_run_the_core_in_arrival_order_with_event_times(tmp_path):
    """The family's child arrives first though registered last: the household move is the
    core's, decided by registered_at, not by the order of the lines."""
    scenario = tmp_path / "order.yaml"
    scenario.write_text(FAMILY.read_text().replace("at: 1h", "at: 30h"))
    status, output = rules_test(str(scenario))
    assert status == 1  # the father's move now falls outside the window: a split
    assert "far-moves / C1: outcome: expected 'suppressed', got 'raised'" in output


def test_every_shipped_scenario_file_says_what_it_shows():
    for path in scenario_files([SCENARIOS]):
        first = Path(path).read_text().splitlines()[0]
        assert first.startswith("# "), f"{path.name}: begin with a comment saying what it shows"
