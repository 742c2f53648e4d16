"""DOMAIN.md "CPR: address changes": rules 1-4, household correlation, decided at once or late."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from tests.world import World, address

HOME, NEW, ELSEWHERE = address("home"), address("new"), address("elsewhere")


def family(benefit: str = "kontanthjaelp") -> World:
    """A family of four registered together at HOME, all on one case."""
    w = World()
    w.person("far", HOME, civil="G")
    w.person("mor", HOME, civil="G", spouse="far")
    w.persons["far"]["spouse_cpr"] = w.cpr("mor")
    w.person("barn1", HOME)
    w.person("barn2", HOME)
    w.person("nabo", address("next door"))
    w.case("C1", benefit, "mor", spouse="far", children=("barn1", "barn2"))
    return w


def family_moves(w: World, to: dict = NEW, hours: tuple[float, ...] = (0, 0.01, 2, 9)) -> list[str]:
    return [w.move(who, to, at=h) for who, h in zip(("mor", "far", "barn1", "barn2"), hours,
                                                   strict=True)]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_family_of_four_moving_inside_the_municipality_is_suppressed_in_every_order(order):
    w = family()
    ids = family_moves(w)
    result = w.run(list(order))
    assert [result.outcome(i) for i in ids] == ["suppressed"] * 4
    assert {result.by_id(i).rule for i in ids} == {"husstand-flyttet-samlet"}
    assert len({result.by_id(i).correlation_id for i in ids}) == 1
    assert result.tasks == []


def test_family_move_interleaved_with_unrelated_events_and_decided_when_last_member_arrives():
    w = family()
    ids = family_moves(w)
    noise = w.move("nabo", address("far away"), at=1)
    triage = w.triage()
    lines = w.lines([0, 4, 1, 2])  # mor, nabo, far, barn1 — barn2 still missing
    decided = [d.event_id for line in lines for d in triage.process(line).decisions]
    assert decided == [noise]  # the family waits for its last member
    last = triage.process(w.lines([3])[0])
    assert sorted(d.event_id for d in last.decisions) == sorted(ids)
    assert {d.outcome for d in last.decisions} == {"suppressed"}


def test_recipient_living_alone_moving_within_municipality_is_decided_at_once():
    w = World()
    w.person("alene", HOME)
    w.case("C1", "kontanthjaelp", "alene")
    eid = w.move("alene", NEW, at=0)
    out = w.triage().process(w.lines()[0])
    assert [(d.event_id, d.outcome, d.rule) for d in out.decisions] == [
        (eid, "suppressed", "husstand-flyttet-samlet")]


def test_one_member_moving_elsewhere_raises_the_group_at_once():
    w = family()
    first = w.move("mor", NEW, at=0)
    second = w.move("far", NEW, at=1)
    split = w.move("barn1", ELSEWHERE, at=2)
    triage = w.triage()
    lines = w.lines()
    assert triage.process(lines[0]).decisions == []
    assert triage.process(lines[1]).decisions == []
    out = triage.process(lines[2])  # decided now, not when the window closes
    assert sorted(d.event_id for d in out.decisions) == sorted([first, second, split])
    assert {d.outcome for d in out.decisions} == {"raised"}
    assert [t.event_ids for t in out.tasks] == [[first, second, split]]
    assert out.tasks[0].title.startswith("Husstand splittet")
    task_id = out.tasks[0].task_id
    # the last member, still inside the window, joins the same group and task
    late = w.move("barn2", NEW, at=3)
    out = triage.process(w.lines([3])[0])
    assert out.decisions[0].event_id == late and out.decisions[0].outcome == "raised"
    assert out.tasks == []  # bundled into the group's task, not a new one
    assert out.decisions[0].cases[0].task_id == task_id


def test_member_with_another_move_date_splits_the_household():
    w = family()
    ids = [*family_moves(w, hours=(0, 1, 2, 3))[:3],
           w.move("barn2", NEW, at=3, move_date="2025-04-01")]
    result = w.run(lines=[w.lines()[i] for i in (0, 1, 2, 4)])
    assert {result.outcome(i) for i in ids} == {"raised"}
    assert len(result.tasks) == 1 and sorted(result.tasks[0].event_ids) == sorted(ids)


def test_member_arriving_after_the_window_is_raised_and_so_is_the_group():
    w = family()
    ids = family_moves(w, hours=(0, 1, 2, 30))
    result = w.run()
    assert [result.outcome(i) for i in ids] == ["raised"] * 4
    assert result.by_id(ids[0]).rule == "husstand-splittet"
    assert result.by_id(ids[3]).rule == "flytning-sag-ikke-samlet"


def test_configurable_window_changes_what_counts_as_together():
    w = family()
    ids = family_moves(w, hours=(0, 1, 2, 30))
    result = w.run(window=timedelta(hours=36))
    assert {result.outcome(i) for i in ids} == {"suppressed"}


def test_window_left_open_at_end_of_input_is_closed_by_flush():
    w = family()
    ids = family_moves(w)[:3]
    result = w.run(lines=w.lines()[:3])
    assert {result.outcome(i) for i in ids} == {"raised"}  # barn2 never moved


def test_occupied_destination_is_raised():
    w = family()
    w.person("fremmed", NEW)
    ids = family_moves(w)
    result = w.run()
    assert {result.by_id(i).rule for i in ids} == {"husstand-flytter-til-beboet-adresse"}
    assert {result.outcome(i) for i in ids} == {"raised"}
    assert len(result.tasks) == 1


def test_cohabitant_who_is_not_on_the_case_belongs_to_the_household():
    w = World()
    w.person("modtager", HOME)
    w.person("samlever", HOME)
    w.case("C1", "kontanthjaelp", "modtager")
    alone = w.move("modtager", NEW, at=0)
    result = w.run()
    assert result.outcome(alone) == "raised"  # the samlever stayed behind: a split
    w2 = World()
    w2.person("modtager", HOME)
    w2.person("samlever", HOME)
    w2.case("C1", "kontanthjaelp", "modtager")
    ids = [w2.move("samlever", NEW, at=0), w2.move("modtager", NEW, at=1)]
    assert {w2.run().outcome(i) for i in ids} == {"suppressed"}


def test_someone_moving_in_with_the_recipient_is_raised():
    w = World()
    w.person("modtager", HOME)
    w.person("kæreste", address("her flat"))
    w.case("C1", "kontanthjaelp", "modtager", unit="borgerservice")
    eid = w.move("kæreste", HOME, at=0)
    result = w.run()
    verdict = result.verdict(eid, "C1")
    assert (verdict.outcome, verdict.rule) == ("raised", "tilflytning-hos-modtager")
    assert result.tasks[0].unit == "borgerservice"
    assert result.tasks[0].title == "Ny beboer flyttet ind hos modtager — mulig samlever"


def test_someone_unknown_to_the_register_moving_in_from_another_municipality_is_raised():
    w = World()
    w.person("modtager", HOME)
    w.case("C1", "sygedagpenge", "modtager")
    w.stranger("tilflytter")
    eid = w.move("tilflytter", HOME, at=0, frm=address("copenhagen", municipality="0101"))
    w.stranger("fra udlandet")
    from_abroad = w.move("fra udlandet", HOME, at=1, frm=None)
    result = w.run()
    assert result.verdict(eid, "C1").rule == "tilflytning-hos-modtager"
    assert result.outcome(eid) == "raised"
    assert result.verdict(from_abroad, "C1").rule == "tilflytning-hos-modtager"


def test_moving_out_of_the_municipality_is_a_handover_decided_at_once():
    w = family()
    eid = w.move("mor", address("aarhus", municipality="0751"), at=0)
    out = w.triage().process(w.lines()[0])
    assert out.decisions[0].event_id == eid
    assert out.decisions[0].rule == "flytning-modtager-ud-af-kommunen"
    assert out.tasks[0].title == "Modtager fraflyttet kommunen — overdragelse"
    assert out.tasks[0].payment_hold is False


def test_whole_family_leaving_the_municipality_gets_one_task():
    w = family()
    ids = family_moves(w, to=address("aarhus", municipality="0751"))
    result = w.run()
    assert {result.outcome(i) for i in ids} == {"raised"}
    assert [result.by_id(i).rule for i in ids] == ["flytning-modtager-ud-af-kommunen"] + [
        "flytning-husstand-ud-af-kommunen"] * 3
    # one task, raised with the first move; later members' decisions point to it
    assert len(result.tasks) == 1 and result.tasks[0].event_ids == [ids[0]]
    assert {result.verdict(i, "C1").task_id for i in ids} == {result.tasks[0].task_id}


def test_no_fixed_address_is_raised():
    w = World()
    w.person("modtager", HOME)
    w.case("C1", "kontanthjaelp", "modtager")
    eid = w.move("modtager", address("kommunen", road="9901"), at=0)
    assert w.run().by_id(eid).rule == "flytning-uden-fast-bopael"


def test_member_of_a_case_that_is_not_together_is_raised():
    w = family()
    w.persons["barn2"]["address"] = address("kollegium")
    eid = w.move("barn2", address("new dorm"), at=0)
    result = w.run()
    assert result.by_id(eid).rule == "flytning-sag-ikke-samlet"
    assert result.outcome(eid) == "raised"


def test_unrelated_move_is_suppressed_and_touches_no_case():
    w = family()
    eid = w.move("nabo", address("somewhere"), at=0)
    decision = w.run().by_id(eid)
    assert (decision.outcome, decision.rule, decision.cases) == (
        "suppressed", "no-affected-case", [])


def test_administrative_change_same_address_id_is_suppressed_for_every_case():
    w = family()
    renamed = dict(HOME, label="Ny Vejnavn 1", road_code="0200")
    ids = [w.move(who, renamed, at=i) for i, who in enumerate(("mor", "far"))]
    result = w.run()
    assert {result.by_id(i).rule for i in ids} == {"adresse-administrativ"}
    assert {result.outcome(i) for i in ids} == {"suppressed"}


def test_boundary_change_with_same_address_id_is_raised_for_members_only():
    w = family()
    w.person("logerende", HOME)
    moved_over = dict(HOME, municipality_code="0573")
    member = w.move("mor", moved_over, at=0)
    lodger = w.move("logerende", moved_over, at=1)
    result = w.run()
    assert result.verdict(member, "C1").rule == "adresse-kommunegraense-medlem"
    assert result.outcome(member) == "raised"
    assert result.verdict(lodger, "C1").outcome == "suppressed"
    assert result.verdict(lodger, "C1").rule == "adresse-kommunegraense-ikke-medlem"


def test_group_of_two_cases_in_one_household_each_get_their_own_verdict():
    w = World()
    w.person("a", HOME)
    w.person("b", HOME)
    w.case("CA", "kontanthjaelp", "a")
    w.case("CB", "sygedagpenge", "b")
    ids = [w.move("a", NEW, at=0), w.move("b", NEW, at=1)]
    result = w.run()
    for eid in ids:
        assert [(v.case_id, v.outcome) for v in result.by_id(eid).cases] == [
            ("CA", "suppressed"), ("CB", "suppressed")]


def test_a_case_replaced_by_fresher_data_is_found_by_its_new_members_only():
    from triage.models import CaseRecord

    w = family()
    triage = w.triage()
    fresh = CaseRecord.model_validate({
        "case_id": "C1", "benefit": "sygedagpenge", "municipality_code": "0561",
        "unit": "borgerservice", "members": [{"cpr": w.cpr("far"), "role": "applicant"}]})
    triage.cases.upsert(fresh)
    assert [c.case_id for c in triage.cases.of_member(w.cpr("far"))] == ["C1"]
    assert triage.cases.of_member(w.cpr("mor")) == []
    assert [c.benefit for c in triage.cases.at_home(HOME["address_id"])] == ["sygedagpenge"]
    assert len(triage.cases) == 1
