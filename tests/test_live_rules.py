"""Operators change the rules of a running worker (issue "Operators tune the rules safely",
points 3-6), on the embedded broker over real HTTP: a shadow ruleset decides beside the active
one without a task; a promote switches live decisions without a restart; a bad file is refused
and the old ruleset keeps deciding; a silence suppresses what it matches and cannot touch a
death; every change is audited; after SIGKILL and a restart the rebuilt worker repeats every
decision exactly; without an operator token the changing endpoints are disabled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from tests.drafts import draft_text
from tests.test_worker import consume, decided, produce, split_by_id, write_reference
from tests.world import T0, World, address
from triage.core import Outputs, Triage
from triage.dev import create_topics, start_worker, stop_process, wait_ready
from triage.rules import DEFAULT_RULES, load_ruleset, parse_ruleset
from triage.snapshot import load_reference
from triage.stream.app import header
from triage.stream.broker import EmbeddedBroker, free_port
from triage.stream.decider import RoutedDecider
from triage.stream.settings import KIND_HEADER

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
TOKEN = "operator-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOME = address("home")


def world() -> World:
    w = World()
    w.person("mor", HOME)
    w.person("far", HOME)
    w.case("C1", "kontanthjaelp", "mor", spouse="far")
    return w


def name_change(w: World, at: float) -> bytes:
    event_id = w.cpr_event("mor", "name_changed", at=at, code="A13")
    return orjson.dumps(next(e for e in w.events if e["event_id"] == event_id))


def decisions_of(bootstrap: str, topic: str, ids: set[str]) -> dict[str, dict]:
    records = asyncio.run(consume(bootstrap, topic, decided(ids)))
    return {d["event_id"]: d for d in (orjson.loads(v) for _, v, _ in records)}


def metric(port: int, line_start: str) -> float:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_shadow_promote_silence_audit_and_a_rebuild_repeat_every_decision(tmp_path):
    w = world()
    write_reference(w, tmp_path)
    strict = draft_text(name="strict", scores={"stamdata": 0.8})  # name changes raised
    (tmp_path / "strict.yaml").write_bytes(strict)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(DEFAULT_RULES.read_bytes())
    settings = {"lateness": "0", "shadow_rules": str(tmp_path / "strict.yaml"),
                "operator_token": TOKEN, "rules": str(rules)}
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker, partitions=3)
        worker = start_worker(broker.bootstrap, tmp_path, port, 3, **settings)
        try:
            wait_ready(f"{base}/ready", worker, log=tmp_path / "worker.log")
            default = httpx.get(f"{base}/ready").json()["ruleset"]

            # shadow: the real decision suppresses, the shadow's raises, no task
            first = name_change(w, at=1)
            asyncio.run(produce(broker.bootstrap, [first], complete=False))
            real = decisions_of(broker.bootstrap, "triage.decisions", {"e1"})["e1"]
            shadowed = decisions_of(broker.bootstrap, "triage.shadow", {"e1"})["e1"]
            assert (real["outcome"], real["ruleset"]) == ("suppressed", default)
            assert shadowed["outcome"] == "raised" and shadowed["ruleset"].startswith("strict@")
            assert shadowed["cases"][0]["task_id"] is None
            assert metric(port, 'triage_shadow_decisions_total{transition="suppressed->raised"}'
                          ) == 1.0

            # promote: refused without the token and for a bad file; the old ruleset stays
            assert httpx.post(f"{base}/api/rules/promote", content=strict).status_code == 401
            bad = tmp_path / "bad.yaml"
            bad.write_bytes(b"ruleset: bad\nthreshold: 0.5\nrules:\n  - id: x\n")
            refused = subprocess.run(
                [sys.executable, "-m", "triage.cli", "rules", "promote", str(bad), "--url", base],
                env={**os.environ, "TRIAGE_OPERATOR_TOKEN": TOKEN}, capture_output=True,
                text=True, timeout=60, check=False)
            assert refused.returncode == 1, refused.stderr
            problems = refused.stderr.splitlines()
            assert problems[0].startswith("triage: bad.yaml:") and "HTTP 422" in problems[-1]
            asyncio.run(produce(broker.bootstrap, [name_change(w, at=2)], complete=False))
            assert decisions_of(broker.bootstrap, "triage.decisions", {"e2"})["e2"][
                "ruleset"] == default
            promoted = httpx.post(f"{base}/api/rules/promote?file=strict.yaml", headers=AUTH,
                                  content=strict)
            assert promoted.status_code == 200, promoted.text
            assert "1 changed (stamdata: score 0.0→0.8)" in promoted.json()["summary"]
            asyncio.run(produce(broker.bootstrap, [name_change(w, at=3)], complete=False))
            third = decisions_of(broker.bootstrap, "triage.decisions", {"e3"})["e3"]
            assert (third["outcome"], third["ruleset"]) == ("raised", promoted.json()["to"])

            # silences: a name change is silenced for a day; a death rule cannot be
            silence = {"id": "navne", "matchers": {"event.type": "name_changed"},
                       "author": "drift", "comment": "navneændringer fra en fejlkørsel",
                       "starts_at": (T0 + timedelta(hours=3)).isoformat(),
                       "ends_at": (T0 + timedelta(hours=27)).isoformat()}
            added = httpx.post(f"{base}/api/silences", headers=AUTH, json=silence)
            assert added.status_code == 200, added.text
            death = {**silence, "id": "doed", "matchers": {"event.type": "died"}}
            refused = httpx.post(f"{base}/api/silences", headers=AUTH, json=death)
            assert refused.status_code == 422
            asyncio.run(produce(broker.bootstrap, [name_change(w, at=4)], complete=False))
            fourth = decisions_of(broker.bootstrap, "triage.decisions", {"e4"})["e4"]
            assert (fourth["outcome"], fourth["rule"]) == ("suppressed", "silenced:navne")
            listed = httpx.get(f"{base}/api/silences").json()["silences"]
            assert [(s["id"], s["state"]) for s in listed] == [("navne", "active")]
            assert httpx.delete(f"{base}/api/silences/navne", headers=AUTH).status_code == 200
            asyncio.run(produce(broker.bootstrap, [name_change(w, at=5)], complete=False))
            fifth = decisions_of(broker.bootstrap, "triage.decisions", {"e5"})["e5"]
            assert (fifth["outcome"], fifth["rule"]) == ("raised", "stamdata")
            tasks = asyncio.run(consume(broker.bootstrap, "triage.tasks",
                                        lambda r: len(r) >= 2))
            assert sorted(orjson.loads(v)["event_ids"][0] for _, v, _ in tasks) == ["e3", "e5"]

            # the audit trail: every change, accepted or not, with versions
            audit = audit_trail(broker.bootstrap, 6)
            assert [(a["action"], a["result"]) for a in audit] == [
                ("shadow", "accepted"), ("promote", "rejected"), ("promote", "accepted"),
                ("silence", "accepted"), ("silence", "rejected"),
                ("silence-expire", "accepted")]
            assert audit[2]["from"] == default and audit[2]["to"] == promoted.json()["to"]
            assert TOKEN not in (tmp_path / "worker.log").read_text()

            # SIGKILL and restart without a token: rebuilt from the journal, every decision
            # repeated identically; the changing endpoints are disabled
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            worker = start_worker(broker.bootstrap, tmp_path, port, 3, lateness="0",
                                  rules=str(rules))
            wait_ready(f"{base}/ready", worker, log=tmp_path / "worker.log")
            assert httpx.get(f"{base}/ready").json()["ruleset"] == promoted.json()["to"]
            assert httpx.post(f"{base}/api/rules/promote", headers=AUTH,
                              content=strict).status_code == 403
            asyncio.run(produce(broker.bootstrap, [name_change(w, at=6)], complete=False))
            asyncio.run(consume(broker.bootstrap, "triage.decisions", decided({"e6"})))

            # SIGHUP re-reads TRIAGE_RULES, as POST /api/rules/reload does
            stricter = draft_text(name="stricter", scores={"stamdata": 0.9})
            rules.write_bytes(stricter)
            os.kill(worker.pid, signal.SIGHUP)
            version = parse_ruleset(stricter).version
            wait_for_ruleset(base, version)
            asyncio.run(produce(broker.bootstrap, [name_change(w, at=7)], complete=False))
            records = asyncio.run(consume(broker.bootstrap, "triage.decisions",
                                          decided({"e7"})))
            audit = audit_trail(broker.bootstrap, 8)
            # the restart without TRIAGE_SHADOW_RULES ended the shadow; SIGHUP reloaded
            assert [(a["action"], a["who"], a["to"]) for a in audit[6:]] == [
                ("shadow", "TRIAGE_SHADOW_RULES", None), ("reload", "SIGHUP", version)]
            journal = asyncio.run(consume(broker.bootstrap, "triage.routed",
                                          lambda r: any(b'"e7"' in v for _, v, _ in r)))
        finally:
            stop_process(worker)
    decisions = [orjson.loads(v) for _, v, _ in records]
    for d in decisions:
        d.pop("decided_at")
    by_id, _ = split_by_id(decisions)  # any repeat after the rebuild is identical
    assert (by_id["e6"]["outcome"], by_id["e6"]["ruleset"]) == ("raised", promoted.json()["to"])
    assert (by_id["e7"]["score"], by_id["e7"]["ruleset"]) == (0.9, version)
    # one core: the journal (control records included) through a fresh decider decides
    # every event exactly as the worker did
    assert replayed(tmp_path, journal) == by_id


def audit_trail(bootstrap: str, count: int) -> list[dict]:
    """The audit records in the order they were made (the topic is keyed by ruleset name, so
    its partitions interleave in any order)."""
    records = asyncio.run(consume(bootstrap, "triage.audit", lambda r: len(r) >= count))
    return sorted((orjson.loads(v) for _, v, _ in records), key=lambda a: a["at"])


def wait_for_ruleset(base: str, version: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while httpx.get(f"{base}/ready").json()["ruleset"] != version:
        assert time.monotonic() < deadline, "SIGHUP did not reload the rule file"
        time.sleep(0.2)


def replayed(folder: Path, journal: list[tuple[bytes | None, bytes, object]]) -> dict[str, dict]:
    decider = RoutedDecider(Triage(load_reference(folder / "persons.jsonl",
                                                  folder / "cases.jsonl"),
                                   load_ruleset(DEFAULT_RULES)), lateness=timedelta(0))
    out = Outputs()
    for offset, (_, value, headers) in enumerate(journal):
        step = decider.apply(offset, value, header(headers, KIND_HEADER))
        if step is not None:
            out.extend(step)
    decisions = [orjson.loads(d.to_json()) for d in out.decisions]
    for d in decisions:
        d.pop("decided_at")
    return split_by_id(decisions)[0]
