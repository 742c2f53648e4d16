"""The simulated municipality (triage.simulate): determinism, contract shape, and label truth.

The strongest check here is :class:`ReferenceReplay`: an independent, deliberately naive reading
of DOMAIN.md's impact rules that replays persons.jsonl, cases.jsonl and events.jsonl from the
files alone (no access to the generator's world model) and must reach exactly the labels the
generator wrote.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage import cprnumber
from triage.models.events import InvalidEvent, parse_event
from triage.simulate import SimulationSummary, simulate, timestamps
from triage.simulate.cprnumbers import CprIssuer, birth_date_of, has_modulus11
from triage.simulate.scenarios import SCENARIOS

START = date(2025, 1, 1)
FILES = ("persons.jsonl", "cases.jsonl", "events.jsonl", "labels.jsonl")
Obj = dict[str, Any]


@dataclass
class Corpus:
    path: Path
    summary: SimulationSummary
    persons: list[dict[str, Any]]
    cases: list[dict[str, Any]]
    raw_lines: list[bytes]
    labels: list[dict[str, Any]]

    @property
    def by_line(self) -> dict[int, dict[str, Any]]:
        return {label["line"]: label for label in self.labels}

    def valid_events(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(event, label) for every distinct valid event, in arrival order."""
        return [(orjson.loads(self.raw_lines[label["line"] - 1]), label)
                for label in self.labels if label["expect"] != "invalid"]


def load(path: Path, summary: SimulationSummary) -> Corpus:
    def jsonl(name: str) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in (path / name).read_bytes().splitlines()]

    return Corpus(path, summary, jsonl("persons.jsonl"), jsonl("cases.jsonl"),
                  (path / "events.jsonl").read_bytes().split(b"\n")[:-1], jsonl("labels.jsonl"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    path = tmp_path_factory.mktemp("corpus")
    return load(path, simulate(path, seed=3, events=5000, start=START))


def digest(path: Path) -> dict[str, str]:
    return {name: hashlib.sha256((path / name).read_bytes()).hexdigest() for name in FILES}


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    simulate(tmp_path / "a", seed=11, events=2000)
    simulate(tmp_path / "b", seed=11, events=2000)
    simulate(tmp_path / "c", seed=12, events=2000)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    different = digest(tmp_path / "c")
    assert all(different[name] != digest(tmp_path / "a")[name] for name in FILES)


def test_output_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    code = ("import sys, pathlib; from triage.simulate import simulate; "
            "simulate(pathlib.Path(sys.argv[1]), seed=5, events=1500)")
    for hash_seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / hash_seed)], env=env,
                       check=True)
    assert digest(tmp_path / "0") == digest(tmp_path / "4242")


# --- shape -----------------------------------------------------------------------------------

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FOUR_DIGITS = re.compile(r"^\d{4}$")
ATP_BENEFITS = {"folkepension", "foertidspension", "sygedagpenge", "barselsdagpenge",
                "a_dagpenge", "su", "fleksydelse", "efterloen", "boligstoette",
                "boerne_og_ungeydelse", "boernetilskud"}


def is_cpr(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 10 and value.isdigit() and valid_cpr(value)


def valid_cpr(value: str) -> bool:
    """CONTRACT.md: ten digits whose first six are a real date (never compared with today)."""
    try:
        return cprnumber.validate(value) == value
    except cprnumber.InvalidCpr:
        return False


def is_date(value: Any) -> bool:
    if not isinstance(value, str) or not DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_address(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    try:
        uuid.UUID(value["address_id"])
    except (KeyError, ValueError, TypeError, AttributeError):
        return False
    return (isinstance(value.get("municipality_code"), str)
            and bool(FOUR_DIGITS.match(value["municipality_code"]))
            and isinstance(value.get("road_code"), str)
            and bool(FOUR_DIGITS.match(value["road_code"]))
            and isinstance(value.get("house_number"), str)
            and isinstance(value.get("floor", None), str | None)
            and isinstance(value.get("door", None), str | None)
            and "floor" in value and "door" in value
            and isinstance(value.get("postcode"), str)
            and isinstance(value.get("label", None), str | None))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


FIELDS: dict[str, dict[str, Any]] = {
    "address_changed": {"from": lambda v: v is None or is_address(v), "to": is_address,
                        "move_date": is_date},
    "died": {"date": is_date},
    "emigrated": {"date": is_date, "country_code": lambda v: isinstance(v, str)},
    "disappeared": {"date": is_date},
    "civil_status_changed": {"civil_status": lambda v: v in tuple("UGFEPOLD"),
                             "spouse_cpr": lambda v: v is None or is_cpr(v), "date": is_date},
    "child_added": {"child_cpr": is_cpr, "address": is_address, "date": is_date,
                    "parents": lambda v: isinstance(v, list) and bool(v)
                    and all(is_cpr(p) for p in v)},
    "name_changed": {},
    "guardianship_changed": {},
    "address_protection_changed": {"protected": lambda v: isinstance(v, bool)},
    "cpr_number_changed": {"new_cpr": is_cpr},
    "benefit_started": {"benefit": ATP_BENEFITS.__contains__, "amount": is_number,
                        "period_from": is_date, "period_to": lambda v: v is None or is_date(v)},
    "income_reported": {"amount": is_number, "period": lambda v: isinstance(v, str)
                        and re.match(r"^\d{4}-(0[1-9]|1[0-2])$", v) is not None,
                        "income_type": ("wage", "pension", "benefit", "other").__contains__},
    "single_status_changed": {"single": lambda v: isinstance(v, bool)},
}
FIELDS["benefit_changed"] = FIELDS["benefit_ended"] = FIELDS["benefit_started"]
CPR_TYPES = {t for t in FIELDS if t not in
             ("benefit_started", "benefit_changed", "benefit_ended", "income_reported",
              "single_status_changed")}
DAR_TYPES = {"address_renamed", "address_renumbered", "postcode_changed",
             "municipality_changed", "address_retired"}


def contract_errors(event: Any, unknown_types: bool = False) -> list[str]:
    """Why ``event`` is not a CONTRACT.md input event (empty when it is one)."""
    if not isinstance(event, dict):
        return ["not an object"]
    errors = []
    if not isinstance(event.get("event_id"), str) or not event["event_id"]:
        errors.append("event_id")
    if not isinstance(event.get("registered_at"), str) or not RFC3339.match(
            event["registered_at"]):
        errors.append("registered_at")
    source, kind = event.get("source"), event.get("type")
    if source == "dar":
        if kind not in DAR_TYPES:
            errors.append("type")
        before, after = event.get("before") or {}, event.get("after", "missing")
        if not is_address(before) or event.get("address_id") != before["address_id"]:
            errors.append("before/address_id")
        if after is None:
            if kind != "address_retired":
                errors.append("after")
        elif not is_address(after) or after["address_id"] != event.get("address_id"):
            errors.append("after")
        return errors
    if source not in ("cpr", "atp"):
        return [*errors, "source"]
    if not is_cpr(event.get("cpr")):
        errors.append("cpr")
    marker = event.get("derived_marker", ...)
    if source == "cpr" and not (marker is None or isinstance(marker, str)):
        errors.append("derived_marker")
    if kind not in FIELDS or (source == "cpr") != (kind in CPR_TYPES):
        if not (unknown_types and source == "cpr" and isinstance(kind, str)):
            errors.append("type")
        return errors
    for name, check in FIELDS[kind].items():
        if name not in event or not check(event[name]):
            errors.append(name)
    return errors


def test_every_valid_line_follows_the_contract(corpus: Corpus) -> None:
    seen_offsets: Counter[str] = Counter()
    for event, label in corpus.valid_events():
        assert not contract_errors(event, unknown_types=label["scenario"] == "unknown_type"), \
            (label, event)
        seen_offsets[event["registered_at"][-6:] if event["registered_at"][-1] != "Z"
                     else "Z"] += 1
    assert {"+01:00", "+02:00", "Z"} <= set(seen_offsets)


def test_malformed_lines_are_invalid_and_labelled_by_line(corpus: Corpus) -> None:
    malformed = [label for label in corpus.labels if label["expect"] == "invalid"]
    assert malformed and corpus.summary.malformed == len(malformed)
    for label in malformed:
        assert label["scenario"] == "malformed" and label["cases"] == []
        raw = corpus.raw_lines[label["line"] - 1]
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            assert label["event_id"] is None
            continue
        assert contract_errors(parsed), raw
        readable = parsed.get("event_id") if isinstance(parsed, dict) else None
        assert label["event_id"] == readable


def test_the_service_parser_agrees_on_what_is_invalid(corpus: Corpus) -> None:
    for label in corpus.labels:
        parsed = parse_event(corpus.raw_lines[label["line"] - 1])
        invalid = isinstance(parsed, InvalidEvent)
        assert invalid == (label["expect"] == "invalid"), label
        if invalid:
            assert parsed.event_id == label["event_id"]


def test_reference_files_follow_the_contract(corpus: Corpus) -> None:
    cprs = [p["cpr"] for p in corpus.persons]
    assert len(cprs) == len(set(cprs)) == corpus.summary.persons
    by_cpr = {p["cpr"]: p for p in corpus.persons}
    for p in corpus.persons:
        assert set(p) == {"cpr", "address", "civil_status", "spouse_cpr", "birth_date", "status"}
        assert p["address"] is None or is_address(p["address"])
        assert p["civil_status"] in tuple("UGFEPOLD") and re.match(r"^\d\d$", p["status"])
        assert is_date(p["birth_date"]) and birth_date_of(p["cpr"]).isoformat() == p["birth_date"]
        assert (p["address"] is None) == (p["status"] in ("70", "80", "90"))
        if p["civil_status"] in "GP":  # spouses point at each other
            assert by_cpr[p["spouse_cpr"]]["spouse_cpr"] == p["cpr"]
    assert {p["status"] for p in corpus.persons} >= {"01", "03", "80", "90"}
    assert len({c["case_id"] for c in corpus.cases}) == len(corpus.cases) == corpus.summary.cases
    members_seen: Counter[str] = Counter()
    for case in corpus.cases:
        assert case["benefit"] in ("kontanthjaelp", "ressourceforloebsydelse", "sygedagpenge",
                                   "ledighedsydelse")
        assert case["municipality_code"] == "0561" and case["unit"]
        roles = [m["role"] for m in case["members"]]
        assert roles.count("applicant") == 1 and set(roles) <= {"applicant", "spouse", "child"}
        for m in case["members"]:
            assert m["cpr"] in by_cpr
            members_seen[m["cpr"]] += 1
    assert max(members_seen.values()) == 1
    assert {c["benefit"] for c in corpus.cases} == {
        "kontanthjaelp", "ressourceforloebsydelse", "sygedagpenge", "ledighedsydelse"}


def test_every_cpr_number_validates_and_some_lack_modulus_11(corpus: Corpus) -> None:
    numbers = {p["cpr"] for p in corpus.persons} | {p["spouse_cpr"] for p in corpus.persons
                                                    if p["spouse_cpr"]}
    numbers |= {m["cpr"] for c in corpus.cases for m in c["members"]}
    for event, _ in corpus.valid_events():
        numbers |= {event[k] for k in ("cpr", "new_cpr", "child_cpr", "spouse_cpr")
                    if event.get(k)}
        numbers |= set(event.get("parents", ()))
    assert all(valid_cpr(n) for n in numbers)
    without = [n for n in numbers if not has_modulus11(n)]
    assert len(without) >= 5
    assert all(n.startswith("0101") for n in without)  # only 1 January birth dates


@settings(max_examples=300, deadline=None)
@given(born=st.dates(date(1900, 1, 1), date(2057, 12, 31)), female=st.booleans(),
       seed=st.integers(0, 2**32))
def test_issued_numbers_encode_birth_date_and_sex(born: date, female: bool, seed: int) -> None:
    import random

    issuer = CprIssuer(random.Random(seed))
    number = issuer.issue(born, female)
    assert valid_cpr(number) and cprnumber.birth_date(number) == born
    assert has_modulus11(number) and (int(number[-1]) % 2 == 0) == female
    jan1 = date(born.year, 1, 1)
    other = issuer.issue(jan1, female, modulus11=False)
    assert cprnumber.birth_date(other) == jan1 and not has_modulus11(other)
    assert other != number


def test_local_timestamps_match_the_tz_database() -> None:
    tz = ZoneInfo("Europe/Copenhagen")
    base = timestamps.to_seconds(date(2024, 1, 1))
    moments = list(range(base, base + 3 * 366 * 86400, 3 * 3607))
    for year in (2024, 2025, 2026):  # around each switch to and from summer time
        for switch in timestamps._summer_time(year):
            moments += [switch - 1, switch, switch + 1]
    for ts in moments:
        assert timestamps.local(ts) == datetime.fromtimestamp(ts, tz).isoformat()


# --- labels ----------------------------------------------------------------------------------


def test_one_label_per_distinct_event_and_redeliveries_are_identical(corpus: Corpus) -> None:
    by_line = corpus.by_line
    first_line: dict[str, int] = {}
    redeliveries = 0
    for number, raw in enumerate(corpus.raw_lines, 1):
        label = by_line.get(number)
        if label is not None:
            if label["expect"] != "invalid":
                event_id = orjson.loads(raw)["event_id"]
                assert label["event_id"] == event_id and event_id not in first_line
                first_line[event_id] = number
            continue
        event_id = orjson.loads(raw)["event_id"]  # not labelled: must be a redelivery
        original = first_line[event_id]
        assert raw == corpus.raw_lines[original - 1]
        assert 3 <= number - original <= 400
        redeliveries += 1
    assert redeliveries == corpus.summary.redelivered > 0
    labelled_ids = [label["event_id"] for label in corpus.labels if label["event_id"]]
    assert len(labelled_ids) == len(set(labelled_ids))
    assert len(corpus.labels) == len(corpus.raw_lines) - redeliveries
    assert len(corpus.raw_lines) == corpus.summary.lines >= 5000
    for label in corpus.labels:
        assert label["expect"] == ("invalid" if label["scenario"] == "malformed"
                                   else "raised" if label["cases"] else "suppressed")


def test_every_scenario_appears_and_noise_is_the_majority(corpus: Corpus) -> None:
    counts = Counter(label["scenario"] for label in corpus.labels)
    assert set(SCENARIOS) | {"noise", "malformed"} == set(counts)
    assert all(counts[name] >= 3 for name in SCENARIOS)
    assert counts["noise"] > len(corpus.labels) / 2
    assert dict(counts) == corpus.summary.scenarios


def test_events_span_the_year_in_arrival_order(corpus: Corpus) -> None:
    times = [datetime.fromisoformat(e["registered_at"]) for e, _ in corpus.valid_events()]
    start = datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert start <= min(times) and max(times) < start + timedelta(days=365)
    assert max(times) - min(times) > timedelta(days=350)
    late = 0
    latest = times[0]
    for t in times:
        if t < latest:  # a few noise events arrive minutes after their time
            late += 1
            assert latest - t <= timedelta(minutes=5)
        latest = max(latest, t)
    assert late < len(times) * 0.01


def household_groups(corpus: Corpus, scenario: str) -> list[list[tuple[Obj, Obj]]]:
    """Address changes of one scenario grouped by (origin, destination, first move date)."""
    groups: dict[tuple[Any, ...], list[tuple[Obj, Obj]]] = defaultdict(list)
    open_group: dict[tuple[str, str], tuple[int, datetime]] = {}
    for event, label in corpus.valid_events():
        if label["scenario"] != scenario or event["type"] != "address_changed":
            continue
        key = (event["from"]["address_id"], event["to"]["address_id"])
        t = datetime.fromisoformat(event["registered_at"])
        if key not in open_group or t - open_group[key][1] > timedelta(days=3):
            open_group[key] = (len(groups), t)
        groups[(key, open_group[key][0])].append((event, label))
    return list(groups.values())


def test_family_moves_within_the_window_and_late_members_outside(corpus: Corpus) -> None:
    families = household_groups(corpus, "family_move_together")
    assert len(families) >= 8
    roles = {m["cpr"]: m["role"] for c in corpus.cases for m in c["members"]}
    firsts = set()
    for group in families:
        times = [datetime.fromisoformat(e["registered_at"]) for e, _ in group]
        assert max(times) - min(times) < timedelta(hours=24)
        assert len({e["move_date"] for e, _ in group}) == 1
        assert all(label["expect"] == "suppressed" for _, label in group)
        if len(group) > 1:
            firsts.add(roles.get(group[0][0]["cpr"], "not a member"))
    sizes = {len(g) for g in families}
    assert 1 in sizes and max(sizes) >= 3  # people living alone, and families
    assert firsts - {"applicant"}, "someone other than the applicant should move first"
    late = household_groups(corpus, "late_member")
    assert late
    for group in late:
        times = sorted(datetime.fromisoformat(e["registered_at"]) for e, _ in group)
        assert times[-1] - times[0] > timedelta(hours=24) > times[-2] - times[0]
        assert all(label["expect"] == "raised" for _, label in group)


def test_scenario_outcomes(corpus: Corpus) -> None:
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for label in corpus.labels:
        outcomes[label["scenario"]][label["expect"]] += 1
    for name in ("household_split", "late_member", "occupied_destination", "move_in",
                 "move_out_of_municipality", "no_fixed_address", "move_not_together",
                 "unknown_type"):
        assert set(outcomes[name]) == {"raised"}, name
    for name in ("family_move_together", "master_data", "dar_address_change", "noise"):
        assert set(outcomes[name]) == {"suppressed"}, name
    for name in ("atp_income", "atp_benefit", "birth", "cpr_number_change"):
        assert set(outcomes[name]) == {"raised", "suppressed"}, name
    # a birth's primary event and its derived copies share one label
    births: dict[str, set[tuple[str, tuple[str, ...]]]] = defaultdict(set)
    for event, label in corpus.valid_events():
        if event["type"] == "child_added":
            births[event["child_cpr"]].add((label["expect"], tuple(label["cases"])))
            assert (event["derived_marker"] is None) == (event["cpr"] == event["child_cpr"])
    assert births and all(len(v) == 1 for v in births.values())
    # after a number change, the new number still finds the case
    persons = {p["cpr"] for p in corpus.persons}
    changed = {e["new_cpr"] for e, label in corpus.valid_events()
               if e["type"] == "cpr_number_changed" and label["scenario"] == "cpr_number_change"}
    follow_ups = [label for e, label in corpus.valid_events()
                  if label["scenario"] == "cpr_number_change" and e.get("cpr") in changed
                  and e["type"] != "cpr_number_changed"]
    assert follow_ups and all(label["expect"] == "raised" for label in follow_ups)
    assert not changed & persons


# --- the labels are what the rules say -------------------------------------------------------

WINDOW = timedelta(hours=24)
SUPPORT = {"folkepension", "foertidspension", "sygedagpenge", "barselsdagpenge", "a_dagpenge",
           "su", "fleksydelse", "efterloen"}


class ReferenceReplay:
    """DOMAIN.md's impact rules over the files, written for clarity, not speed: the register is
    a dict of CPR → address, cases are searched linearly, household moves are correlated into
    groups (household fixed at the first move, 24 h window on registered_at)."""

    def __init__(self, persons: list[Obj], cases: list[Obj]) -> None:
        self.address: dict[str, Obj | None] = {}
        self.gone: set[str] = set()
        self.residents: dict[str, dict[str, None]] = defaultdict(dict)
        for p in persons:
            self.address[p["cpr"]] = p["address"]
            if p["status"] in ("70", "80", "90"):
                self.gone.add(p["cpr"])
            if p["address"]:
                self.residents[p["address"]["address_id"]][p["cpr"]] = None
        self.cases = [{**c, "members": [dict(m) for m in c["members"]]} for c in cases]
        self.groups: list[Obj] = []
        self.direct: dict[str, set[str]] = {}
        self.via_groups: dict[str, list[Obj]] = {}

    # the register
    def aid(self, cpr: str) -> str | None:
        a = self.address.get(cpr)
        return a["address_id"] if a else None

    def role(self, case: Obj, cpr: str) -> str | None:
        return next((m["role"] for m in case["members"] if m["cpr"] == cpr), None)

    def home(self, case: Obj) -> str | None:
        return self.aid(next(m["cpr"] for m in case["members"] if m["role"] == "applicant"))

    def cases_of(self, cpr: str) -> list[Obj]:
        return [c for c in self.cases if self.role(c, cpr)]

    def cases_at(self, aid: str | None) -> list[Obj]:
        return [c for c in self.cases if aid is not None and self.home(c) == aid]

    def together(self, case: Obj) -> bool:
        home = self.home(case)
        return home is not None and all(self.aid(m["cpr"]) == home for m in case["members"]
                                        if m["cpr"] not in self.gone)

    def move(self, cpr: str, to: Obj | None) -> None:
        old = self.aid(cpr)
        if old:
            self.residents[old].pop(cpr, None)
        self.address[cpr] = to
        if to:
            self.residents[to["address_id"]][cpr] = None

    # the rules
    def address_changed(self, e: Obj, t: datetime) -> tuple[set[str], list[Obj]]:
        cpr, to = e["cpr"], e["to"]
        if self.aid(cpr) == to["address_id"]:  # rule 1: administrative change
            self.move(cpr, to)
            if e["from"]["municipality_code"] != to["municipality_code"]:
                return {c["case_id"] for c in self.cases_of(cpr)}, []
            return set(), []
        out: set[str] = set()
        groups = []
        group = next((g for g in self.groups if cpr in g["household"]), None)
        if group is not None:
            groups.append(group)
            if to["address_id"] != group["to"] or e["move_date"] != group["date"]:
                group["outcome"] = "raised"
            group["moved"].add(cpr)
            if group["outcome"] is None and group["moved"] == group["household"]:
                group["outcome"] = "raised" if group["occupied"] else "suppressed"
        in_group = group["cases"] if group else set()
        related = {c["case_id"]: c for c in self.cases_of(cpr) + self.cases_at(self.aid(cpr))}
        household_cases = set()
        for case_id, case in related.items():
            if case_id in in_group:
                continue
            if ((self.role(case, cpr) and not self.together(case))  # a member, not together
                    or to["municipality_code"] != case["municipality_code"]  # handover
                    or int(to["road_code"]) >= 9900):  # no fixed address
                out.add(case_id)
            else:  # maybe part of a household move
                household_cases.add(case_id)
        if household_cases:
            household = set(self.residents[self.aid(cpr)])  # type: ignore[index]
            occupied = bool(self.residents.get(to["address_id"]))
            new = {"household": household, "cases": household_cases, "to": to["address_id"],
                   "date": e["move_date"], "t0": t, "moved": {cpr}, "occupied": occupied,
                   "outcome": None}
            if household == {cpr}:  # a group of one is decided at once
                new["outcome"] = "raised" if occupied else "suppressed"
            else:
                self.groups.append(new)
            groups.append(new)
        for case in self.cases_at(to["address_id"]):  # rule 3: someone moves in
            if case["case_id"] not in related and case["case_id"] not in in_group:
                out.add(case["case_id"])
        self.move(cpr, to)
        return out, groups

    def handle(self, e: Obj) -> None:
        t = datetime.fromisoformat(e["registered_at"])
        for g in list(self.groups):  # windows that have closed
            if t - g["t0"] > WINDOW:
                g["outcome"] = g["outcome"] or "raised"
                self.groups.remove(g)
        kind = e["type"]
        groups: list[Obj] = []
        out: set[str]

        def ids(cases: list[Obj]) -> set[str]:
            return {c["case_id"] for c in cases}

        if e["source"] == "dar":
            aid = e["address_id"]
            out = ids(self.cases_at(aid)) if kind in ("municipality_changed",
                                                      "address_retired") else set()
            if e["after"]:
                for cpr in self.residents.get(aid, {}):
                    self.address[cpr] = e["after"]
        elif e["source"] == "atp":
            out = set()
            for case in self.cases_of(e["cpr"]):
                role, kh = self.role(case, e["cpr"]), case["benefit"] == "kontanthjaelp"
                counts = role == "applicant" or (role == "spouse" and kh)
                if ((kind in ("benefit_started", "benefit_changed") and e["benefit"] in SUPPORT
                     and counts) or (kind == "income_reported" and e["amount"] > 0 and counts)
                        or (kind == "single_status_changed" and kh)):
                    out.add(case["case_id"])
        elif kind == "address_changed":
            out, groups = self.address_changed(e, t)
        elif kind in ("died", "emigrated", "disappeared"):
            out = ids(self.cases_of(e["cpr"])) | ids(self.cases_at(self.aid(e["cpr"])))
            self.move(e["cpr"], None)
            self.gone.add(e["cpr"])
        elif kind == "civil_status_changed":
            out = {c["case_id"] for c in self.cases_of(e["cpr"])
                   if c["benefit"] == "kontanthjaelp"}
        elif kind == "child_added":
            out = {c["case_id"] for p in e["parents"] for c in self.cases_of(p)
                   if c["benefit"] in ("kontanthjaelp", "ressourceforloebsydelse")}
            if e.get("derived_marker") is None:
                self.move(e["child_cpr"], e["address"])
        elif kind == "cpr_number_changed":
            old, new = e["cpr"], e["new_cpr"]
            self.address[new] = self.address.pop(old, None)
            for aid, residents in self.residents.items():
                if old in residents:
                    self.residents[aid] = {(new if k == old else k): None for k in residents}
            for case in self.cases:
                for m in case["members"]:
                    m["cpr"] = new if m["cpr"] == old else m["cpr"]
            for g in self.groups:
                g["household"] = {new if x == old else x for x in g["household"]}
            out = set()
        elif kind in ("name_changed", "address_protection_changed", "guardianship_changed"):
            out = set()
        else:  # a type the service does not know: raised for every case it touches
            out = ids(self.cases_of(e["cpr"])) | ids(self.cases_at(self.aid(e["cpr"])))
        self.direct[e["event_id"]] = out
        self.via_groups[e["event_id"]] = groups

    def decisions(self) -> dict[str, set[str]]:
        for g in self.groups:  # groups open at the end: as if their window had closed
            g["outcome"] = g["outcome"] or "raised"
        return {event_id: out.union(*(g["cases"] for g in self.via_groups[event_id]
                                      if g["outcome"] == "raised"))
                for event_id, out in self.direct.items()}


def test_labels_agree_with_an_independent_replay_of_the_rules(corpus: Corpus) -> None:
    replay = ReferenceReplay(corpus.persons, corpus.cases)
    labels = {}
    for event, label in corpus.valid_events():
        replay.handle(event)
        labels[event["event_id"]] = label
    decisions = replay.decisions()
    wrong = [(label, sorted(decisions[event_id])) for event_id, label in labels.items()
             if set(label["cases"]) != decisions[event_id]]
    assert not wrong, wrong[:5]


# --- misc ------------------------------------------------------------------------------------


def test_summary_matches_the_files(corpus: Corpus) -> None:
    s = corpus.summary
    assert s.events + s.malformed == len(corpus.labels)
    assert s.expected == dict(sorted(Counter(lab["expect"] for lab in corpus.labels).items()))
    assert sum(s.malformed_kinds.values()) == s.malformed
    assert set(s.started) == set(SCENARIOS)


def test_a_simulated_year_in_the_future_is_generated_and_every_cpr_number_validates(
        tmp_path: Path) -> None:
    """The simulator does not depend on the day it runs: a year that has not begun yet (with
    children born in it) is generated as any other, and its numbers are valid (CONTRACT.md)."""
    future = date(datetime.now(UTC).year + 2, 1, 1)
    summary = simulate(tmp_path, events=2000, start=future)
    assert summary.lines >= 2000
    lines = [line for line in (tmp_path / "events.jsonl").read_bytes().splitlines()
             if line.strip()]
    parsed = [parse_event(line) for line in lines]
    births = [e for e in parsed if getattr(e, "type", None) == "child_added"
              and cprnumber.birth_date(e.child_cpr) >= future]  # type: ignore[union-attr]
    assert births, "the corpus should contain a child born in the simulated year"
    # only the deliberately malformed lines are invalid: no "not born yet"
    assert sum(isinstance(e, InvalidEvent) for e in parsed) == summary.malformed
