"""The ATP poller against the real reference case system over HTTP: events from the § 8
register's differences between rounds, nothing twice across restarts, failures skipped."""

from __future__ import annotations

from pathlib import Path

import orjson

from connectors.atp.run import poll_atp
from connectors.casesystem.server import ReferenceCaseSystem
from tests.world import World, address
from triage.models.events import InvalidEvent, parse_event


def write_files(tmp_path: Path) -> tuple[Path, Path, str]:
    w = World()
    w.person("modtager", address("home"))
    w.case("K1", "kontanthjaelp", "modtager")
    cpr = w.cpr("modtager")
    cases = tmp_path / "cases.jsonl"
    cases.write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in w.cases))
    udk = tmp_path / "udk.jsonl"
    udk.write_bytes(orjson.dumps({"cpr": cpr, "benefits": [
        {"benefit": "sygedagpenge", "amount": 9000.0, "period_from": "2025-02-01",
         "period_to": None}], "income": [
        {"amount": 1200.0, "income_type": "wage", "period": "2025-01"}]}) + b"\n")
    return cases, udk, cpr


def events(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


async def test_poller_emits_differences_once_and_survives_restart(tmp_path):
    cases, udk, cpr = write_files(tmp_path)
    out, state = tmp_path / "atp.jsonl", tmp_path / "state.json"
    async with ReferenceCaseSystem(cases, udk_path=udk) as server:
        first = await poll_atp(server.url, out=out, state_path=state, rounds=1,
                               token=server.token)
        assert sorted(e["type"] for e in events(out)) == ["benefit_started", "income_reported"]
        assert all(not isinstance(parse_event(orjson.dumps(e)), InvalidEvent)
                   for e in events(out))
        again = await poll_atp(server.url, out=out, state_path=state, rounds=1,
                               token=server.token)  # a restart
        assert (first.events, again.events) == (2, 0)
        server.udk[cpr]["benefits"][0]["amount"] = 9500.0  # the register changes
        changed = await poll_atp(server.url, out=out, state_path=state, rounds=1,
                                 token=server.token)
    assert changed.events == 1 and events(out)[-1]["type"] == "benefit_changed"
    # both files hold CPR numbers: private to the user (issue 9 point 8)
    assert oct(out.stat().st_mode & 0o777) == oct(state.stat().st_mode & 0o777) == "0o600"


async def test_a_failing_register_skips_the_person_without_inventing_events(tmp_path):
    cases, udk, _ = write_files(tmp_path)
    out = tmp_path / "atp.jsonl"
    async with ReferenceCaseSystem(cases, udk_path=udk) as server:
        await poll_atp(server.url, out=out, rounds=1, state_path=tmp_path / "s.json",
                       token=server.token)
        server.faults.fail = True
        summary = await poll_atp(server.url, out=out, rounds=1, state_path=tmp_path / "s.json",
                                 token=server.token)
    assert summary.events == 0 and summary.failures >= 1
