"""Rule scenarios: ``triage rules test`` — small worlds, timelines and the verdicts they must get.

An operator writes what should happen in domain words (a family, a move, a death) and what the
rules must decide for it; :func:`run_scenario` runs it through the one core and reports every
expectation that does not hold. The shipped scenarios (``rules/scenarios/``) exercise every rule
of ``rules/default.yaml``; run them against a draft before promoting it.

Modules: :mod:`~triage.scenarios.spec` (the file format, validated with ``file:line``),
:mod:`~triage.scenarios.world` (names to reference data and events),
:mod:`~triage.scenarios.check` (running and comparing), :mod:`~triage.scenarios.suite` (many
files, coverage of a ruleset).
"""

from triage.scenarios.check import Failure, ScenarioResult, run_scenario
from triage.scenarios.spec import ScenarioError, load_scenario
from triage.scenarios.suite import SCENARIOS, SuiteResult, run_suite, scenario_files

__all__ = ["SCENARIOS", "Failure", "ScenarioError", "ScenarioResult", "SuiteResult",
           "load_scenario", "run_scenario", "run_suite", "scenario_files"]
