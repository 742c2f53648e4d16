"""DOMAIN.md "CPR: other person events": deaths, emigration, civil status, births, master data,
CPR number changes."""

from __future__ import annotations

import pytest

from tests.world import World, address
from triage.models.events import parse_event

HOME = address("home")


def couple(benefit: str = "kontanthjaelp") -> World:
    w = World()
    w.person("mor", HOME, civil="G")
    w.person("far", HOME, civil="G", spouse="mor")
    w.persons["mor"]["spouse_cpr"] = w.cpr("far")
    w.person("barn", HOME)
    w.person("logerende", HOME)
    w.person("fremmed", address("elsewhere"))
    w.case("C1", benefit, "mor", spouse="far", children=("barn",))
    return w


@pytest.mark.parametrize(("who", "rule", "hold"), [
    ("mor", "doedsfald-modtager", True),
    ("far", "doedsfald-medlem", False),
    ("barn", "doedsfald-medlem", False),
    ("logerende", "doedsfald-husstand", False),
])
def test_death_affects_members_and_household_and_holds_payment_only_for_the_applicant(
        who, rule, hold):
    w = couple()
    eid = w.cpr_event(who, "died", at=0, code="A21", date="2025-03-02")
    result = w.run()
    verdict = result.verdict(eid, "C1")
    assert (verdict.outcome, verdict.rule, verdict.payment_hold) == ("raised", rule, hold)
    assert result.tasks[0].payment_hold is hold


def test_death_of_an_unrelated_person_is_suppressed():
    w = couple()
    eid = w.cpr_event("fremmed", "died", at=0, code="A21", date="2025-03-02")
    assert w.run().by_id(eid).rule == "no-affected-case"


def test_dead_member_no_longer_counts_for_together():
    w = couple()
    w.cpr_event("logerende", "died", at=0, code="A21", date="2025-03-02")
    ids = [w.move(who, address("new"), at=1 + i) for i, who in enumerate(("mor", "far", "barn"))]
    result = w.run()
    assert {result.outcome(i) for i in ids} == {"suppressed"}


def test_derived_copy_of_a_spouse_death_reaches_the_case_and_joins_the_primary_task():
    w = couple()
    primary = w.cpr_event("far", "died", at=0, code="A21", date="2025-03-02")
    copy = w.cpr_event("mor", "died", at=0.01, code="A21", derived="ÆG", date="2025-03-02")
    result = w.run()
    assert result.verdict(copy, "C1").rule == "doedsfald-medlem"  # about far, not about mor
    assert result.verdict(copy, "C1").payment_hold is False
    assert len(result.tasks) == 1 and result.tasks[0].event_ids == [primary]
    assert result.verdict(copy, "C1").task_id == result.tasks[0].task_id


@pytest.mark.parametrize(("who", "type_", "rule"), [
    ("mor", "emigrated", "udrejse-modtager"),
    ("barn", "emigrated", "udrejse-medlem-eller-husstand"),
    ("logerende", "emigrated", "udrejse-medlem-eller-husstand"),
    ("mor", "disappeared", "forsvundet-modtager"),
    ("far", "disappeared", "forsvundet-medlem-eller-husstand")])
def test_emigration_and_disappearance_are_raised_without_hold(who, type_, rule):
    w = couple()
    eid = w.cpr_event(who, type_, at=0, date="2025-03-02", country_code="SE")
    verdict = w.run().verdict(eid, "C1")
    assert (verdict.outcome, verdict.rule, verdict.payment_hold) == ("raised", rule, False)


@pytest.mark.parametrize(("benefit", "outcome"), [
    ("kontanthjaelp", "raised"), ("ressourceforloebsydelse", "suppressed"),
    ("sygedagpenge", "suppressed"), ("ledighedsydelse", "suppressed")])
def test_marriage_affects_kontanthjaelp_only(benefit, outcome):
    w = World()
    w.person("modtager", HOME)
    w.person("brud", address("her place"))
    w.case("C1", benefit, "modtager")
    primary = w.cpr_event("brud", "civil_status_changed", at=0, code="A19", civil_status="G",
                          spouse_cpr=w.cpr("modtager"), date="2025-03-01")
    derived = w.cpr_event("modtager", "civil_status_changed", at=0.001, code="A19",
                          derived="ÆG", civil_status="G", spouse_cpr=w.cpr("brud"),
                          date="2025-03-01")
    result = w.run()
    assert result.by_id(primary).cases == []  # the bride is on no case
    verdict = result.verdict(derived, "C1")
    assert verdict.outcome == outcome
    assert verdict.rule == ("civilstand-kontanthjaelp" if outcome == "raised"
                            else "civilstand-uden-betydning")


def test_divorce_of_a_couple_on_one_case_gives_one_task():
    w = couple()
    a = w.cpr_event("mor", "civil_status_changed", at=0, code="A20", civil_status="F",
                    spouse_cpr=w.cpr("far"), date="2025-03-01")
    b = w.cpr_event("far", "civil_status_changed", at=0.1, code="A20", derived="ÆG",
                    civil_status="F", spouse_cpr=w.cpr("mor"), date="2025-03-01")
    result = w.run()
    assert result.outcome(a) == result.outcome(b) == "raised"
    assert len(result.tasks) == 1
    assert result.by_id(a).correlation_id == result.by_id(b).correlation_id is not None


@pytest.mark.parametrize(("benefit", "outcome"), [
    ("kontanthjaelp", "raised"), ("ressourceforloebsydelse", "raised"),
    ("sygedagpenge", "suppressed"), ("ledighedsydelse", "suppressed")])
def test_birth_reaches_the_parents_case_through_child_and_parent_events(benefit, outcome):
    w = couple(benefit)
    child = w.cpr("nyfødt")
    common = {"child_cpr": child, "parents": [w.cpr("mor"), w.cpr("far")], "address": HOME,
              "date": "2025-03-01"}
    w.persons["nyfødt"] = {"cpr": child, "unknown": True}
    ids = [w.event("cpr", "child_added", at=0, cpr=child, code=None, derived_marker=None,
                   **common),
           w.cpr_event("mor", "child_added", at=0.001, derived="MO", **common),
           w.cpr_event("far", "child_added", at=0.002, derived="FA", **common)]
    result = w.run()
    assert [result.verdict(i, "C1").outcome for i in ids] == [outcome] * 3
    assert {result.verdict(i, "C1").rule for i in ids} == {
        "barn-tilfoejet" if outcome == "raised" else "barn-uden-betydning"}
    if outcome == "raised":
        assert len(result.tasks) == 1 and result.tasks[0].event_ids == [ids[0]]
        assert result.tasks[0].title.startswith("Nyt barn")
    else:
        assert result.tasks == []


def test_newborn_is_in_the_register_and_moves_with_the_household():
    w = couple()
    child = w.cpr("nyfødt")
    w.persons["nyfødt"] = {"cpr": child, "unknown": True}
    w.event("cpr", "child_added", at=0, cpr=child, child_cpr=child,
            parents=[w.cpr("mor")], address=HOME, date="2025-03-01")
    new = address("new")
    moves = [w.move(who, new, at=1 + i) for i, who in
             enumerate(("mor", "far", "barn", "logerende"))]
    result = w.run()
    assert {result.outcome(i) for i in moves} == {"raised"}  # the newborn did not move
    assert result.by_id(moves[0]).rule == "husstand-splittet"


@pytest.mark.parametrize(("type_", "fields"), [
    ("name_changed", {"code": "A13"}),
    ("address_protection_changed", {"protected": True}),
    ("guardianship_changed", {}),
])
def test_master_data_changes_are_suppressed(type_, fields):
    w = couple()
    eid = w.cpr_event("mor", type_, at=0, **fields)
    decision = w.run().by_id(eid)
    assert decision.outcome == "suppressed" and decision.cases[0].rule == "stamdata"


def test_cpr_number_change_then_event_on_the_new_number_still_finds_the_case():
    w = couple()
    new_number = "0101001001"  # a 1 January number without modulus 11 check
    change = w.cpr_event("mor", "cpr_number_changed", at=0, new_cpr=new_number)
    income = w.event("atp", "income_reported", at=1, cpr=new_number, amount=5400.0,
                     income_type="wage", period="2025-02")
    old_number_event = w.atp("mor", "income_reported", at=2, amount=100.0,
                             income_type="wage", period="2025-02")
    result = w.run()
    assert result.verdict(change, "C1").rule == "personnummer-aendret"
    assert result.by_id(change).outcome == "suppressed"
    assert result.verdict(income, "C1").rule == "atp-indkomst-modtager"
    assert result.verdict(old_number_event, "C1").rule == "atp-indkomst-modtager"
    ids = [w.move(who, address("new"), at=3 + i) for i, who in enumerate(("far", "barn"))]
    assert ids  # the household move still recognises the renumbered applicant:
    w.events.append({**w.events[-1], "event_id": "mor-moves", "cpr": new_number,
                     "registered_at": w.events[-1]["registered_at"]})
    w.events.append({**w.events[-1], "event_id": "lodger-moves", "cpr": w.cpr("logerende")})
    result = w.run()
    assert {result.outcome(i) for i in [*ids, "mor-moves", "lodger-moves"]} == {"suppressed"}


def test_unknown_event_type_about_a_member_is_raised_as_unclassified():
    w = couple()
    eid = w.cpr_event("far", "custody_changed", at=0, code="A40")
    result = w.run()
    verdict = result.verdict(eid, "C1")
    assert (verdict.outcome, verdict.rule) == ("raised", "unclassified")
    assert "kunne ikke klassificeres" in result.tasks[0].title


def test_unknown_event_type_about_nobody_is_still_raised_never_suppressed():
    w = couple()
    eid = w.cpr_event("fremmed", "custody_changed", at=0)
    decision = w.run().by_id(eid)
    assert (decision.outcome, decision.rule, decision.cases) == ("raised", "unclassified", [])


def test_cpr_number_change_in_the_middle_of_a_household_move():
    w = couple()
    new = address("new")
    first = [w.move(who, new, at=i) for i, who in enumerate(("far", "barn", "logerende"))]
    w.cpr_event("mor", "cpr_number_changed", at=3, new_cpr="0101001001")
    w.events.append({**w.events[0], "event_id": "mor-moves", "cpr": "0101001001",
                     "registered_at": w.events[-1]["registered_at"]})
    result = w.run()
    assert {result.outcome(i) for i in [*first, "mor-moves"]} == {"suppressed"}


def test_a_failed_lookup_raises_for_every_known_case_and_never_suppresses():
    w = couple()
    move = w.move("barn", address("new"), at=0)  # would wait for the household, or be split
    triage = w.triage()
    out = triage.decide(parse_event(w.lines()[0]), unavailable="sagssystemet svarede ikke")
    decision = out.decisions[0]
    assert (decision.event_id, decision.outcome, decision.rule) == (
        move, "raised", "could-not-check")
    assert "kunne ikke kontrolleres (sagssystemet svarede ikke)" in decision.reason
    assert [t.title for t in out.tasks] == ["Hændelse kunne ikke kontrolleres — manuel vurdering"]
    assert triage.register.address_id_of(w.cpr("barn")) == address("new")["address_id"]


def test_a_failed_lookup_about_someone_without_known_cases_is_still_raised():
    w = couple()
    event = w.atp("fremmed", "income_reported", at=0, amount=1.0, income_type="wage",
                  period="2025-01")
    out = w.triage().decide(parse_event(w.lines()[0]), unavailable="timeout")
    assert (out.decisions[0].outcome, out.decisions[0].rule, out.decisions[0].cases) == (
        "raised", "could-not-check", [])
    # No case owns it, so the fallback unit gets it (tests/test_fallback_unit.py).
    assert [(t.case_id, t.unit, t.rule, t.event_ids) for t in out.tasks] == [
        ("no-case", "borgerservice", "could-not-check", [event])]
