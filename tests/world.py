"""A small world for scenario tests: named people at named addresses, cases, timed events.

Tests describe a situation in domain words — ``w.person("mor", at=home)``, ``w.move("barn",
to=new, at=2)`` — and get the real core's decisions and tasks back. Names become deterministic,
valid CPR numbers and DAR UUIDs, so a failing test reads as a story, not as digits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson

from triage.cases import CaseIndex
from triage.core import Outputs, Triage
from triage.eventtime import DEFAULT_MAX_JUMP
from triage.models import CaseRecord, Decision, PersonRecord, Task
from triage.pipeline import Pipeline
from triage.register import Register
from triage.rules import DEFAULT_RULES, Ruleset, load_ruleset

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=timezone(timedelta(hours=1)))
FIXED_CLOCK = datetime(2026, 1, 1, tzinfo=UTC)
def fixed_clock() -> datetime:
    """The wall clock the scenarios' decisions are stamped with (a function, so a core can be
    pickled into a checkpoint)."""
    return FIXED_CLOCK


SCENARIO_LATENESS = timedelta(days=3)
"""Scenario timelines span hours to days in any arrival order; the service puts them in
event-time order when they arrive within its allowed lateness."""


def address(name: str, municipality: str = "0561", road: str = "0100") -> dict[str, Any]:
    return {"address_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"dar:{name}")),
            "municipality_code": municipality, "road_code": road,
            "house_number": str(len(name)), "floor": None, "door": None, "postcode": "6700",
            "label": f"{name}"}


@dataclass
class Result:
    decisions: list[Decision]
    tasks: list[Task]
    deadletters: list[Any]

    def by_id(self, event_id: str) -> Decision:
        found = [d for d in self.decisions if d.event_id == event_id]
        assert len(found) == 1, f"{event_id}: {len(found)} decisions"
        return found[0]

    def outcome(self, event_id: str) -> str:
        return self.by_id(event_id).outcome

    def verdict(self, event_id: str, case_id: str) -> Any:
        for v in self.by_id(event_id).cases:
            if v.case_id == case_id:
                return v
        raise AssertionError(f"{event_id} has no verdict for {case_id}")

    def tasks_for(self, case_id: str) -> list[Task]:
        return [t for t in self.tasks if t.case_id == case_id]


@dataclass
class World:
    persons: dict[str, dict[str, Any]] = field(default_factory=dict)
    cases: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    _serial: int = 0
    _event_no: int = 0

    # --- reference data ---

    def cpr(self, name: str) -> str:
        return self.persons[name]["cpr"] if name in self.persons else self._new_cpr(name)

    def _new_cpr(self, name: str, born: date = date(1985, 6, 15)) -> str:
        self._serial += 1
        serial = self._serial + (4000 if born.year >= 2000 else 0)
        return f"{born:%d%m%y}{serial:04d}"

    def person(self, name: str, at: dict[str, Any] | None = None, *, civil: str = "U",
               spouse: str | None = None, born: date = date(1985, 6, 15),
               status: str = "01") -> str:
        cpr = self._new_cpr(name, born)
        self.persons[name] = {"cpr": cpr, "address": at, "civil_status": civil,
                              "spouse_cpr": self.cpr(spouse) if spouse else None,
                              "birth_date": born.isoformat(), "status": status}
        return cpr

    def stranger(self, name: str, born: date = date(1990, 2, 2)) -> str:
        """Someone the persons snapshot does not know (arriving from elsewhere)."""
        cpr = self._new_cpr(name, born)
        self.persons[name] = {"cpr": cpr, "unknown": True}
        return cpr

    def case(self, case_id: str, benefit: str, applicant: str, *, spouse: str | None = None,
             children: tuple[str, ...] = (), unit: str = "jobcenter",
             municipality: str = "0561") -> None:
        members = [{"cpr": self.cpr(applicant), "role": "applicant"}]
        if spouse:
            members.append({"cpr": self.cpr(spouse), "role": "spouse"})
        members += [{"cpr": self.cpr(c), "role": "child"} for c in children]
        self.cases.append({"case_id": case_id, "benefit": benefit, "unit": unit,
                           "municipality_code": municipality, "members": members})

    # --- events ---

    def event(self, source: str, type_: str, *, at: float, event_id: str | None = None,
              **fields: Any) -> str:
        self._event_no += 1
        event_id = event_id or f"e{self._event_no}"
        when = T0 + timedelta(hours=at)
        self.events.append({"event_id": event_id, "source": source, "type": type_,
                            "registered_at": when.isoformat(), **fields})
        return event_id

    def cpr_event(self, who: str, type_: str, *, at: float, code: str | None = None,
                  derived: str | None = None, **fields: Any) -> str:
        return self.event("cpr", type_, at=at, cpr=self.cpr(who), code=code,
                          derived_marker=derived, **fields)

    def move(self, who: str, to: dict[str, Any], *, at: float, frm: Any = "home",
             move_date: str = "2025-03-01", **kw: Any) -> str:
        if frm == "home":
            frm = self.persons.get(who, {}).get("address")
        return self.cpr_event(who, "address_changed", at=at, code="A01", **{"from": frm},
                              to=to, move_date=move_date, **kw)

    def atp(self, who: str, type_: str, *, at: float, **fields: Any) -> str:
        return self.event("atp", type_, at=at, cpr=self.cpr(who), **fields)

    # --- running ---

    def records(self) -> tuple[list[PersonRecord], list[CaseRecord]]:
        persons = [PersonRecord.model_validate(p) for p in self.persons.values()
                   if not p.get("unknown")]
        return persons, [CaseRecord.model_validate(c) for c in self.cases]

    def triage(self, ruleset: Ruleset | None = None,
               window: timedelta = timedelta(hours=24)) -> Triage:
        persons, cases = self.records()
        index = CaseIndex(Register(persons), cases)
        return Triage(index, ruleset or load_ruleset(DEFAULT_RULES), window=window,
                      clock=fixed_clock)

    def lines(self, order: list[int] | None = None) -> list[bytes]:
        events = self.events if order is None else [self.events[i] for i in order]
        return [orjson.dumps(e) for e in events]

    def run(self, order: list[int] | None = None, *, lines: list[bytes] | None = None,
            lateness: timedelta = SCENARIO_LATENESS, **kw: Any) -> Result:
        """Decide the events (in ``order``, or the raw ``lines``) the way every driver does:
        through the pipeline, event-time stage first, with ``lateness``."""
        pipeline = Pipeline(self.triage(**kw), lateness=lateness,
                            max_jump=max(DEFAULT_MAX_JUMP, lateness + timedelta(days=1)))
        out = Outputs()
        for chunk in pipeline.run(lines if lines is not None else self.lines(order)):
            out.extend(chunk)
        return Result(out.decisions, out.tasks, out.deadletters)
