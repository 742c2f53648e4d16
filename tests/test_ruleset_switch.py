"""Switching the active ruleset at a point of the stream (what promote and reload will do live):
every decision carries the version that decided it, events still waiting for their household
are decided whole by the new ruleset, and rulesets are kept by version."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests.drafts import draft, risky_draft
from tests.world import World, address
from triage.core import Outputs, Triage
from triage.rules import DEFAULT_RULES, load_ruleset
from triage.simulate import simulate
from triage.snapshot import load_reference

FIXED = datetime(2026, 1, 1, tzinfo=UTC)
HOME, NEW = address("home"), address("new")


def family() -> World:
    w = World()
    for name in ("mor", "far", "barn"):
        w.person(name, HOME)
    w.case("C1", "kontanthjaelp", "mor", spouse="far", children=("barn",))
    w.move("mor", NEW, at=0)
    w.move("far", NEW, at=1)
    w.move("barn", NEW, at=2)
    return w


def test_a_household_move_open_at_the_switch_is_decided_whole_by_the_new_ruleset():
    w = family()
    core = w.triage()
    base = core.ruleset
    new = draft(name="strict", scores={"husstand-flyttet-samlet": 0.9})
    first, second, third = w.lines()
    assert core.process(first).decisions == []
    assert core.process(second).decisions == []
    assert core.use_ruleset(new).decisions == []  # still waiting for the child
    out = core.process(third)
    assert [d.ruleset for d in out.decisions] == [new.version] * 3
    assert [d.outcome for d in out.decisions] == ["raised"] * 3
    assert [t.rule for t in out.tasks] == ["husstand-flyttet-samlet"]
    assert core.rulesets == {base.version: base, new.version: new}


def test_a_switch_returns_the_waiting_events_the_new_ruleset_decides_at_once():
    w = family()
    core = w.triage()
    first, *_ = w.lines()
    core.process(first)
    moves_raise = draft(name="moves-raise", prepend=[{
        "id": "flytning-altid", "score": 0.8, "when": {"event.type": "address_changed"},
        "reason": "Alle flytninger vurderes.", "title": "Flytning"}])
    out = core.use_ruleset(moves_raise)
    assert [(d.event_id, d.rule, d.ruleset) for d in out.decisions] == \
        [("e1", "flytning-altid", moves_raise.version)]
    assert len(out.tasks) == 1 and core.waiting == 0


def test_decisions_before_the_switch_carry_the_old_version_and_after_it_the_new():
    w = World()
    w.person("mor", HOME)
    w.case("C1", "kontanthjaelp", "mor")
    w.cpr_event("mor", "name_changed", at=0, code="A13")
    w.cpr_event("mor", "name_changed", at=1, code="A13")
    core = w.triage()
    new = draft(name="names", scores={"stamdata": 0.7})
    first, second = w.lines()
    before = core.process(first).decisions[0]
    core.use_ruleset(new)
    after = core.process(second).decisions[0]
    assert (before.ruleset, before.outcome) == (load_ruleset(DEFAULT_RULES).version,
                                                "suppressed")
    assert (after.ruleset, after.outcome) == (new.version, "raised")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("switch-corpus")
    simulate(folder, seed=9, events=20_000)
    return folder


def verdicts(out: Outputs) -> dict[str, list[tuple]]:
    return {d.event_id: [(v.case_id, v.outcome, v.rule, v.title, v.payment_hold)
                         for v in d.cases] for d in out.decisions if d.event_id}


@pytest.mark.slow
def test_after_a_switch_the_core_decides_as_the_new_ruleset_would_have(corpus):
    """The register and the correlation do not depend on the rules, so every event decided
    after the switch — the ones waiting at the switch included — gets exactly the verdicts a
    run of the new ruleset from the start gives it, and every event before it the old ones."""
    base, new = load_ruleset(DEFAULT_RULES), risky_draft()
    raw = [line for line in (corpus / "events.jsonl").read_bytes().splitlines() if line.strip()]
    half = len(raw) // 2

    def core(ruleset):
        return Triage(load_reference(corpus / "persons.jsonl", corpus / "cases.jsonl"), ruleset,
                      clock=lambda: FIXED)

    def whole(ruleset) -> Outputs:
        out = Outputs()
        for chunk in core(ruleset).run(raw):
            out.extend(chunk)
        return out

    switching = core(base)
    before, after = Outputs(), Outputs()
    at = 0
    while at < half or switching.waiting == 0:  # switch where household moves are open
        before.extend(switching.process(raw[at]))
        at += 1
    waiting_at_switch = switching.waiting
    after.extend(switching.use_ruleset(new))
    for chunk in switching.run(raw[at:]):
        after.extend(chunk)
    assert waiting_at_switch > 0  # the switch really cut through open household moves
    assert {d.ruleset for d in before.decisions} == {base.version}
    assert {d.ruleset for d in after.decisions} == {new.version}
    old_run, new_run = verdicts(whole(base)), verdicts(whole(new))
    got_before, got_after = verdicts(before), verdicts(after)
    assert got_before == {i: old_run[i] for i in got_before}
    assert got_after == {i: new_run[i] for i in got_after}
    assert len(got_before) + len(got_after) == len(new_run)
    assert got_after != {i: old_run[i] for i in got_after}  # the switch changed something


def test_the_same_stream_and_switch_point_give_the_same_outputs():
    """What a rebuild relies on: the switch journalled at the same point yields the same
    decisions and tasks, record for record."""
    def once() -> list[bytes]:
        w = family()
        core = w.triage()
        out = Outputs()
        first, *rest = w.lines()
        out.extend(core.process(first))
        out.extend(core.use_ruleset(draft(name="strict", scores={"husstand-flyttet-samlet": 1})))
        for line in rest:
            out.extend(core.process(line))
        out.extend(core.flush())
        return [orjson.dumps(x) for x in (*out.decisions, *out.tasks)]

    assert once() == once()
