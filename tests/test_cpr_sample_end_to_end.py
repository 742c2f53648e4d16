"""End to end with real registry data: the CPR office's test extract ingested into the embedded
broker (`triage ingest cpr-extract --kafka`), decided by `triage worker` with the reference case
system; the persons snapshot built from the same extract (`triage snapshot cpr-extract`). No
`died` for a living person reaches a task."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.test_end_to_end import TOKEN, received_tasks, serve_casesystem, wait_for
from tests.test_worker import consume
from triage.dev import create_topics, start_worker, stop_process, wait_ready
from triage.stream.broker import EmbeddedBroker, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SAMPLE = Path(__file__).parent / "fixtures" / "cpr" / "U12170-P opgavenr 110901 ADRNVN FE"
ANNULLED, ANNULLED_TOO, DEAD = "1303814074", "2906980013", "0708614327"


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triage.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


def case(case_id: str, benefit: str, applicant: str) -> bytes:
    return orjson.dumps({"case_id": case_id, "benefit": benefit, "municipality_code": "0851",
                         "unit": "jobcenter", "members": [{"cpr": applicant,
                                                           "role": "applicant"}]}) + b"\n"


def test_the_cpr_office_extract_through_broker_worker_and_case_system(tmp_path: Path) -> None:
    snapshot = cli("snapshot", "cpr-extract", SAMPLE, "--out", tmp_path / "persons.jsonl")
    assert snapshot.returncode == 0, snapshot.stderr
    (tmp_path / "cases.jsonl").write_bytes(
        case("K1", "kontanthjaelp", ANNULLED) + case("K2", "kontanthjaelp", DEAD)
        + case("K3", "sygedagpenge", ANNULLED_TOO))
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker, partitions=3)
        cs_port, web_port = free_port(), free_port()
        server = serve_casesystem(tmp_path / "cases.jsonl", cs_port, tmp_path / "received.sqlite")
        worker = None
        try:
            worker = start_worker(broker.bootstrap, tmp_path, web_port, 3,
                                  casesystem_url=f"http://127.0.0.1:{cs_port}",
                                  casesystem_token=TOKEN)
            wait_ready(f"http://127.0.0.1:{web_port}/ready", worker)
            ingest = cli("ingest", "cpr-extract", SAMPLE, "--kafka", broker.bootstrap)
            assert ingest.returncode == 0, ingest.stderr
            assert "events: 114" in ingest.stderr
            records = asyncio.run(consume(broker.bootstrap, "triage.decisions",
                                          lambda r: len(r) >= 114))
            raised = {c["case_id"] for v in (orjson.loads(r[1]) for r in records)
                      for c in v["cases"] if c["outcome"] == "raised" and c.get("task_id")}
            tasks = wait_for(lambda: (t := received_tasks(cs_port))
                             and {x["case_id"] for x in t} >= raised and t, timeout=120)
        finally:
            if worker is not None:
                stop_process(worker)
            stop_process(server)
    rules: dict[str, set[tuple[str, bool]]] = {}
    for task in tasks:
        rules.setdefault(task["case_id"], set()).add((task["rule"], task["payment_hold"]))
    assert ("doedsfald-annulleret", False) in rules["K1"]
    assert ("doedsfald-annulleret", False) in rules["K3"]
    assert ("doedsfald-modtager", True) in rules["K2"]
    # the living applicants get no death task (their household's unmapped codes are raised
    # as unclassified, as they must be)
    for living in ("K1", "K3"):
        assert {r for r, _ in rules[living]} <= {"doedsfald-annulleret", "unclassified"}
    decisions = [orjson.loads(v) for _, v, _ in records]
    assert len({d["event_id"] for d in decisions}) == 114
    assert not [d for d in decisions if d["outcome"] == "invalid"]
