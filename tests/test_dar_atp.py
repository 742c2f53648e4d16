"""DOMAIN.md "DAR: address events" and "ATP / Udbetaling Danmark"."""

from __future__ import annotations

import pytest

from tests.world import World, address

HOME = address("home")


def household(benefit: str = "kontanthjaelp") -> World:
    w = World()
    w.person("modtager", HOME, civil="G")
    w.person("ægtefælle", HOME, civil="G", spouse="modtager")
    w.person("barn", HOME)
    w.person("samlever", HOME)
    w.person("fremmed", address("elsewhere"))
    w.case("C1", benefit, "modtager", spouse="ægtefælle", children=("barn",))
    return w


@pytest.mark.parametrize("type_", ["address_renamed", "address_renumbered", "postcode_changed"])
def test_dar_administrative_changes_of_a_case_home_are_suppressed(type_):
    w = household()
    after = dict(HOME, label="Nyt Navn 7", house_number="7", postcode="6705")
    eid = w.event("dar", type_, at=0, address_id=HOME["address_id"], before=HOME, after=after)
    decision = w.run().by_id(eid)
    assert (decision.outcome, decision.cases[0].rule) == ("suppressed", "dar-administrativ")


def test_dar_boundary_change_of_a_case_home_is_raised_and_updates_the_register():
    w = household()
    after = dict(HOME, municipality_code="0573")
    eid = w.event("dar", "municipality_changed", at=0, address_id=HOME["address_id"],
                  before=HOME, after=after)
    income = w.atp("modtager", "income_reported", at=1, amount=10.0, income_type="wage",
                   period="2025-02")
    move = w.move("samlever", address("somewhere in 0561"), at=2)
    result = w.run()
    assert result.verdict(eid, "C1").rule == "dar-kommunegraense"
    assert result.tasks[0].title == "Sagens adresse overgået til anden kommune — overdragelse"
    assert result.outcome(income) == "raised"
    assert result.verdict(move, "C1").outcome == "raised"  # the case is still found there


def test_dar_boundary_change_of_an_address_without_cases_is_suppressed():
    w = household()
    other = address("elsewhere")
    eid = w.event("dar", "municipality_changed", at=0, address_id=other["address_id"],
                  before=other, after=dict(other, municipality_code="0573"))
    assert w.run().by_id(eid).rule == "no-affected-case"


def test_dar_retired_case_home_is_raised():
    w = household()
    eid = w.event("dar", "address_retired", at=0, address_id=HOME["address_id"], before=HOME,
                  after=None)
    assert w.run().verdict(eid, "C1").rule == "dar-adresse-nedlagt"


BENEFIT = {"amount": 12000.0, "period_from": "2025-03-01", "period_to": None}


OTHER_SUPPORT, SPOUSE_SUPPORT = "atp-anden-ydelse-modtager", "atp-anden-ydelse-aegtefaelle"
NO_IMPACT = "atp-uden-betydning"


@pytest.mark.parametrize(("benefit", "who", "atp_benefit", "type_", "outcome", "rule"), [
    ("ressourceforloebsydelse", "modtager", "folkepension", "benefit_started", "raised",
     OTHER_SUPPORT),
    ("sygedagpenge", "modtager", "su", "benefit_changed", "raised", OTHER_SUPPORT),
    ("kontanthjaelp", "ægtefælle", "a_dagpenge", "benefit_started", "raised", SPOUSE_SUPPORT),
    ("ressourceforloebsydelse", "ægtefælle", "a_dagpenge", "benefit_started", "suppressed",
     NO_IMPACT),
    ("kontanthjaelp", "modtager", "boligstoette", "benefit_started", "suppressed", NO_IMPACT),
    ("kontanthjaelp", "modtager", "boerne_og_ungeydelse", "benefit_changed", "suppressed",
     NO_IMPACT),
    ("kontanthjaelp", "modtager", "boernetilskud", "benefit_started", "suppressed", NO_IMPACT),
    ("kontanthjaelp", "modtager", "folkepension", "benefit_ended", "suppressed", NO_IMPACT),
    ("kontanthjaelp", "barn", "su", "benefit_started", "suppressed", NO_IMPACT),
    ("kontanthjaelp", "samlever", "fleksydelse", "benefit_started", "suppressed", NO_IMPACT),
])
def test_atp_benefits(benefit, who, atp_benefit, type_, outcome, rule):
    w = household(benefit)
    eid = w.atp(who, type_, at=0, benefit=atp_benefit, **BENEFIT)
    verdict = w.run().verdict(eid, "C1")
    assert (verdict.outcome, verdict.rule) == (outcome, rule)


@pytest.mark.parametrize(("benefit", "who", "amount", "rule"), [
    ("ressourceforloebsydelse", "modtager", 2500.0, "atp-indkomst-modtager"),
    ("kontanthjaelp", "ægtefælle", 2500.0, "atp-indkomst-aegtefaelle"),
    ("ressourceforloebsydelse", "ægtefælle", 2500.0, NO_IMPACT),
    ("ledighedsydelse", "ægtefælle", 2500.0, NO_IMPACT),
    ("kontanthjaelp", "modtager", 0.0, NO_IMPACT),
    ("kontanthjaelp", "barn", 900.0, NO_IMPACT),
])
def test_atp_income(benefit, who, amount, rule):
    w = household(benefit)
    eid = w.atp(who, "income_reported", at=0, amount=amount, income_type="wage",
                period="2025-02")
    verdict = w.run().verdict(eid, "C1")
    assert verdict.rule == rule
    assert verdict.outcome == ("suppressed" if rule == NO_IMPACT else "raised")


@pytest.mark.parametrize(("benefit", "rule"), [("kontanthjaelp", "atp-enlig-status"),
                                               ("sygedagpenge", NO_IMPACT)])
def test_udk_single_status(benefit, rule):
    w = household(benefit)
    eid = w.atp("ægtefælle", "single_status_changed", at=0, single=True)
    verdict = w.run().verdict(eid, "C1")
    assert verdict.rule == rule
    assert verdict.outcome == ("suppressed" if rule == NO_IMPACT else "raised")


def test_atp_event_about_someone_outside_every_case_is_suppressed():
    w = household()
    eid = w.atp("fremmed", "income_reported", at=0, amount=50000.0, income_type="wage",
                period="2025-02")
    assert w.run().by_id(eid).rule == "no-affected-case"
