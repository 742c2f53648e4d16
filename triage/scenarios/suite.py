"""Many scenario files at once, and which rules of a ruleset they exercise."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from triage.rules import DEFAULT_RULES, Ruleset
from triage.scenarios.check import ScenarioResult, run_scenario
from triage.scenarios.spec import ScenarioError, load_scenario

SCENARIOS = DEFAULT_RULES.parent / "scenarios"
"""The shipped scenarios, ``rules/scenarios/`` beside the default ruleset."""


@dataclass
class SuiteResult:
    results: list[ScenarioResult] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    """``file:line: message`` for every scenario that could not be run."""

    @property
    def failures(self) -> int:
        return sum(len(r.failures) for r in self.results)

    @property
    def checked(self) -> int:
        return sum(r.checked for r in self.results)

    def unexercised(self, ruleset: Ruleset) -> list[str]:
        """Rule ids of ``ruleset`` that no expectation that held has named, in file order."""
        asserted = set().union(*(r.asserted_rules for r in self.results))
        return [r.id for r in ruleset.rules if r.id not in asserted]

    @property
    def exit_status(self) -> int:
        """2 when a scenario could not be run, 1 when an expectation failed, else 0."""
        return 2 if self.invalid else 1 if self.failures else 0


def scenario_files(paths: Iterable[Path]) -> list[Path]:
    """The scenario files named, directories searched for ``*.yaml``/``*.yml``, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    return files


def run_suite(files: Iterable[Path], ruleset: Ruleset) -> SuiteResult:
    suite = SuiteResult()
    for path in files:
        try:
            suite.results.append(run_scenario(load_scenario(path), ruleset))
        except ScenarioError as exc:
            suite.invalid += exc.problems
    return suite
