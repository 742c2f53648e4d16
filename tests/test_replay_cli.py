"""``triage replay`` as an operator runs it: real files, a real process, exit status, summary."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import orjson
import pytest

from tests.world import World, address
from triage.models import (
    CaseVerdict,
    CaseVerdictRecord,
    Decision,
    DecisionRecord,
    Task,
    TaskRecord,
)

HOME = address("home")


def write_world(w: World, tmp_path: Path, extra_lines: list[bytes] = ()) -> dict[str, Path]:
    files = {name: tmp_path / f"{name}.jsonl" for name in ("persons", "cases", "events")}
    persons, _cases = w.records()
    files["persons"].write_bytes(b"".join(p.model_dump_json(by_alias=True).encode() + b"\n"
                                          for p in persons))
    files["cases"].write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in w.cases))
    files["events"].write_bytes(b"".join(line + b"\n" for line in [*w.lines(), *extra_lines]))
    return files


def triage(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triage.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


def sample_world() -> World:
    w = World()
    for name in ("mor", "far", "barn"):
        w.person(name, HOME)
    w.person("kæreste", address("x"))
    w.case("C1", "kontanthjaelp", "mor", spouse="far", children=("barn",))
    for i, who in enumerate(("barn", "mor", "far")):
        w.move(who, address("new"), at=i)
    w.move("kæreste", address("new"), at=5)
    w.atp("mor", "income_reported", at=6, amount=10.0, income_type="wage", period="2025-02")
    return w


def test_replay_writes_one_decision_per_event_tasks_and_a_summary(tmp_path):
    w = sample_world()
    files = write_world(w, tmp_path, [b"garbage", w.lines()[0]])
    out, tasks = tmp_path / "decisions.jsonl", tmp_path / "tasks.jsonl"
    run = triage("replay", files["events"], "--persons", files["persons"], "--cases",
                 files["cases"], "--out", out, "--tasks", tasks)
    assert run.returncode == 0, run.stderr
    decisions = [DecisionRecord.model_validate_json(line) for line in out.read_bytes().splitlines()]
    assert len(decisions) == len(w.events) + 1  # + the garbage line; the redelivery skipped
    by_id = {d.event_id: d for d in decisions}
    assert [by_id[f"e{i}"].outcome for i in (1, 2, 3)] == ["suppressed"] * 3
    assert by_id["e4"].outcome == "raised"  # someone moved in with the family
    assert by_id[None].outcome == "invalid" and by_id[None].error.startswith("not JSON")
    written = [TaskRecord.model_validate_json(line) for line in tasks.read_bytes().splitlines()]
    assert [t.event_ids for t in written] == [["e4"], ["e5"]]
    assert "redeliveries skipped" in run.stdout and "husstand-flyttet-samlet" in run.stdout
    assert "events per second" in run.stdout


def test_decision_wire_format_matches_the_contract(tmp_path):
    w = sample_world()
    files = write_world(w, tmp_path, [b"{}"])
    out = tmp_path / "d.jsonl"
    assert triage("replay", files["events"], "--persons", files["persons"], "--cases",
                  files["cases"], "--out", out, "--quiet").returncode == 0
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    contract = {"event_id", "outcome", "score", "rule", "reason", "cases", "correlation_id",
                "ruleset", "decided_at"}
    for decision in lines:
        assert contract <= set(decision)
        assert ("error" in decision) == (decision["outcome"] == "invalid")
        for verdict in decision["cases"]:
            assert {"case_id", "outcome", "score", "rule", "reason", "unit", "title",
                    "payment_hold"} <= set(verdict)


@pytest.mark.parametrize("broken", ["persons", "cases"])
def test_unreadable_reference_file_is_a_one_line_error(tmp_path, broken):
    files = write_world(sample_world(), tmp_path)
    files[broken] = tmp_path / "does-not-exist.jsonl"
    run = triage("replay", files["events"], "--persons", files["persons"], "--cases",
                 files["cases"], "--out", tmp_path / "d.jsonl")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "does-not-exist.jsonl: cannot read" in run.stderr


def test_invalid_reference_record_names_file_and_line_but_not_the_number(tmp_path):
    files = write_world(sample_world(), tmp_path)
    files["persons"].write_bytes(files["persons"].read_bytes()
                                 + b'{"cpr": "3213901234", "address": null}\n')
    run = triage("replay", files["events"], "--persons", files["persons"], "--cases",
                 files["cases"], "--out", tmp_path / "d.jsonl")
    assert run.returncode == 2
    assert "persons.jsonl:5: cpr: not a valid CPR number" in run.stderr
    assert "3213901234" not in run.stderr


def test_bad_rules_and_bad_window_are_one_line_errors(tmp_path):
    files = write_world(sample_world(), tmp_path)
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - id: x\n    when: {bogus: 1}\n    score: 1\n"
                     "    reason: r\n    title: t\n")
    base = ["replay", files["events"], "--persons", files["persons"], "--cases", files["cases"],
            "--out", tmp_path / "d.jsonl"]
    run = triage(*base, "--rules", rules)
    assert run.returncode == 2 and f"{rules}:3: x: unknown fact 'bogus'" in run.stderr
    run = triage(*base, "--window", "soon")
    assert run.returncode == 2 and "not a duration" in run.stderr


def test_window_option_is_used(tmp_path):
    w = World()
    for name in ("a", "b"):
        w.person(name, HOME)
    w.case("C1", "kontanthjaelp", "a")
    w.move("a", address("n"), at=0)
    w.move("b", address("n"), at=2)
    files = write_world(w, tmp_path)
    outcomes = {}
    for window in ("1h", "3h"):
        out = tmp_path / f"{window}.jsonl"
        assert triage("replay", files["events"], "--persons", files["persons"], "--cases",
                      files["cases"], "--out", out, "--window", window,
                      "--quiet").returncode == 0
        outcomes[window] = {orjson.loads(x)["outcome"] for x in out.read_bytes().splitlines()}
    assert outcomes == {"1h": {"raised"}, "3h": {"suppressed"}}


@pytest.mark.parametrize(("core", "wire"), [(Decision, DecisionRecord), (Task, TaskRecord),
                                           (CaseVerdict, CaseVerdictRecord)])
def test_core_outputs_and_wire_schema_have_the_same_fields(core, wire):
    assert [f.name for f in fields(core)] == list(wire.model_fields)
