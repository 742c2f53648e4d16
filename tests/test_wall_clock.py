"""Nothing depends on the day the service runs or its time zone (issue 7 point 5, CONTRACT.md).

A CPR number is valid when its first six digits are a real date (century from the 7th digit):
never compared with today. The clock is frozen with ``time-machine`` — at a date before a
simulated corpus (its newborns are "in the future") and after it — and the decisions must be
byte-identical apart from ``decided_at``. The first hour of a Danish day is the case a UTC
container got wrong: a child registered at 00:30 on its birthday, Copenhagen time, is born
"tomorrow" by the UTC calendar.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
import time_machine

from tests.world import World, address
from triage import cprnumber
from triage.cli import main
from triage.models.events import ChildAdded, parse_event
from triage.simulate import SimulationSummary, simulate

CORPUS_START = date(2025, 1, 1)
BEFORE = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
"""A run on a day before every event of the corpus: all its newborns are born 'later'."""
AFTER = datetime(2031, 11, 5, 12, 0, tzinfo=UTC)
COPENHAGEN = ZoneInfo("Europe/Copenhagen")
STAMPS = re.compile(rb'"(decided_at|created_at)":"[^"]*"')
FILES = ("persons.jsonl", "cases.jsonl", "events.jsonl", "labels.jsonl")


@pytest.fixture(autouse=True)
def _fresh_validation_cache() -> Iterator[None]:
    """``cprnumber.validate`` is cached; an answer computed under another clock must not leak
    into a test that freezes a different one."""
    cprnumber.validate.cache_clear()
    yield
    cprnumber.validate.cache_clear()


def without_stamps(data: bytes) -> bytes:
    return STAMPS.sub(rb'"\1":""', data)


# --- the validation itself -------------------------------------------------------------------


@pytest.mark.parametrize("frozen", [BEFORE, AFTER], ids=["before", "after"])
def test_a_number_born_after_today_is_valid(frozen: datetime) -> None:
    born_later = "1503304123"  # 15 March 2030 (7th digit 4, YY 30 -> 2030)
    with time_machine.travel(frozen, tick=False):
        assert date.today() < cprnumber.birth_date(born_later) or frozen is AFTER
        assert cprnumber.validate(born_later) == born_later


def test_the_century_comes_from_the_seventh_digit() -> None:
    assert cprnumber.birth_date("0101370123") == date(1937, 1, 1)
    assert cprnumber.birth_date("0101374123") == date(1937, 1, 1)  # 4, YY >= 37: 1900s
    assert cprnumber.birth_date("0101364123") == date(2036, 1, 1)  # 4, YY < 37: 2000s
    assert cprnumber.birth_date("0101585123") == date(1858, 1, 1)  # 5-8, YY >= 58: 1800s
    assert cprnumber.birth_date("0101455123") == date(2045, 1, 1)  # 5-8, YY < 58: 2000s
    assert cprnumber.birth_date("2902004123") == date(2000, 2, 29)  # a leap day


@pytest.mark.parametrize("value", ["2902014123", "3204851234", "0013851234", "0000000000",
                                   "12345", "12345678901", "15038x1234", "١٥٠٣٨٥١٢٣٤"],
                         ids=["no-29-feb-2001", "day-32", "month-0", "zeros", "short", "long",
                              "letter", "arabic-indic-digits"])
def test_not_a_real_date_or_not_ten_ascii_digits_is_invalid(value: str) -> None:
    with pytest.raises(cprnumber.InvalidCpr) as raised:
        cprnumber.validate(value)
    assert value not in str(raised.value)


def test_modulus_11_is_never_required() -> None:
    no_mod11 = "0101901235"
    assert not cprnumber.has_modulus11(no_mod11)
    assert cprnumber.validate(no_mod11) == no_mod11


# --- a newborn in the first hour of a Danish day ---------------------------------------------

HOME = address("home")


def birth_on_its_day() -> tuple[World, list[str]]:
    """A kontanthjælp recipient's child born 10 March 2025, registered at 00:30 Danish time
    (23:30 UTC on the 9th), and the derived copy on the mother a minute later."""
    w = World()
    w.person("mor", HOME)
    w.case("C1", "kontanthjaelp", "mor")
    child = w.stranger("barn", born=date(2025, 3, 10))
    fields = {"child_cpr": child, "parents": [w.cpr("mor")], "address": HOME,
              "date": "2025-03-10"}
    # T0 is 2025-03-03 08:00 +01:00; 160.5 h later is 2025-03-10 00:30 +01:00
    primary = w.cpr_event("barn", "child_added", at=160.5, **fields)
    copy = w.cpr_event("mor", "child_added", at=160.5 + 1 / 60, derived="MO", **fields)
    assert w.events[0]["registered_at"] == "2025-03-10T00:30:00+01:00"
    return w, [primary, copy]


def decisions_under(w: World, frozen: datetime) -> list[bytes]:
    cprnumber.validate.cache_clear()  # each run validates afresh under its own clock
    with time_machine.travel(frozen, tick=False):
        result = w.run()
    return [d.to_json() for d in result.decisions] + [t.to_json() for t in result.tasks]


def test_a_child_registered_in_the_first_hour_of_its_birthday_is_valid_in_utc_and_copenhagen(
        ) -> None:
    w, ids = birth_on_its_day()
    registered = datetime(2025, 3, 10, 0, 30, tzinfo=COPENHAGEN)
    in_utc = registered.astimezone(ZoneInfo("UTC"))
    with time_machine.travel(in_utc, tick=False):
        assert date.today() == date(2025, 3, 9)  # the UTC calendar: born "tomorrow"
    with time_machine.travel(registered, tick=False):
        assert date.today() == date(2025, 3, 10)

    runs = {name: decisions_under(w, at) for name, at in
            [("copenhagen", registered), ("utc", in_utc), ("before", BEFORE), ("after", AFTER)]}
    assert len(set(map(tuple, runs.values()))) == 1, "decisions depend on the clock or zone"

    result = w.run()
    assert [result.outcome(i) for i in ids] == ["raised", "raised"]  # never dead-lettered
    assert result.deadletters == []
    assert {result.by_id(i).rule for i in ids} == {"barn-tilfoejet"}
    assert len(result.tasks_for("C1")) == 1


# --- a simulated corpus decided on a day before it and a day after it ------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationSummary]:
    path = tmp_path_factory.mktemp("corpus")
    with time_machine.travel(BEFORE, tick=False):
        summary = simulate(path, events=4000, seed=11, start=CORPUS_START)
    return path, summary


def test_the_simulator_writes_the_same_corpus_whatever_day_it_runs(
        corpus: tuple[Path, SimulationSummary], tmp_path: Path) -> None:
    path, _ = corpus
    with time_machine.travel(AFTER, tick=False):
        simulate(tmp_path, events=4000, seed=11, start=CORPUS_START)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (path / name).read_bytes(), name


def replay_under(frozen: datetime, corpus: Path, out: Path) -> tuple[bytes, bytes]:
    out.mkdir()
    cprnumber.validate.cache_clear()
    with time_machine.travel(frozen, tick=False):
        status = main(["replay", str(corpus / "events.jsonl"),
                       "--persons", str(corpus / "persons.jsonl"),
                       "--cases", str(corpus / "cases.jsonl"),
                       "--out", str(out / "decisions.jsonl"),
                       "--tasks", str(out / "tasks.jsonl"), "--quiet"])
    assert status == 0
    return (out / "decisions.jsonl").read_bytes(), (out / "tasks.jsonl").read_bytes()


def test_replay_decides_byte_identically_before_and_after_the_corpus_apart_from_decided_at(
        corpus: tuple[Path, SimulationSummary], tmp_path: Path) -> None:
    path, summary = corpus
    # the corpus has newborns, all born after BEFORE: the case that used to be dead-lettered
    events = [parse_event(line) for line in (path / "events.jsonl").read_bytes().splitlines()]
    births = [e for e in events if isinstance(e, ChildAdded)]
    born_in_corpus = [e for e in births if cprnumber.birth_date(e.child_cpr) >= CORPUS_START]
    assert len(born_in_corpus) >= 3
    assert all(cprnumber.birth_date(e.child_cpr) > BEFORE.date() for e in born_in_corpus)

    early_decisions, early_tasks = replay_under(BEFORE, path, tmp_path / "before")
    late_decisions, late_tasks = replay_under(AFTER, path, tmp_path / "after")

    assert without_stamps(early_decisions) == without_stamps(late_decisions)
    assert without_stamps(early_tasks) == without_stamps(late_tasks)
    assert early_decisions != late_decisions  # the stamps did move: the clock was frozen
    first = orjson.loads(early_decisions.splitlines()[0])
    assert datetime.fromisoformat(first["decided_at"]) == BEFORE

    decided = [orjson.loads(line) for line in early_decisions.splitlines()]
    invalid = sum(d["outcome"] == "invalid" for d in decided)
    assert invalid == summary.malformed  # only the deliberately malformed lines
    birth_ids = {e.event_id for e in births}
    assert all(d["outcome"] != "invalid" for d in decided if d["event_id"] in birth_ids)
