"""From a scenario's names to the core's inputs: reference records, event lines, ticks, silences.

Names become deterministic identifiers — a person's CPR number from their birth date and their
place in the file, an address's DAR id from its name — so a scenario reads as a story and runs
the same every time. The timeline is built in the order it is written, which is the order the
events *arrive*; ``at`` sets each one's ``registered_at``, so a scenario can deliver a child's
move before its parents' moves registered earlier. Where an event leaves a field out, the world
fills it in from what the scenario has said so far: a move is ``from`` where the person lives
now, a DAR event's ``before`` is the address as it stands.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from triage import cprnumber
from triage.models.events import KNOWN_TYPES, InvalidEvent, parse_event, parse_record
from triage.models.reference import CaseRecord, PersonRecord
from triage.scenarios.spec import (
    EventSpec,
    Located,
    ScenarioError,
    TickSpec,
    virtual_time,
)
from triage.silences import Silence, SilenceError, parse_silence

_SOURCE_OF = {t: source for source, types in KNOWN_TYPES.items() for t in types}


@dataclass(slots=True)
class Step:
    """One step of the timeline: an event line to feed, or a tick of event time."""

    index: int
    line: bytes | None = None
    event_id: str | None = None
    tick: datetime | None = None
    expect_invalid: bool = False
    unavailable: str | None = None
    raw: bool = False


@dataclass
class World:
    """What the core is run with, and the names behind it."""

    persons: list[PersonRecord]
    cases: list[CaseRecord]
    steps: list[Step]
    silences: list[tuple[int, Silence]]
    cpr: dict[str, str] = field(default_factory=dict)


def build(located: Located) -> World:
    """The world and timeline of a validated scenario; :class:`ScenarioError` for names that
    are not declared and events the contract would reject."""
    return _Builder(located).build()


class _Builder:
    def __init__(self, located: Located) -> None:
        self.loc = located
        self.spec = located.spec
        self.problems: list[str] = []
        self.cpr: dict[str, str] = {}
        self.addresses: dict[str, dict[str, Any]] = {}
        self.lives_at: dict[str, str | None] = {}

    def problem(self, where: tuple[Any, ...], message: str) -> None:
        self.problems.append(f"{self.loc.at(*where)}: {message}")

    def build(self) -> World:
        spec = self.spec
        for name, a in spec.addresses.items():
            self.addresses[name] = {
                "address_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"scenario-address:{name}")),
                "municipality_code": a.municipality, "road_code": a.road,
                "house_number": a.house_number, "floor": None, "door": None,
                "postcode": a.postcode, "label": name}
        for serial, (name, p) in enumerate(spec.persons.items(), start=1):
            number = p.cpr or _cpr_for(p.born, serial)
            try:
                self.cpr[name] = cprnumber.validate(number)
            except cprnumber.InvalidCpr as exc:
                self.problem(("persons", name), f"{name}: {exc}")
            self.lives_at[name] = p.at
        persons = self._persons()
        cases = self._cases()
        steps = self._timeline()
        silences = self._silences()
        if self.problems:
            raise ScenarioError(self.problems)
        return World(persons, cases, steps, silences, self.cpr)

    # --- the world --------------------------------------------------------------------------

    def person(self, name: Any, where: tuple[Any, ...]) -> str:
        if not isinstance(name, str) or name not in self.spec.persons:
            self.problem(where, f"{name!r} is not one of the persons ({self._names('persons')})")
            return "0101800000"
        return self.cpr.get(name, "0101800000")

    def address(self, name: Any, where: tuple[Any, ...]) -> dict[str, Any]:
        """A named address as it stands; ``{address: name, municipality: …}`` is the same
        address with fields changed (a boundary change seen in a CPR move)."""
        if isinstance(name, dict):
            changes = dict(name)
            base = self.address(changes.pop("address", None), where)
            return {**base, **_address_overrides(changes)} if base else {}
        if not isinstance(name, str) or name not in self.addresses:
            self.problem(where, f"{name!r} is not one of the addresses "
                                f"({self._names('addresses')})")
            return {}
        return dict(self.addresses[name])

    def _names(self, what: str) -> str:
        names = list(getattr(self.spec, what))
        return ", ".join(names) if names else f"no {what} declared"

    def _persons(self) -> list[PersonRecord]:
        records = []
        for name, p in self.spec.persons.items():
            if not p.known:
                continue
            data = {"cpr": self.cpr.get(name, "0101800000"),
                    "address": self.address(p.at, ("persons", name, "at")) if p.at else None,
                    "civil_status": p.civil,
                    "spouse_cpr": self.person(p.spouse, ("persons", name, "spouse"))
                    if p.spouse else None,
                    "birth_date": p.born.isoformat(), "status": p.status}
            try:
                records.append(PersonRecord.model_validate(data))
            except ValueError as exc:
                self.problem(("persons", name), f"{name}: {exc}")
        return records

    def _cases(self) -> list[CaseRecord]:
        records = []
        for case_id, c in self.spec.cases.items():
            where = ("cases", case_id)
            members = [{"cpr": self.person(c.applicant, (*where, "applicant")),
                        "role": "applicant"}]
            if c.spouse:
                members.append({"cpr": self.person(c.spouse, (*where, "spouse")),
                                "role": "spouse"})
            members += [{"cpr": self.person(child, (*where, "children", i)), "role": "child"}
                        for i, child in enumerate(c.children)]
            try:  # the model's message (without input values) at the case, not a traceback
                record = parse_record(CaseRecord, {
                    "case_id": case_id, "benefit": c.benefit, "unit": c.unit,
                    "municipality_code": c.municipality, "members": members})
                assert isinstance(record, CaseRecord)
                records.append(record)
            except ValueError as exc:
                self.problem(where, f"{case_id}: {exc}")
        return records

    def _silences(self) -> list[tuple[int, Silence]]:
        out = []
        for i, s in enumerate(self.spec.silences):
            where = ("silences", i)
            try:
                starts = virtual_time(s.from_, self.spec.start)
                ends = virtual_time(s.until, self.spec.start)
                out.append((i, parse_silence({
                    "id": s.id, "matchers": s.matchers, "author": s.author,
                    "comment": s.comment, "starts_at": starts, "ends_at": ends})))
            except (ValueError, SilenceError) as exc:
                self.problem(where, f"silence {s.id}: {exc}")
        return out

    # --- the timeline -----------------------------------------------------------------------

    def _timeline(self) -> list[Step]:
        steps = []
        for index, step in enumerate(self.spec.events):
            where = ("events", index)
            if isinstance(step, TickSpec):
                try:
                    steps.append(Step(index, tick=virtual_time(step.tick, self.spec.start)))
                except ValueError as exc:
                    self.problem((*where, "tick"), f"tick: {exc}")
                continue
            built = self._event(step, index, where)
            if built is not None:
                steps.append(built)
        return steps

    def _event(self, e: EventSpec, index: int, where: tuple[Any, ...]) -> Step | None:
        expect_invalid = e.expect is not None and e.expect.outcome == "invalid"
        if e.raw is not None:
            return Step(index, line=e.raw.encode(), event_id=e.id, expect_invalid=expect_invalid,
                        raw=True)
        try:
            at = virtual_time(e.at, self.spec.start)
        except ValueError as exc:
            self.problem((*where, "at"), f"at: {exc}")
            return None
        if e.type is None:
            self.problem(where, "an event needs a 'type' (or 'raw', or 'tick' for a tick)")
            return None
        source = e.source or _SOURCE_OF.get(e.type) or (
            "cpr" if e.type.startswith("cpr_event_") else None)
        if source is None:
            self.problem((*where, "type"), f"unknown type {e.type!r}: say its 'source'")
            return None
        event_id = e.id or f"e{index + 1}"
        data: dict[str, Any] = {"event_id": event_id, "source": source, "type": e.type,
                                "registered_at": at.isoformat()}
        if e.person is not None:
            data["cpr"] = self.person(e.person, (*where, "person"))
        given = e.event_fields()
        self._fill(data, e, given, at.date(), where)
        data.update(e.fields)
        try:
            line = orjson.dumps(data)
        except orjson.JSONEncodeError as exc:  # an integer beyond 64 bits: no JSON event holds it
            self.problem(where, f"event {event_id} cannot be written as JSON: {exc}")
            return None
        parsed = parse_event(line)
        if isinstance(parsed, InvalidEvent) and not expect_invalid:
            self.problem(where, f"event {event_id} is not a valid {e.type} event: "
                                f"{parsed.error}")
        elif not isinstance(parsed, InvalidEvent):
            self._apply(e, given)
        return Step(index, line=line, event_id=event_id, expect_invalid=expect_invalid,
                    unavailable=e.unavailable)

    def _fill(self, data: dict[str, Any], e: EventSpec, given: dict[str, Any], day: date,
              where: tuple[Any, ...]) -> None:
        """The named fields, resolved, and the defaults a scenario may leave out."""
        t = e.type
        for key, value in given.items():
            at = (*where, key)
            if key in ("spouse", "child", "new_cpr"):
                target = {"spouse": "spouse_cpr", "child": "child_cpr", "new_cpr": "new_cpr"}[key]
                data[target] = self.person(value, at) if value is not None else None
            elif key == "parents" and value is not None and not isinstance(value, list):
                self.problem(at, "parents: a list of persons")  # enumerate(5) is a TypeError
            elif key == "parents":
                data["parents"] = [self.person(p, (*at, i)) for i, p in enumerate(value or [])]
            elif key in ("to", "from"):
                data[key] = self.address(value, at) if value is not None else None
            elif key == "address" and e.source != "dar" and _SOURCE_OF.get(t or "") != "dar":
                data["address"] = self.address(value, at)
            elif key in ("address", "after"):
                continue  # DAR: below
            else:
                data[key] = value.isoformat() if isinstance(value, date) else value
        if t == "address_changed":
            if "from" not in given and e.person is not None:
                home = self.lives_at.get(e.person)
                data["from"] = self.address(home, (*where, "person")) if home else None
            data.setdefault("move_date", day.isoformat())
        elif t in ("died", "emigrated", "disappeared", "civil_status_changed", "child_added",
                   "death_annulled", "cpr_number_annulled"):
            data.setdefault("date", day.isoformat())
            if t == "child_added" and "cpr" not in data and "child_cpr" in data:
                data["cpr"] = data["child_cpr"]
        elif t in ("benefit_started", "benefit_changed", "benefit_ended"):
            data.setdefault("period_from", day.isoformat())
        elif t == "income_reported":
            data.setdefault("period", f"{day:%Y-%m}")
            data.setdefault("income_type", "wage")
        if data["source"] == "dar":
            name = given.get("address")
            before = self.address(name, (*where, "address"))
            data["address_id"] = before.get("address_id")
            data["before"] = before
            after = given.get("after", None if t == "address_retired" else {})
            if after is None:
                data["after"] = None
            elif isinstance(after, dict):
                data["after"] = {**before, **_address_overrides(after)}
            else:
                self.problem((*where, "after"), "after: a mapping of changes "
                                                "(municipality, road, house_number, postcode) "
                                                "or null")

    def _apply(self, e: EventSpec, given: dict[str, Any]) -> None:
        """What the scenario's own bookkeeping must remember for later defaults."""
        if e.type == "address_changed" and e.person is not None and "to" in given:
            to = given["to"]
            self.lives_at[e.person] = to.get("address") if isinstance(to, dict) else to
        name = given.get("address")
        after = given.get("after")
        if (e.source == "dar" or _SOURCE_OF.get(e.type or "") == "dar") \
                and isinstance(name, str) and name in self.addresses and isinstance(after, dict):
            self.addresses[name].update(_address_overrides(after))


def _address_overrides(after: dict[str, Any]) -> dict[str, Any]:
    keys = {"municipality": "municipality_code", "road": "road_code",
            "house_number": "house_number", "postcode": "postcode"}
    return {keys.get(k, k): v for k, v in after.items()}


def _cpr_for(born: date, serial: int) -> str:
    """A valid CPR number for a birth date: the 7th digit carries the century as CPR says."""
    year = born.year
    if 1900 <= year <= 1999:
        base = 0
    elif 2000 <= year <= 2036:
        base = 4000
    else:  # 1858-1899 and 2037-2057
        base = 5000
    return f"{born:%d%m%y}{base + serial % 1000:04d}"
