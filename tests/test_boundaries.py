"""Every boundary of the decision pinned (issue 7 point 8): the mutants a spot-check found alive.

* ``score >= threshold`` raises: a score equal to the threshold raises, one just below does not.
* The correlation window is closed at both ends (DOMAIN.md: moves "registered within the
  correlation window (default 24 hours from the first of them)"): a household member's move
  registered exactly at the deadline joins, one second later it does not; event time at the
  deadline leaves the move open, one second past it closes the move.
* A derived copy of a death registered on the surviving spouse does not remove the survivor from
  the register: a new partner moving in with the widow is raised, not ``no-affected-case``.
* A completed household move is forgotten at once: the same household moving again within the
  window starts a new move, and gets exactly the tasks its second move calls for.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from tests.world import T0, World, address
from triage.rules import parse_ruleset

HOME, NEW, NEWER, ELSEWHERE = (address("home"), address("new"), address("newer"),
                               address("elsewhere"))
WINDOW = timedelta(hours=24)


def couple() -> World:
    """Mor (applicant) and far (spouse) registered together at HOME on one kontanthjælp case."""
    w = World()
    w.person("mor", HOME, civil="G")
    w.person("far", HOME, civil="G", spouse="mor")
    w.persons["mor"]["spouse_cpr"] = w.cpr("far")
    w.person("nabo", address("next door"))
    w.case("C1", "kontanthjaelp", "mor", spouse="far")
    return w


def stamp(w: World, event_id: str, after: timedelta, *, utc: bool = False) -> None:
    """Set an event's ``registered_at`` to exactly ``T0 + after`` (to the second), optionally
    written in UTC (``Z``) instead of Danish local time: the same instant either way."""
    when = T0 + after
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if utc else when.isoformat()
    event = next(e for e in w.events if e["event_id"] == event_id)
    event["registered_at"] = text


# --- score equal to the threshold ----------------------------------------------------------

THRESHOLD_RULES = b"""
ruleset: threshold-test
threshold: 0.6
rules:
  - id: indkomst-modtager-paa-taersklen
    when: {event.type: income_reported, person.role: applicant, income.amount: {gt: 0}}
    score: 0.6
    reason: "Indkomst for modtageren."
    title: "Indkomst indberettet for modtager"
  - id: indkomst-aegtefaelle-under-taersklen
    when: {event.type: income_reported, person.role: spouse}
    score: 0.59
    reason: "Indkomst for aegtefaellen."
    title: "Indkomst indberettet for aegtefaelle"
"""


def test_a_score_equal_to_the_threshold_raises_and_one_just_below_is_suppressed() -> None:
    ruleset = parse_ruleset(THRESHOLD_RULES)
    assert ruleset.raises(0.6) and not ruleset.raises(0.59)
    w = couple()
    at_threshold = w.atp("mor", "income_reported", at=0, amount=1000, income_type="wage",
                         period="2025-02")
    below = w.atp("far", "income_reported", at=1, amount=1000, income_type="wage",
                  period="2025-02")
    result = w.run(ruleset=ruleset)
    raised = result.verdict(at_threshold, "C1")
    assert (raised.outcome, raised.rule, raised.score) == (
        "raised", "indkomst-modtager-paa-taersklen", 0.6)
    assert result.outcome(at_threshold) == "raised"
    suppressed = result.verdict(below, "C1")
    assert (suppressed.outcome, suppressed.rule) == (
        "suppressed", "indkomst-aegtefaelle-under-taersklen")
    assert [t.event_ids for t in result.tasks] == [[at_threshold]]


# --- a member's move at the deadline, and one second after ---------------------------------


@pytest.mark.parametrize("utc", [False, True], ids=["local-offset", "utc-z"])
def test_a_member_moving_exactly_at_the_deadline_joins_the_household_move(utc: bool) -> None:
    w = couple()
    first = w.move("mor", NEW, at=0)
    last = w.move("far", NEW, at=0)
    stamp(w, last, WINDOW, utc=utc)
    result = w.run()
    assert [result.by_id(i).rule for i in (first, last)] == ["husstand-flyttet-samlet"] * 2
    assert [result.outcome(i) for i in (first, last)] == ["suppressed", "suppressed"]
    assert result.by_id(first).correlation_id == result.by_id(last).correlation_id
    assert result.tasks == []


def test_a_member_moving_one_second_after_the_deadline_does_not_join() -> None:
    w = couple()
    first = w.move("mor", NEW, at=0)
    late = w.move("far", NEW, at=0)
    stamp(w, late, WINDOW + timedelta(seconds=1))
    result = w.run()
    # the household did not move together within the window: the first move is a split
    assert (result.outcome(first), result.by_id(first).rule) == ("raised", "husstand-splittet")
    assert result.outcome(late) == "raised"
    assert result.by_id(late).correlation_id != result.by_id(first).correlation_id
    tasks = result.tasks_for("C1")
    assert len(tasks) == 2
    assert tasks[0].event_ids == [first] and tasks[0].facts["household.size"] == 2


# --- event time at the deadline keeps the move open; one second past closes it --------------


def test_event_time_at_the_deadline_leaves_the_move_open_and_one_second_past_closes_it() -> None:
    w = couple()
    first = w.move("mor", NEW, at=0)
    w.move("far", NEW, at=30)  # only the line is needed; never fed here
    triage = w.triage()
    assert triage.process(w.lines([0])[0]).decisions == []
    assert triage.advance(T0 + WINDOW).decisions == []  # deadline == clock: still open
    assert triage.waiting == 1
    closed = triage.advance(T0 + WINDOW + timedelta(seconds=1))
    assert [(d.event_id, d.outcome, d.rule) for d in closed.decisions] == [
        (first, "raised", "husstand-splittet")]
    assert triage.waiting == 0


def test_an_unrelated_event_registered_at_the_deadline_does_not_close_the_move() -> None:
    w = couple()
    first = w.move("mor", NEW, at=0)
    noise = w.move("nabo", ELSEWHERE, at=0)
    last = w.move("far", NEW, at=0)
    stamp(w, noise, WINDOW)
    stamp(w, last, WINDOW)
    triage = w.triage()
    lines = w.lines()
    assert triage.process(lines[0]).decisions == []
    assert [d.event_id for d in triage.process(lines[1]).decisions] == [noise]
    out = triage.process(lines[2])
    assert sorted((d.event_id, d.outcome) for d in out.decisions) == sorted(
        [(first, "suppressed"), (last, "suppressed")])


# --- a derived death copy must not remove the surviving spouse -----------------------------


def widow() -> World:
    w = couple()
    w.person("ny", address("elsewhere"))
    return w


def test_after_a_spouse_death_and_its_derived_copy_a_new_partner_moving_in_is_raised() -> None:
    w = widow()
    death = w.cpr_event("far", "died", at=0, code="A21", date="2025-03-02")
    copy = w.cpr_event("mor", "died", at=0.01, code="A21", derived="ÆG", date="2025-03-02")
    moves_in = w.move("ny", HOME, at=48)
    result = w.run()
    assert result.verdict(death, "C1").rule == "doedsfald-medlem"
    assert result.verdict(copy, "C1").rule == "doedsfald-medlem"
    verdict = result.verdict(moves_in, "C1")
    assert (verdict.outcome, verdict.rule) == ("raised", "tilflytning-hos-modtager")
    assert result.by_id(moves_in).rule != "no-affected-case"


def test_the_widow_is_still_registered_at_home_after_the_derived_copy() -> None:
    w = widow()
    w.cpr_event("far", "died", at=0, code="A21", date="2025-03-02")
    w.cpr_event("mor", "died", at=0.01, code="A21", derived="ÆG", date="2025-03-02")
    triage = w.triage()
    for line in w.lines():
        triage.process(line)
    register = triage.register
    mor, far = w.cpr("mor"), w.cpr("far")
    assert register.address_id_of(mor) == HOME["address_id"]
    assert register.residents(HOME["address_id"]) == {mor}
    person = register.get(far)
    assert person is not None and person.status == "90"
    # and she moving alone within the municipality is one household moving together
    w.move("mor", NEW, at=72)
    out = triage.process(w.lines([len(w.events) - 1])[0])
    assert [(d.outcome, d.rule) for d in out.decisions] == [
        ("suppressed", "husstand-flyttet-samlet")]


# --- a completed household move is forgotten -----------------------------------------------


def test_a_household_moving_together_twice_within_the_window_gets_no_task() -> None:
    w = couple()
    ids = [w.move("mor", NEW, at=0), w.move("far", NEW, at=1)]
    ids += [w.move("mor", NEWER, at=3, frm=NEW), w.move("far", NEWER, at=4, frm=NEW)]
    result = w.run()
    assert [result.outcome(i) for i in ids] == ["suppressed"] * 4
    assert {result.by_id(i).rule for i in ids} == {"husstand-flyttet-samlet"}
    groups = [result.by_id(i).correlation_id for i in ids]
    assert groups[0] == groups[1] and groups[2] == groups[3] and groups[0] != groups[2]
    assert result.tasks == []


def test_a_household_that_moved_together_and_then_splits_within_the_window_gets_one_task() -> None:
    w = couple()
    together = [w.move("mor", NEW, at=0), w.move("far", NEW, at=1)]
    split = [w.move("mor", NEWER, at=3, frm=NEW), w.move("far", ELSEWHERE, at=4, frm=NEW)]
    triage = w.triage()
    lines = w.lines()
    first = [d for line in lines[:2] for d in triage.process(line).decisions]
    assert triage.waiting == 0 and len(triage.households) == 0  # decided and forgotten
    assert [(d.event_id, d.outcome) for d in first] == [(i, "suppressed") for i in together]
    second = triage.process(lines[2])
    assert second.decisions == []  # a new move, waiting for far
    out = triage.process(lines[3])
    assert sorted((d.event_id, d.outcome, d.rule) for d in out.decisions) == sorted(
        [(i, "raised", "husstand-splittet") for i in split])
    assert [(t.case_id, t.event_ids) for t in out.tasks] == [("C1", split)]
