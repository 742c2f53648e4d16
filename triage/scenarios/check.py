"""Running a scenario through the one core and checking every expectation it states.

The scenario's world becomes a register and a case index, its timeline is fed to a
:class:`triage.pipeline.Pipeline` — the event-time stage in front of the one core
(:class:`triage.core.Triage`), exactly as ``triage replay`` and the worker run it — in the order
written (ticks advance event time), and flushed at the end, as ``triage replay`` does. Then each
expectation is compared with what the core decided; a failure says what was expected, what
happened instead, and why (the rule's reason), at the line where the expectation is written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from triage.cases import CaseIndex
from triage.core import Outputs, Triage, judge_facts, parse_window
from triage.facts import CATALOGUE
from triage.models.events import parse_event
from triage.models.outputs import CaseVerdict, Decision, Task
from triage.pipeline import Pipeline
from triage.register import Register
from triage.rules import Ruleset
from triage.scenarios.spec import EventSpec, Located, ScenarioError, TaskExpect, VerdictExpect
from triage.scenarios.world import World, build
from triage.silences import SilenceError

CLOCK = datetime(2000, 1, 1, tzinfo=UTC)
"""The wall clock a scenario's core sees: fixed, so nothing can depend on it."""


@dataclass(frozen=True, slots=True)
class Failure:
    """One expectation that did not hold."""

    where: str
    """``file:line`` of the expectation."""
    subject: str
    """What it is about: ``event``, ``event / case``, or ``task for case``."""
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.subject}: {self.message}"


@dataclass
class ScenarioResult:
    name: str
    path: str
    ruleset: str
    checked: int = 0
    failures: list[Failure] = field(default_factory=list)
    asserted_rules: set[str] = field(default_factory=set)
    """Rule ids named by an expectation that held: the rules this scenario exercises."""

    @property
    def passed(self) -> bool:
        return not self.failures


def run_scenario(located: Located, ruleset: Ruleset) -> ScenarioResult:
    """Run one validated scenario under ``ruleset``; :class:`ScenarioError` when its world
    cannot be built (undeclared names, invalid events, refused silences)."""
    _check_facts_known(located)
    world = build(located)
    spec = located.spec
    core = Triage(CaseIndex(Register(world.persons), world.cases), ruleset,
                  window=parse_window(spec.window), clock=lambda: CLOCK)
    pipeline = Pipeline(core, lateness=spec.lateness_delta, max_jump=spec.max_clock_jump_delta)
    for index, silence in world.silences:
        try:
            core.silences.add(silence, ruleset)
        except SilenceError as exc:
            raise ScenarioError([f"{located.at('silences', index)}: silence {silence.id} is "
                                 f"refused: {exc}"]) from None
    out = Outputs()
    for step in world.steps:
        if step.tick is not None:
            out.extend(pipeline.tick(step.tick.timestamp()))
        elif step.line is not None and step.unavailable is not None:
            out.extend(pipeline.offer(parse_event(step.line), step.unavailable))
        elif step.line is not None:
            out.extend(pipeline.process(step.line))
    out.extend(pipeline.flush())
    return _Checker(located, world, ruleset, out).check()


def _check_facts_known(located: Located) -> None:
    problems = [f"{located.at('facts', i, 'facts', name)}: unknown fact {name!r} (see "
                f"'triage rules facts')"
                for i, row in enumerate(located.spec.facts) for name in row.facts
                if name not in CATALOGUE]
    # a value of the wrong type would reach the matchers: "abc" > 5 and [a] in {…} raise
    problems += [f"{located.at('facts', i, 'facts', name)}: {name}: {value!r} is not a valid "
                 f"{CATALOGUE[name].type} value for this fact"
                 for i, row in enumerate(located.spec.facts) for name, value in row.facts.items()
                 if name in CATALOGUE and not CATALOGUE[name].accepts(value)]
    if problems:
        raise ScenarioError(problems)


class _Checker:
    def __init__(self, located: Located, world: World, ruleset: Ruleset, out: Outputs) -> None:
        self.loc = located
        self.world = world
        self.ruleset = ruleset
        self.result = ScenarioResult(located.spec.scenario, str(located.path), ruleset.version)
        self.decisions: dict[str | None, list[Decision]] = defaultdict(list)
        for decision in out.decisions:
            self.decisions[decision.event_id].append(decision)
        self.tasks = list(out.tasks)

    def fail(self, where: tuple[Any, ...], subject: str, message: str) -> None:
        self.result.failures.append(Failure(self.loc.at(*where), subject, message))

    def expect(self, where: tuple[Any, ...], subject: str, wanted: dict[str, Any],
               actual: Any, context: str = "") -> None:
        """Compare the named fields of ``actual`` with ``wanted`` (None: not checked); one
        failure lists every field that differs, then what happened and why."""
        wrong = []
        for name, expected in wanted.items():
            if expected is None:
                continue
            self.result.checked += 1
            got = getattr(actual, name)
            if expected == got:
                if name == "rule":
                    self.result.asserted_rules.add(str(expected))
            else:
                wrong.append(f"{name}: expected {expected!r}, got {got!r}")
        if wrong:
            self.fail(where, subject, "; ".join(wrong) + context)

    def check(self) -> ScenarioResult:
        nameless = list(self.decisions.get(None, []))
        seen: set[str] = set()
        for step in self.world.steps:
            if step.tick is not None:
                continue
            spec = self.loc.spec.events[step.index]
            assert isinstance(spec, EventSpec)
            where = ("events", step.index)
            event_id = step.event_id
            if event_id is None or (step.raw and event_id not in self.decisions):
                # a raw line without a readable id: such decisions come in arrival order
                decision = nameless.pop(0) if nameless else None
            elif event_id in seen:
                continue  # a redelivery: the first occurrence has the decision
            else:
                seen.add(event_id)
                found = self.decisions.get(event_id, [])
                decision = found[0] if len(found) == 1 else None
                if len(found) > 1:
                    self.fail(where, event_id, f"{len(found)} decisions, expected exactly one")
                    continue
            if decision is None:
                self.fail(where, event_id or "raw line", "no decision")
                continue
            if spec.expect is not None:
                self._event(spec, decision, where, event_id or "raw line")
        if self.loc.spec.tasks is not None:
            self._tasks(self.loc.spec.tasks)
        for i, row in enumerate(self.loc.spec.facts):
            rule, raised = judge_facts(self.ruleset, row.facts)
            verdict = CaseVerdict(case_id="", outcome="raised" if raised else "suppressed",
                                  score=rule.score, rule=rule.id, reason=rule.reason,
                                  unit=rule.unit or str(row.facts.get("case.unit", "")),
                                  title=rule.title, payment_hold=rule.payment_hold and raised)
            self._verdict(row.expect, verdict, ("facts", i, "expect"), f"facts row {i + 1}")
        return self.result

    def _event(self, spec: EventSpec, decision: Decision, where: tuple[Any, ...],
               subject: str) -> None:
        expect = spec.expect
        assert expect is not None
        at = (*where, "expect")
        why = _why(decision.outcome, decision.rule, decision.score, decision.reason)
        self.expect(at, subject, {"outcome": expect.outcome, "rule": expect.rule}, decision,
                    why)
        if expect.cases is None:
            return
        verdicts = {v.case_id: v for v in decision.cases}
        for case_id, wanted in expect.cases.items():
            case_at = (*at, "cases", case_id)
            verdict = verdicts.get(case_id)
            if verdict is None:
                self.result.checked += 1
                touched = ", ".join(verdicts) or "none"
                self.fail(case_at, f"{subject} / {case_id}",
                          f"no verdict for this case (cases touched: {touched})")
                continue
            self._verdict(wanted, verdict, case_at, f"{subject} / {case_id}")
        for case_id, verdict in verdicts.items():
            if case_id not in expect.cases:
                self.result.checked += 1
                self.fail((*at, "cases"), f"{subject} / {case_id}",
                          f"unexpected verdict for this case"
                          f"{_why(verdict.outcome, verdict.rule, verdict.score, verdict.reason)}"
                          f"; list every case the event touches")

    def _verdict(self, wanted: VerdictExpect, verdict: CaseVerdict, at: tuple[Any, ...],
                 subject: str) -> None:
        why = _why(verdict.outcome, verdict.rule, verdict.score, verdict.reason)
        fields = ("outcome", "rule", "title", "unit", "payment_hold", "score")
        self.expect(at, subject, {name: getattr(wanted, name) for name in fields}, verdict, why)

    def _tasks(self, wanted: list[TaskExpect]) -> None:
        left = list(self.tasks)
        missed: set[str] = set()
        for i, task in enumerate(wanted):
            at = ("tasks", i)
            subject = f"task for {task.case}"
            candidates = [t for t in left if t.case_id == task.case]
            if task.events is not None:
                candidates = [t for t in candidates if sorted(t.event_ids) == sorted(task.events)]
            self.result.checked += 1
            if not candidates:
                have = "; ".join(_task(t) for t in self.tasks if t.case_id == task.case) or \
                    "none"
                events = f" with events {task.events}" if task.events is not None else ""
                self.fail(at, subject, f"no such task{events} (tasks for {task.case}: {have})")
                missed.add(task.case)
                continue
            got = candidates[0]
            left.remove(got)
            fields = ("rule", "title", "unit", "benefit", "payment_hold")
            self.expect(at, subject, {name: getattr(task, name) for name in fields}, got,
                        f" — the task: {_task(got)}")
        for extra in left:
            if extra.case_id in missed:
                continue  # already listed by the expected task it did not match
            self.result.checked += 1
            self.fail(("tasks",), f"task for {extra.case_id}",
                      f"unexpected task ({_task(extra)}); list every task the scenario creates")


def _why(outcome: str, rule: str, score: float, reason: str) -> str:
    return f" — {outcome} by {rule}, score {score}: {reason}"


def _task(task: Task) -> str:
    return f"{task.rule}, events {task.event_ids}, unit {task.unit}, " \
           f"payment_hold {task.payment_hold}"
