"""Contract v2's new CPR event types through models, facts, the default rules and the register
(DOMAIN.md "Real CPR event codes"): death_annulled, cpr_number_annulled, master_data_changed,
registry_notice, and unclassified ``cpr_event_<CODE>``."""

from __future__ import annotations

import orjson
import pytest

from tests.world import World, address
from triage.facts import CATALOGUE
from triage.models.events import (
    CprNumberAnnulled,
    DataChanged,
    DeathAnnulled,
    InvalidEvent,
    UnknownEvent,
    parse_event,
)

HOME = address("home")


def household() -> World:
    w = World()
    w.person("mor", HOME)
    w.person("barn", HOME)
    w.person("logerende", HOME)
    w.person("fremmed", address("elsewhere"))
    w.case("C1", "kontanthjaelp", "mor", children=("barn",))
    return w


def test_new_types_parse_into_their_models_and_are_rule_facts():
    base = {"event_id": "e", "source": "cpr", "registered_at": "2025-03-03T08:00:00+01:00",
            "cpr": "0101001001"}
    cases = [({"type": "death_annulled", "date": "2025-03-01"}, DeathAnnulled),
             ({"type": "cpr_number_annulled", "date": "2025-03-01"}, CprNumberAnnulled),
             ({"type": "master_data_changed", "what": "church"}, DataChanged),
             ({"type": "registry_notice", "what": "record_request"}, DataChanged),
             ({"type": "cpr_event_A27", "code": "A27"}, UnknownEvent)]
    for fields, model in cases:
        assert type(parse_event(orjson.dumps(base | fields))) is model
    missing = parse_event(orjson.dumps(base | {"type": "master_data_changed"}))
    assert isinstance(missing, InvalidEvent) and "what" in missing.error
    values = CATALOGUE["event.type"].values
    for type_ in ("death_annulled", "cpr_number_annulled", "master_data_changed",
                  "registry_notice"):
        assert type_ in values


def test_death_annulled_raises_for_members_only_and_restores_the_register():
    w = household()
    died = w.cpr_event("mor", "died", at=0, code="A21", date="2025-03-01")
    annulled = w.cpr_event("mor", "death_annulled", at=1, code="A25", date="2025-03-02")
    # after the annulment she lives at home again: the family's move is judged with her
    moves = [w.move(who, address("new"), at=2 + i) for i, who in
             enumerate(("mor", "barn", "logerende"))]
    result = w.run()
    assert result.verdict(died, "C1").rule == "doedsfald-modtager"
    verdict = result.verdict(annulled, "C1")
    assert (verdict.outcome, verdict.rule, verdict.payment_hold) == (
        "raised", "doedsfald-annulleret", False)
    assert {result.outcome(m) for m in moves} == {"suppressed"}


def test_death_annulled_of_a_lodger_touches_the_case_but_does_not_affect_it():
    w = household()
    eid = w.cpr_event("logerende", "death_annulled", at=0, code="A25", date="2025-03-02")
    verdict = w.run().verdict(eid, "C1")
    assert (verdict.outcome, verdict.rule) == ("suppressed", "doedsfald-annulleret-uden-betydning")


def test_cpr_number_annulled_raises_for_every_case_of_a_member():
    w = household()
    w.case("C2", "sygedagpenge", "barn")
    eid = w.cpr_event("barn", "cpr_number_annulled", at=0, code="P02", date="2025-03-02")
    lodger = w.cpr_event("logerende", "cpr_number_annulled", at=1, code="P02",
                         date="2025-03-02")
    result = w.run()
    assert {v.case_id: (v.outcome, v.rule) for v in result.by_id(eid).cases} == {
        "C1": ("raised", "personnummer-annulleret"), "C2": ("raised", "personnummer-annulleret")}
    assert result.verdict(lodger, "C1").rule == "personnummer-annulleret-uden-betydning"


@pytest.mark.parametrize(("type_", "what", "rule"), [
    ("master_data_changed", "contact_address", "stamdata"),
    ("master_data_changed", "church", "stamdata"),
    ("registry_notice", "subscription", "cpr-registerbesked"),
    ("registry_notice", "record_request", "cpr-registerbesked"),
])
def test_master_data_and_registry_notices_are_suppressed(type_, what, rule):
    w = household()
    eid = w.cpr_event("mor", type_, at=0, what=what)
    decision = w.run().by_id(eid)
    assert (decision.outcome, decision.cases[0].rule) == ("suppressed", rule)


def test_an_unmapped_upper_case_code_is_raised_as_unclassified():
    w = household()
    eid = w.cpr_event("mor", "cpr_event_A27", at=0, code="A27",
                      unclassified_reason="code not in the table")
    decision = w.run().by_id(eid)
    assert decision.outcome == "raised" and decision.cases[0].rule == "unclassified"
