"""Household moves at their edges: who may join, what a joiner is judged by, and what a closed
move leaves behind (DOMAIN.md rule 2). Each test kills mutants that the other scenario tests let
live (docs/mutation.md)."""

from __future__ import annotations

import pytest

from tests.world import World, address
from triage.rules import parse_ruleset

HOME, NEW, ELSEWHERE, FAR = (address("home"), address("new"), address("elsewhere"),
                             address("far away"))


def couple(*, lodger: bool = False) -> World:
    w = World()
    w.person("mor", HOME, civil="G")
    w.person("far", HOME, civil="G", spouse="mor")
    w.persons["mor"]["spouse_cpr"] = w.cpr("far")
    if lodger:
        w.person("logerende", HOME)
    w.person("nabo", address("next door"))
    w.case("C1", "kontanthjaelp", "mor", spouse="far")
    return w


def test_someone_outside_the_household_moving_to_the_same_place_does_not_join_the_move() -> None:
    w = couple()
    family = [w.move("mor", NEW, at=0), w.move("far", NEW, at=2)]
    neighbour = w.move("nabo", NEW, at=1)  # same destination and move date, mid-window
    result = w.run()
    assert [result.outcome(i) for i in family] == ["suppressed", "suppressed"]
    assert {result.by_id(i).rule for i in family} == {"husstand-flyttet-samlet"}
    verdict = result.verdict(neighbour, "C1")  # he moves in with the recipient: rule 3
    assert (verdict.outcome, verdict.rule) == ("raised", "tilflytning-hos-modtager")
    assert result.by_id(neighbour).correlation_id != result.by_id(family[0]).correlation_id


def test_a_case_not_together_stays_not_together_for_every_member_of_its_move() -> None:
    w = World()
    w.person("mor", HOME)
    w.person("barn", HOME)
    w.person("far", ELSEWHERE)  # a member registered elsewhere: the case is not together
    w.case("C1", "kontanthjaelp", "mor", spouse="far", children=("barn",))
    ids = [w.move("mor", NEW, at=0), w.move("barn", NEW, at=1)]
    result = w.run()
    # both members moving: affects (DOMAIN.md rule 2, first bullet), for the joiner as well
    assert [(result.outcome(i), result.by_id(i).rule) for i in ids] == [
        ("raised", "flytning-sag-ikke-samlet")] * 2


IN_HOUSEHOLD_RULES = b"""
ruleset: joiner-facts
threshold: 0.5
rules:
  - id: ikke-i-husstanden
    when: {event.type: address_changed, person.in_household: false}
    score: 0.9
    reason: "Flytter uden for husstanden."
    title: "Flytning uden for husstanden"
  - id: husstand-samlet
    when: {event.type: address_changed, household.moved_together: true}
    score: 0.0
    reason: "Husstanden flyttede samlet."
    title: "Husstand flyttet samlet"
  - id: ellers
    when: {event.type: address_changed}
    score: 0.8
    reason: "Andet."
    title: "Anden flytning"
"""


def test_a_member_joining_an_open_move_is_judged_as_in_the_household() -> None:
    """Once the applicant has moved, the case's home is the new address and the second mover
    is, by the register, no longer at it; as a member of the open move they count as in the
    household (a rule on ``person.in_household`` sees True)."""
    w = couple()
    ids = [w.move("mor", NEW, at=0), w.move("far", NEW, at=1)]
    result = w.run(ruleset=parse_ruleset(IN_HOUSEHOLD_RULES))
    assert [(result.outcome(i), result.by_id(i).rule) for i in ids] == [
        ("suppressed", "husstand-samlet")] * 2


def test_a_waiting_move_already_decided_for_another_case_gets_both_verdicts() -> None:
    """The child's move waits for its mother (her case, C1) but is decided at once for its
    father's case (C2, not together: the child lives with the mother). When the mother's move
    completes the group, the child's decision carries both verdicts."""
    w = World()
    w.person("mor", HOME)
    w.person("barn", HOME)
    w.person("far", ELSEWHERE)
    w.case("C1", "kontanthjaelp", "mor", children=("barn",))
    w.case("C2", "kontanthjaelp", "far", children=("barn",))
    child = w.move("barn", NEW, at=0)
    mother = w.move("mor", NEW, at=1)
    result = w.run()
    assert result.verdict(child, "C2").rule == "flytning-sag-ikke-samlet"
    assert result.verdict(child, "C1").rule == "husstand-flyttet-samlet"
    assert result.outcome(child) == "raised"
    assert (result.outcome(mother), result.by_id(mother).rule) == (
        "suppressed", "husstand-flyttet-samlet")


def test_a_number_change_after_a_member_moved_still_completes_the_household_move() -> None:
    w = couple(lodger=True)
    moved = [w.move("mor", NEW, at=0), w.move("far", NEW, at=1)]
    new_number = "0101001001"
    w.cpr_event("far", "cpr_number_changed", at=2, code="P03", new_cpr=new_number)
    last = w.move("logerende", NEW, at=3)
    result = w.run()
    assert [result.outcome(i) for i in [*moved, last]] == ["suppressed"] * 3
    assert {result.by_id(i).rule for i in [*moved, last]} == {"husstand-flyttet-samlet"}


def test_a_renumbered_lodger_moving_elsewhere_still_splits_the_open_move() -> None:
    w = couple(lodger=True)
    first = w.move("mor", NEW, at=0)
    new_number = "0101001001"
    w.cpr_event("logerende", "cpr_number_changed", at=1, code="P03", new_cpr=new_number)
    split = w.move("logerende", ELSEWHERE, at=2)
    w.events[-1]["cpr"] = new_number
    result = w.run()
    # the lodger's home is no longer the case's home, but the open move still counts him
    assert (result.outcome(split), result.by_id(split).rule) == ("raised", "husstand-splittet")
    assert (result.outcome(first), result.by_id(first).rule) == ("raised", "husstand-splittet")


def test_a_closed_move_leaves_no_trace_for_a_former_household_member() -> None:
    w = couple(lodger=True)
    w.move("mor", NEW, at=0)
    w.move("far", NEW, at=0.5)
    w.move("logerende", ELSEWHERE, at=1)  # the household split: decided and forgotten
    later = w.move("logerende", FAR, at=50, frm=ELSEWHERE)
    result = w.run()
    decision = result.by_id(later)
    assert (decision.outcome, decision.rule, decision.cases) == (
        "suppressed", "no-affected-case", [])


@pytest.mark.parametrize("names", [("C1", "C2"), ("C2", "C1"), ("A", "B"), ("B", "A")])
def test_two_cases_sharing_a_home_whose_moves_close_together_decide_every_waiting_event(
        names: tuple[str, str]) -> None:
    """A lodger's move waits for the moves of two cases at one home; the applicant of one case
    is decided at once for it (her case is not together) and waits only for the other. When
    both windows close at the same event time every waiting event must be decided, whichever
    move is collected first (the names vary the order of the group ids)."""
    kontant, syge = names
    w = World()
    w.person("mor", HOME)
    w.person("far", HOME)
    w.person("logerende", HOME)
    w.person("barn", ELSEWHERE)
    w.case(kontant, "kontanthjaelp", "mor", children=("barn",))  # not together
    w.case(syge, "sygedagpenge", "far", spouse="mor")
    lodger = w.move("logerende", NEW, at=0)
    mother = w.move("mor", NEW, at=1)
    result = w.run()
    # far never moves: both households split when their windows close
    for event_id in (lodger, mother):
        assert result.outcome(event_id) == "raised"
    assert result.verdict(mother, kontant).rule == "flytning-sag-ikke-samlet"
    assert len(result.decisions) == 2
