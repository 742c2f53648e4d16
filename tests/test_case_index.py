"""The case index kept current by a fresh case-system lookup (``CaseIndex.upsert``)."""

from __future__ import annotations

from tests.world import World, address
from triage.cases import CaseIndex
from triage.models import CaseRecord
from triage.register import Register

HOME, ELSEWHERE = address("home"), address("elsewhere")


def index() -> tuple[World, CaseIndex]:
    w = World()
    w.person("mor", HOME)
    w.person("far", HOME)
    w.person("ny", ELSEWHERE)
    w.case("C1", "kontanthjaelp", "mor", spouse="far")
    persons, cases = w.records()
    return w, CaseIndex(Register(persons), cases)


def record(w: World, applicant: str, *others: str) -> CaseRecord:
    members = [{"cpr": w.cpr(applicant), "role": "applicant"}]
    members += [{"cpr": w.cpr(o), "role": "spouse"} for o in others]
    return CaseRecord.model_validate({"case_id": "C1", "benefit": "kontanthjaelp",
                                      "municipality_code": "0561", "unit": "jobcenter",
                                      "members": members})


def test_upsert_replaces_the_members_and_the_home_of_a_case() -> None:
    w, cases = index()
    cases.upsert(record(w, "ny"))
    assert len(cases) == 1
    assert [c.case_id for c in cases.of_member(w.cpr("ny"))] == ["C1"]
    assert cases.of_member(w.cpr("mor")) == [] and cases.of_member(w.cpr("far")) == []
    assert cases.at_home(HOME["address_id"]) == []  # mor is no longer its applicant
    assert [c.case_id for c in cases.at_home(ELSEWHERE["address_id"])] == ["C1"]


def test_upsert_of_an_unchanged_case_keeps_it_found_once() -> None:
    w, cases = index()
    cases.upsert(record(w, "mor", "far"))
    assert [c.case_id for c in cases.of_member(w.cpr("far"))] == ["C1"]
    assert [c.case_id for c in cases.at_home(HOME["address_id"])] == ["C1"]


def test_upsert_adds_a_case_not_known_before() -> None:
    w, cases = index()
    new = record(w, "ny").model_copy(update={"case_id": "C2"})
    cases.upsert(new)
    assert sorted(c.case_id for c in cases.of_member(w.cpr("ny"))) == ["C2"]
    assert len(cases) == 2
