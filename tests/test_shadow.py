"""A shadow ruleset rides on the real judgements: the real decisions and tasks are byte-identical
with and without it, and its own decisions are what a plain run of the draft would decide."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests.drafts import draft, risky_draft
from tests.world import World, address
from triage.core import Outputs, Triage
from triage.pipeline import Pipeline
from triage.rules import DEFAULT_RULES, Ruleset, load_ruleset
from triage.simulate import simulate
from triage.snapshot import load_reference

FIXED = datetime(2026, 1, 1, tzinfo=UTC)
HOME, NEW, AWAY = address("home"), address("new"), address("away", municipality="0101")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shadow-corpus")
    simulate(folder, seed=5, events=30_000)
    return folder


def run(corpus: Path, ruleset: Ruleset, shadow: Ruleset | None = None) -> Outputs:
    """The corpus through the pipeline replay uses (event-time stage, then the core)."""
    core = Triage(load_reference(corpus / "persons.jsonl", corpus / "cases.jsonl"), ruleset,
                  clock=lambda: FIXED)
    if shadow is not None:
        core.use_shadow(shadow)
    out = Outputs()
    with (corpus / "events.jsonl").open("rb") as lines:
        for chunk in Pipeline(core).run(line for line in lines if line.strip()):
            out.extend(chunk)
    return out


def lines(items: Iterator[bytes] | list[bytes]) -> bytes:
    return b"\n".join(items)


@pytest.fixture(scope="module")
def runs(corpus: Path) -> dict[str, Outputs]:
    base, shadow = load_ruleset(DEFAULT_RULES), risky_draft()
    return {"plain": run(corpus, base), "with_shadow": run(corpus, base, shadow),
            "draft": run(corpus, shadow)}


@pytest.mark.slow
def test_decisions_and_tasks_are_byte_identical_with_and_without_a_shadow(runs):
    plain, shadowed = runs["plain"], runs["with_shadow"]
    assert len(plain.decisions) > 29_000
    assert lines(d.to_json() for d in shadowed.decisions) == \
        lines(d.to_json() for d in plain.decisions)
    assert lines(t.to_json() for t in shadowed.tasks) == lines(t.to_json() for t in plain.tasks)
    assert shadowed.kinds == plain.kinds
    assert plain.shadow == []


@pytest.mark.slow
def test_shadow_decisions_are_what_a_plain_run_of_the_draft_decides(runs):
    shadow, draft_run = runs["with_shadow"].shadow, runs["draft"]
    valid = [d for d in draft_run.decisions if d.outcome != "invalid"]
    assert len(shadow) == len(valid)

    def comparable(decision_json: bytes) -> dict:
        data = orjson.loads(decision_json)
        for verdict in data["cases"]:
            verdict.pop("task_id")  # a shadow verdict never has a task
        return data

    by_id = {d.event_id: comparable(d.to_json()) for d in valid}
    assert {s.decision.event_id: comparable(s.decision.to_json()) for s in shadow} == by_id
    assert all(v.task_id is None for s in shadow for v in s.decision.cases)
    assert {s.decision.ruleset for s in shadow} == {risky_draft().version}
    # the draft really differs, on every path it touches
    base = {d.event_id: d for d in runs["plain"].decisions}
    changed = {v.rule for s in shadow for v in s.decision.cases} - \
        {v.rule for d in base.values() for v in d.cases}
    assert {"udflytning-afventer-husstand", "alle-flytninger"} <= changed


@pytest.mark.slow
def test_shadow_facts_are_the_facts_of_each_verdict(runs):
    for record in runs["with_shadow"].shadow[:5000]:
        assert len(record.facts) == len(record.decision.cases)
        for verdict, facts in zip(record.decision.cases, record.facts, strict=True):
            assert facts["case.unit"] is not None
            assert facts["event.type"] == record.kind.split("/")[1]
            assert verdict.case_id  # aligned by position with the real verdicts


def family() -> World:
    w = World()
    for name in ("mor", "far", "barn"):
        w.person(name, HOME)
    w.case("C1", "kontanthjaelp", "mor", spouse="far", children=("barn",))
    return w


def test_shadow_waits_for_the_household_while_the_real_decision_does_not():
    """The draft's first rule needs household.moved_together where the default decides a move
    out of the municipality at once: the real decision comes first, the shadow one when the
    household is complete — and neither changes the other."""
    w = family()
    first = w.move("mor", AWAY, at=0)
    w.move("far", AWAY, at=1)
    last = w.move("barn", AWAY, at=2)
    core = w.triage()
    core.use_shadow(risky_draft())
    outs = [core.process(line) for line in w.lines()]
    assert [d.event_id for d in outs[0].decisions] == [first]
    assert outs[0].shadow == [] and outs[1].shadow == []
    assert [s.decision.event_id for s in outs[2].shadow] == [first, "e2", last]
    assert {s.decision.cases[0].rule for s in outs[2].shadow} == {"udflytning-afventer-husstand"}
    assert core.waiting == 0  # a shadow decision waiting is not a decision waiting


def test_shadow_decides_at_once_where_the_real_decision_waits():
    w = family()
    w.move("barn", NEW, at=0)
    w.move("mor", NEW, at=1)
    w.move("far", NEW, at=2)
    core = w.triage()
    core.use_shadow(risky_draft())
    first, *rest = w.lines()
    outs = [core.process(first)]
    assert outs[0].decisions == [] and core.waiting == 1
    assert [s.decision.cases[0].rule for s in outs[0].shadow] == ["alle-flytninger"]
    outs += [core.process(line) for line in rest]
    assert [d.cases[0].rule for d in outs[2].decisions] == ["husstand-flyttet-samlet"] * 3
    assert [s.decision.event_id for s in outs[2].shadow] == ["e2", "e3"]


def test_a_shadow_never_creates_a_task():
    w = family()
    w.cpr_event("mor", "name_changed", at=0, code="A13")
    core = w.triage()
    core.use_shadow(draft(scores={"stamdata": 0.9}))
    out = core.process(w.lines()[0])
    assert out.shadow[0].decision.outcome == "raised"
    assert out.decisions[0].outcome == "suppressed" and out.tasks == []


def test_a_new_shadow_takes_over_undecided_events_and_never_repeats_one():
    w = family()
    w.move("mor", NEW, at=0)
    w.move("far", NEW, at=1)
    w.move("barn", NEW, at=2)
    core = w.triage()
    lines_ = w.lines()
    core.process(lines_[0])  # waits for the household; no shadow yet
    one = draft(name="one", scores={"husstand-flyttet-samlet": 0.9})
    assert core.use_shadow(one).shadow == []
    core.process(lines_[1])
    two = draft(name="two", scores={"husstand-flyttet-samlet": 0.1})
    core.use_shadow(two)
    last = core.process(lines_[2])
    assert [s.decision.ruleset for s in last.shadow] == [two.version] * 3
    assert core.use_shadow(None).shadow == [] and core.shadow is None
    assert set(core.rulesets) == {load_ruleset(DEFAULT_RULES).version, one.version, two.version}
