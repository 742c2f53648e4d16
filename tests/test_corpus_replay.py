"""Done-when for the core: `triage replay` on a ≥ 100,000-event `triage simulate` corpus decides
every event exactly once and suppresses no event the generator labels relevant."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from triage.simulate import simulate

EVENTS = 100_000


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], list[dict]]:
    corpus = tmp_path_factory.mktemp("corpus")
    simulate(corpus, seed=11, events=EVENTS)
    out = corpus / "decisions.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "triage.cli", "replay", corpus / "events.jsonl",
         "--persons", corpus / "persons.jsonl", "--cases", corpus / "cases.jsonl",
         "--out", out, "--tasks", corpus / "tasks.jsonl", "--quiet"],
        capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    decisions = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    labels = [orjson.loads(line) for line in (corpus / "labels.jsonl").read_bytes().splitlines()]
    return corpus, decisions, labels


@pytest.mark.slow
def test_every_event_is_decided_exactly_once(replayed):
    corpus, decisions, labels = replayed
    lines = sum(1 for line in (corpus / "events.jsonl").read_bytes().splitlines() if line.strip())
    assert lines >= EVENTS
    ids = Counter(d["event_id"] for d in decisions if d["event_id"] is not None)
    assert max(ids.values()) == 1
    expected_ids = {label["event_id"] for label in labels if label["event_id"] is not None}
    assert set(ids) == expected_ids
    nameless = [label for label in labels if label["event_id"] is None]
    assert sum(1 for d in decisions if d["event_id"] is None) == len(nameless)


@pytest.mark.slow
def test_no_event_labelled_relevant_is_suppressed_and_labels_agree(replayed):
    _, decisions, labels = replayed
    by_id = {d["event_id"]: d for d in decisions if d["event_id"] is not None}
    suppressed_relevant = [label["event_id"] for label in labels if label["expect"] == "raised"
                           and by_id[label["event_id"]]["outcome"] == "suppressed"]
    assert suppressed_relevant == []
    disagreements = []
    for label in labels:
        if label["event_id"] is None:
            continue
        decision = by_id[label["event_id"]]
        raised = sorted(c["case_id"] for c in decision["cases"] if c["outcome"] == "raised")
        if decision["outcome"] != label["expect"] or (label["expect"] == "raised"
                                                       and raised != sorted(label["cases"])):
            disagreements.append((label["scenario"], label["expect"], decision["outcome"]))
    assert disagreements == []
    assert Counter(label["expect"] for label in labels)["raised"] > 1000  # a real test


@pytest.mark.slow
def test_no_cpr_number_appears_in_clear_in_any_decision_or_task(replayed):
    corpus, _, _ = replayed
    numbers = {orjson.loads(line)["cpr"]
               for line in (corpus / "persons.jsonl").read_bytes().splitlines()}
    for line in (corpus / "events.jsonl").read_bytes().splitlines():
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict):
            numbers.update(v for k, v in event.items()
                           if k in ("cpr", "new_cpr", "child_cpr", "spouse_cpr")
                           and isinstance(v, str))
    assert len(numbers) > 10_000
    written = (corpus / "decisions.jsonl").read_bytes() + (corpus / "tasks.jsonl").read_bytes()
    digit_runs = set(re.findall(rb"(?<!\d)\d{10}(?!\d)", written))
    assert not {n.encode() for n in numbers} & digit_runs
