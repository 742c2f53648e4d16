"""What an event does to the register shows in the decisions of the events after it.

DOMAIN.md: an event is judged against "the state after every earlier registered event has been
applied". Each test below applies one kind of change and then asks a later event a question
that only the changed register answers correctly (mutation testing found these updates
unobserved by the other scenario tests: docs/mutation.md).
"""

from __future__ import annotations

from datetime import date

from tests.world import World, address

HOME, NEW = address("home"), address("new")


def recipient() -> World:
    w = World()
    w.person("mor", HOME)
    w.person("ven", address("his place"))
    w.case("C1", "kontanthjaelp", "mor")
    return w


# --- civil status: the register's spouse is who a derived death copy is about ---------------


def marriage(w: World, at: float) -> None:
    fields = {"code": "A19", "civil_status": "G", "date": "2025-03-01"}
    w.cpr_event("ven", "civil_status_changed", at=at, spouse_cpr=w.cpr("mor"), **fields)
    w.cpr_event("mor", "civil_status_changed", at=at + 0.01, derived="ÆG",
                spouse_cpr=w.cpr("ven"), **fields)


def test_after_a_marriage_in_the_stream_a_derived_death_copy_is_about_the_new_spouse() -> None:
    w = recipient()
    marriage(w, at=0)
    w.move("ven", HOME, at=1)  # he moves in with her: now in her household
    # the copy registered on mor reaches the service first (copies and primaries arrive in
    # any order); it is about her spouse, whom only the marriage made known
    copy = w.cpr_event("mor", "died", at=50, code="A21", derived="ÆG", date="2025-03-05")
    result = w.run()
    verdict = result.verdict(copy, "C1")
    assert (verdict.outcome, verdict.rule, verdict.payment_hold) == (
        "raised", "doedsfald-husstand", False)


def test_after_a_divorce_a_derived_death_copy_has_no_spouse_to_be_about() -> None:
    w = World()
    w.person("mor", HOME, civil="G")
    w.person("far", address("his place"), civil="G", spouse="mor")
    w.persons["mor"]["spouse_cpr"] = w.cpr("far")
    w.case("C1", "kontanthjaelp", "mor")
    fields = {"code": "A20", "civil_status": "F", "spouse_cpr": None, "date": "2025-03-01"}
    w.cpr_event("mor", "civil_status_changed", at=0, **fields)
    copy = w.cpr_event("mor", "died", at=50, code="A21", derived="ÆG", date="2025-03-05")
    result = w.run()
    # no spouse is registered any more: the copy cannot be identified, so it is raised as
    # unclassified for the carrier's case, never judged as if it were about mor herself
    verdict = result.verdict(copy, "C1")
    assert (verdict.outcome, verdict.rule, verdict.payment_hold) == (
        "raised", "unclassified", False)


def test_a_derived_death_copy_on_someone_the_register_does_not_know_is_decided() -> None:
    w = recipient()
    w.stranger("ukendt")
    copy = w.cpr_event("ukendt", "died", at=0, code="A21", derived="ÆG", date="2025-03-05")
    result = w.run()
    assert (result.outcome(copy), result.by_id(copy).rule) == ("suppressed", "no-affected-case")


# --- a birth: the newborn is registered at its address and belongs to the household ---------


def single_mother() -> World:
    w = World()
    w.person("mor", HOME)
    w.case("C1", "kontanthjaelp", "mor")
    w.stranger("baby", born=date(2025, 3, 2))
    return w


def birth(w: World, at: float) -> None:
    w.cpr_event("baby", "child_added", at=at, child_cpr=w.cpr("baby"), parents=[w.cpr("mor")],
                address=HOME, date="2025-03-02")


def test_after_a_birth_the_mother_moving_alone_has_left_her_newborn_behind() -> None:
    w = single_mother()
    birth(w, at=0)
    alone = w.move("mor", NEW, at=50)
    result = w.run()
    # the newborn is registered at HOME: the household did not move together
    assert (result.outcome(alone), result.by_id(alone).rule) == ("raised", "husstand-splittet")


def test_after_a_birth_mother_and_newborn_moving_together_are_suppressed() -> None:
    w = single_mother()
    birth(w, at=0)
    ids = [w.move("mor", NEW, at=50), w.move("baby", NEW, at=50.5, frm=HOME)]
    result = w.run()
    assert [result.outcome(i) for i in ids] == ["suppressed", "suppressed"]
    assert {result.by_id(i).rule for i in ids} == {"husstand-flyttet-samlet"}


def test_a_child_already_known_is_not_moved_by_an_adoption() -> None:
    w = World()
    w.person("mor", HOME)
    w.person("barn", address("foster home"), born=date(2015, 5, 5))
    w.case("C1", "kontanthjaelp", "mor")
    w.cpr_event("barn", "child_added", at=0, code="A35", child_cpr=w.cpr("barn"),
                parents=[w.cpr("mor")], address=HOME, date="2025-03-01")
    alone = w.move("mor", NEW, at=50)
    result = w.run()
    # the child is still registered where it lived (the adoption record did not move it), so
    # mor's household is mor alone: she moved together with it
    assert (result.outcome(alone), result.by_id(alone).rule) == (
        "suppressed", "husstand-flyttet-samlet")


# --- a CPR number change for someone the snapshot did not know -------------------------------


def test_a_number_change_of_someone_unknown_then_a_move_in_on_the_new_number() -> None:
    w = recipient()
    w.stranger("tilflytter")
    new_number = "0202901234"
    w.cpr_event("tilflytter", "cpr_number_changed", at=0, code="P03", new_cpr=new_number)
    moves_in = w.move("tilflytter", HOME, at=1, frm=None)
    w.events[-1]["cpr"] = new_number
    result = w.run()
    verdict = result.verdict(moves_in, "C1")
    assert (verdict.outcome, verdict.rule) == ("raised", "tilflytning-hos-modtager")


def test_after_the_applicant_is_renumbered_someone_moving_in_with_her_is_raised() -> None:
    w = recipient()
    w.cpr_event("mor", "cpr_number_changed", at=0, code="P03", new_cpr="0101001001")
    moves_in = w.move("ven", HOME, at=1)
    verdict = w.run().verdict(moves_in, "C1")
    assert (verdict.outcome, verdict.rule) == ("raised", "tilflytning-hos-modtager")


def test_a_spouse_living_elsewhere_is_found_by_the_new_number_after_renumbering() -> None:
    w = World()
    w.person("mor", HOME)
    w.person("far", address("his place"))
    w.case("C1", "kontanthjaelp", "mor", spouse="far")
    new_number = "0101001001"
    w.cpr_event("far", "cpr_number_changed", at=0, code="P03", new_cpr=new_number)
    income = w.event("atp", "income_reported", at=1, cpr=new_number, amount=2500.0,
                     income_type="wage", period="2025-02")
    verdict = w.run().verdict(income, "C1")
    assert (verdict.outcome, verdict.rule) == ("raised", "atp-indkomst-aegtefaelle")
