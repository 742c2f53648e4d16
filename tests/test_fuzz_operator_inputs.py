"""Poison inputs from operators and other systems never crash the worker or a web handler.

What an operator or another system sends — control records, silences, the checkpoints a
restarting worker reads back, the records the decision log reads, HTTP request bodies, query
strings and headers on the worker's port and on the reference case system — gets one of its
documented outcomes: a clear error (a 4xx with a message, :class:`SilenceError`,
:class:`CheckpointRefused`, :class:`UnusableRecord`, a :class:`CaseSystemError`), or it is
used. Never an uncaught exception, never a 500, never a batch stuck behind one record; a
corrupt journal record stops loudly instead of being skipped. No error shows a CPR number in
clear.

The worker's page and operator endpoints are served in this process by a real faust app's
aiohttp application (the handlers ``triage/web`` and ``triage/stream/operator.py`` install)
over real HTTP on loopback, with a stand-in for the worker around one live decider; the
reference case system runs on the same background event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
from collections.abc import Coroutine, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.casesystem import CaseSystemClient, CaseSystemError, ReferenceCaseSystem
from tests.world import T0, World, address
from triage.control import (
    EXPIRE,
    RULESET,
    SHADOW,
    SILENCE,
    apply_control,
    check_silence,
    expire_record,
    silence_record,
)
from triage.decisionlog.records import UnusableRecord, decision_row, task_row, utc_text
from triage.decisionlog.store import SQLITE, DecisionLog
from triage.facts import CATALOGUE
from triage.rules import DEFAULT_RULES, RulesetError
from triage.silences import SilenceError, parse_silence
from triage.stream.checkpoint import CheckpointRefused, CheckpointStore, record_digest
from triage.stream.decider import RoutedDecider

CPR = "0101901234"
CPR_IN_CLEAR = re.compile(r"(?<!\d)\d{10}(?!\d)")
OPERATOR = "operator-token-0123456789abcdef"
VIEWER = "viewer-token-0123456789abcdef"
CASES_TOKEN = "casesystem-token-0123456789abcdef"
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
                    | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=12) | st.just(CPR),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
TIMES = st.one_of(JSON, st.datetimes(timezones=st.none() | st.timezones()).map(
    lambda d: d.isoformat()), st.sampled_from(["9999-12-31T23:59:59-14:00",
                                               "0001-01-01T00:00:00+14:00", "2025-03-01"]))
FACTS = st.sampled_from([*CATALOGUE, "rule", "event.nope", CPR])
CONDITIONS = st.one_of(
    JSON, st.lists(st.none() | st.text(max_size=6) | st.integers(-2**63, 2**63 - 1)
                   | st.booleans(), max_size=3),
    st.dictionaries(st.sampled_from(["eq", "ne", "in", "not_in", "gt", "ge", "lt", "le", "x"]),
                    JSON | st.lists(st.none() | st.text(max_size=6) | st.floats(
                        allow_nan=False), max_size=3), min_size=1, max_size=2),
    st.sampled_from(["address_renamed", "jobcenter", "dar-adresse-nedlagt"]))
SILENCE_FIELDS = st.fixed_dictionaries(
    {}, optional={"id": st.one_of(JSON, st.from_regex(r"[a-z0-9][a-z0-9-]{0,5}\n?",
                                                      fullmatch=True)),
                  "matchers": JSON | st.dictionaries(FACTS, CONDITIONS, max_size=3),
                  "author": JSON, "comment": JSON | st.just(f"om {CPR}"),
                  "starts_at": TIMES, "ends_at": TIMES, CPR: JSON})

VALID_SILENCE = {"id": "navne", "author": "drift", "comment": "kendt fejl",
                 "starts_at": "2025-03-01T00:00:00+01:00", "ends_at": "2025-03-02T00:00:00+01:00"}
SILENCES = st.one_of(
    SILENCE_FIELDS,
    # a valid silence of name changes, with extra matchers and a field or two of any JSON
    st.builds(lambda extra, changes: {**VALID_SILENCE, "id": "n", **changes,
                                      "matchers": {"event.type": "name_changed", **extra}},
              st.dictionaries(FACTS, CONDITIONS, max_size=2),
              st.dictionaries(st.sampled_from(sorted(VALID_SILENCE)), TIMES, max_size=1)))


def world() -> World:
    w = World()
    w.person("mor", address("home"))
    w.person("far", address("home"))
    w.case("C1", "kontanthjaelp", "mor", spouse="far")
    w.move("mor", address("new"), at=0)
    return w


WORLD = world()


def a_silence(**changes: Any) -> dict[str, Any]:
    return {"id": "navne", "matchers": {"event.type": "name_changed"}, "author": "drift",
            "comment": "kendt fejl", "starts_at": T0.isoformat(),
            "ends_at": (T0 + timedelta(days=1)).isoformat(), **changes}


def no_cpr(*texts: str) -> None:
    for text in texts:
        assert not CPR_IN_CLEAR.search(text), text


# --- control records and silences --------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=SILENCES)
def test_a_silence_of_any_shape_is_refused_with_reasons_or_journals_and_applies(data):
    """Operator JSON becomes a silence or a :class:`SilenceError` whose every problem is a line
    without a CPR number in clear; an accepted silence's journal record applies to a fresh core
    and reads back as the same silence (a rebuild applies it the same)."""
    core = WORLD.triage()
    try:
        silence = check_silence(core, data)
    except SilenceError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        no_cpr(*exc.problems)
        return
    no_cpr(silence.author, silence.comment)
    _, value = silence_record(silence)
    fresh = WORLD.triage()
    apply_control(fresh, SILENCE, value)
    assert fresh.silences.get(silence.id) == silence
    assert parse_silence(orjson.loads(value)) == silence


@pytest.mark.parametrize("matchers", [
    {"event.type": "address_renamed", "case.unit": ["jobcenter", None]},
    {"event.type": "address_renamed", "income.amount": {"not_in": [None, 100]}},
])
def test_a_list_condition_with_null_in_it_is_a_silence_not_a_crash(matchers):
    """``sorted(["jobcenter", None])`` raised TypeError when the silence was journalled
    (``to_dict``): a 500 on ``POST /api/silences``."""
    silence = check_silence(WORLD.triage(), a_silence(matchers=matchers))
    again = parse_silence(orjson.loads(silence_record(silence)[1]))
    assert again == silence and None in again.matchers[1].value


def test_a_rule_list_with_null_in_it_is_refused_not_a_crash():
    """The refusal sorted the unknown rule ids, None among them: TypeError, a 500."""
    with pytest.raises(SilenceError) as refused:
        check_silence(WORLD.triage(), a_silence(matchers={"rule": ["no-such-rule", None]}))
    assert "rule no-such-rule is not in ruleset" in str(refused.value)


def test_a_silence_id_with_a_trailing_newline_is_refused():
    """``_ID.match`` with ``$`` let ``"navne\\n"`` through."""
    with pytest.raises(SilenceError) as refused:
        parse_silence(a_silence(id="navne\n"))
    assert refused.value.problems == ["id: lower-case letters, digits and '-', at most 64"]


def test_what_a_refused_silence_quotes_back_never_shows_a_cpr_number():
    with pytest.raises(SilenceError) as refused:
        parse_silence(a_silence(**{CPR: 1}, matchers={"case.benefit": CPR, CPR: "x"}))
    text = "; ".join(refused.value.problems)
    assert "unknown key" in text and "unknown fact" in text and "not a valid enum" in text
    assert "010190-****" in text
    no_cpr(text, str(refused.value))


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from([RULESET, SHADOW, SILENCE, EXPIRE]),
       value=st.binary(max_size=40) | JSON.map(orjson.dumps)
       | st.fixed_dictionaries({}, optional={"id": JSON | st.just("navne"),
                                             "at": TIMES}).map(orjson.dumps))
def test_a_corrupt_control_record_is_applied_or_stops_loudly(kind, value):
    """A journalled control record is applied or raises (the worker stops loudly): its
    outcome is never "nothing happened" for an expire that names no silence or no time."""
    core = WORLD.triage()
    core.silences.add(parse_silence(a_silence()), core.ruleset)
    before = core.silences.get("navne")
    try:
        apply_control(core, kind, value)
    except (ValueError, RulesetError, KeyError, TypeError, AttributeError):
        return
    if kind == EXPIRE:
        data = orjson.loads(value)
        assert isinstance(data, dict) and {"id", "at"} <= set(data)
        after = core.silences.get("navne")
        assert data["id"] != "navne" or (after is not None and after.ends_at <= max(
            datetime.fromisoformat(data["at"]), before.starts_at))


@pytest.mark.parametrize("value", [{"at": T0.isoformat()}, {"id": "navne"}])
def test_an_expire_record_without_its_id_or_time_stops_the_rebuild(value):
    """The ``suppress(KeyError)`` meant for a silence already forgotten also swallowed a
    record's missing keys: the silence stayed active and the worker went on as if applied."""
    core = WORLD.triage()
    core.silences.add(parse_silence(a_silence()), core.ruleset)
    with pytest.raises(KeyError):
        apply_control(core, EXPIRE, orjson.dumps(value))
    # a well-formed expire of a silence forgotten after its grace is still no error
    apply_control(core, EXPIRE, expire_record("forgotten", T0)[1])


# --- checkpoints ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[CheckpointStore, bytes]:
    directory = tmp_path_factory.mktemp("checkpoints")
    store = CheckpointStore(directory, {"ruleset": "default@x"})
    decider = RoutedDecider(WORLD.triage())
    for offset, line in enumerate(WORLD.lines()):
        decider.apply(offset, line, None)
    path = store.write(0, decider.next_offset, decider, record_digest(b"x", None))
    return store, path.read_bytes()


def _damaged(original: bytes, cuts: list[tuple[int, bytes]], truncate: int | None) -> bytes:
    data = bytearray(original)
    for at, replacement in cuts:
        position = at % (len(data) or 1)
        data[position:position + len(replacement)] = replacement
    return bytes(data[:truncate] if truncate is not None else data)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=3)),
                     max_size=3),
       truncate=st.none() | st.integers(0, 400))
def test_a_damaged_or_truncated_checkpoint_is_refused_never_a_crash(checkpoint, cuts, truncate):
    """Any damage is :class:`CheckpointRefused` (the worker then tries an older one, or the
    journal): never another exception, never a decider unpickled from damaged bytes."""
    store, original = checkpoint
    data = _damaged(original, cuts, truncate)
    found = next(store.found(0))
    found.path.write_bytes(data)
    try:
        decider, digest = store.load(found)
    except CheckpointRefused as refused:
        assert refused.reason in ("damaged", "incompatible")
        assert data != original
    else:  # used only when what it holds is exactly what was written
        assert data == original and decider.next_offset == found.offset
        assert digest == record_digest(b"x", None)
    finally:
        found.path.write_bytes(original)


def test_a_checkpoint_whose_mac_line_is_not_ascii_is_refused(checkpoint):
    """``compare_digest`` of text raises TypeError on non-ASCII, which escaped
    ``_from_checkpoint`` (it catches CheckpointRefused): a damaged file crashed the start."""
    store, original = checkpoint
    header, mac, state = original.split(b"\n", 2)
    path = store.directory / "p0-000000000099.ckpt"
    path.write_bytes(header + b"\n" + b"\xff" + mac[1:] + b"\n" + state)
    try:
        with pytest.raises(CheckpointRefused) as refused:
            store.load(next(store.found(0, upto=99)))
        assert refused.value.reason == "damaged"
    finally:
        path.unlink()
    decider, _ = store.load(next(store.found(0)))  # the intact one still loads
    assert decider.next_offset == len(WORLD.lines())


# --- the decision log's readers ----------------------------------------------------------

DECISION_FIELDS = ("event_id", "outcome", "rule", "event_source", "event_type", "ruleset",
                   "correlation_id", "decided_at", "registered_at", "reason", "error")
CASE = st.fixed_dictionaries({}, optional={k: JSON | st.text(min_size=1, max_size=5)
                                           for k in ("case_id", "outcome", "rule", "unit",
                                                     "task_id", "reason")})
DECISION = st.fixed_dictionaries(
    {"outcome": st.sampled_from(["raised", "suppressed", "invalid"]) | JSON},
    optional={**{k: JSON | st.text(min_size=1, max_size=8) for k in DECISION_FIELDS[:1]
                 + DECISION_FIELDS[2:]}, "cases": JSON | st.lists(CASE | JSON, max_size=3)})
TASK = st.fixed_dictionaries(
    {}, optional={**{k: JSON | st.text(min_size=1, max_size=8)
                     for k in ("task_id", "case_id", "rule", "unit", "created_at")},
                  "facts": JSON})


def memory_log() -> DecisionLog:
    return DecisionLog(sqlite3.connect(":memory:"), SQLITE)


@settings(max_examples=200, deadline=None)
@given(decision=DECISION, task=TASK, junk=st.binary(max_size=20))
def test_a_decision_or_task_record_of_any_shape_is_stored_or_unusable(decision, task, junk):
    """A record is :class:`UnusableRecord`, or a row the log stores and reads back: one record
    can never fail the write of its whole batch (the feed retried that batch forever)."""
    log = memory_log()
    rows, tasks = [], []
    for raw in (orjson.dumps(decision), junk):
        with contextlib.suppress(UnusableRecord):
            rows.append(decision_row(raw))
    for raw in (orjson.dumps(task), junk):
        with contextlib.suppress(UnusableRecord):
            tasks.append(task_row(raw))
    log.write(rows, tasks)
    for row in rows:
        shown = log.show(row.key)
        assert shown is not None and isinstance(shown["tasks"], list)
        stored = shown["decision"]  # free texts are masked (ids and the rest kept as sent)
        cases = stored.get("cases") if isinstance(stored.get("cases"), list) else []
        for record in (stored, *(c for c in cases if isinstance(c, dict))):
            no_cpr(*(record[k] for k in ("reason", "title", "error")
                     if isinstance(record.get(k), str)))
        for verdict in row.verdicts:
            assert log.case(verdict.case_id)["decisions"]
    log.totals()
    for column in ("rule", "event_type", "unit", "ruleset", "event_source"):
        log.breakdown(column)
    log.series("registered_at", "hour")
    log.close()


@pytest.mark.parametrize("record", [
    {"outcome": "raised", "event_id": ["e1"]},
    {"outcome": "raised", "event_id": "e1", "ruleset": {"v": 1}},
    {"outcome": "raised", "event_id": "e1", "cases": [{"case_id": "C1", "unit": ["a"]}]},
])
def test_a_decision_with_a_list_where_text_belongs_is_unusable_not_a_stuck_write(record):
    with pytest.raises(UnusableRecord):
        decision_row(orjson.dumps(record))
    good = decision_row(orjson.dumps({"outcome": "raised", "event_id": "ok"}))
    assert memory_log().write([good]) == 1


def test_a_task_whose_id_is_not_text_is_unusable():
    with pytest.raises(UnusableRecord):
        task_row(orjson.dumps({"task_id": 7, "case_id": "C1"}))


def test_a_timestamp_that_is_not_text_is_unreadable_not_a_type_error():
    assert utc_text(5) is None and utc_text(["2025-01-01"]) is None
    row = decision_row(orjson.dumps({"outcome": "raised", "event_id": "e", "decided_at": 5,
                                     "registered_at": {"at": 1}}))
    assert row.registered_at is None and row.decided_at.endswith("Z")


@pytest.mark.parametrize("cases", [None, 5, [1, "x"]])
def test_the_explorer_shows_a_stored_decision_whatever_its_cases_hold(cases):
    log = memory_log()
    log.write([decision_row(orjson.dumps({"outcome": "raised", "event_id": "e",
                                          "cases": cases}))])
    assert log.show("e") == {"decision": {"outcome": "raised", "event_id": "e",
                                          "cases": cases}, "tasks": []}


# --- the worker's HTTP port and the reference case system, in this process -----------------


class Served:
    """An event loop in a thread, serving the worker's page and operator endpoints and the
    reference case system; tests talk to them over loopback."""

    def __init__(self, directory: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.directory = directory
        self.journal: list[tuple[list[tuple[str, bytes]], bytes]] = []
        self.audits: list[dict[str, Any]] = []

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    async def start(self) -> None:
        import faust
        from aiohttp import web

        from triage.decisionlog.service import AsyncLog
        from triage.stream.metrics import WorkerMetrics
        from triage.stream.operator import install as install_operator
        from triage.web import install as install_web
        from triage.web_limits import HttpLimits, faust_web_options

        self.core = WORLD.triage()
        self.core.silences.add(parse_silence(a_silence()), self.core.ruleset)

        async def journal(record: tuple[list[tuple[str, bytes]], bytes]) -> None:
            self.journal.append(record)

        async def audit(value: bytes, key: bytes) -> None:
            self.audits.append(orjson.loads(value))

        log_url = f"sqlite:///{self.directory / 'decisions.sqlite3'}"
        self.log = AsyncLog(log_url)
        await self.log.call(lambda log: log.write([decision_row(orjson.dumps(
            {"outcome": "raised", "event_id": "e1", "rule": "r",
             "cases": [{"case_id": "C1", "outcome": "raised", "rule": "r"}]}))]))
        feed = SimpleNamespace(store=self.log, last_write=None, written=1, error=None,
                               lag=dict)
        worker = SimpleNamespace(
            settings=SimpleNamespace(operator_secret=lambda: OPERATOR,
                                     viewer_token=SecretStr(VIEWER), web_host="127.0.0.1",
                                     rules=DEFAULT_RULES),
            metrics=WorkerMetrics(), deciders={0: RoutedDecider(self.core)}, ready=True,
            journal=journal, audit=audit, ruleset=self.core.ruleset, decision_log=feed)
        app = faust.App("fuzz-operator-inputs", web_enabled=True,
                        **faust_web_options(HttpLimits()))
        install_operator(app, worker)
        install_web(app, worker)
        self.runner = web.AppRunner(app.web.web_app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.worker_url = f"http://127.0.0.1:{port}"
        cases = self.directory / "cases.jsonl"
        cases.write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in WORLD.cases))
        self.cases = ReferenceCaseSystem(cases, token=CASES_TOKEN)
        await self.cases.start()

    async def stop(self) -> None:
        await self.cases.stop()
        self.cases.close()
        await self.runner.cleanup()
        await self.log.aclose()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("served"))
    server.run(server.start())
    try:
        yield server
    finally:
        server.run(server.stop())
        server.close()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def answered(response: httpx.Response, allowed: set[int]) -> None:
    """A documented status, with a message in JSON when it is an error of the API."""
    assert response.status_code in allowed, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        no_cpr(response.text)  # an error never shows one (an answer's data may)
    if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
        body = response.json()
        message = body.get("errors") or body.get("error") or body.get("detail")
        assert message, body


OP = {"Authorization": f"Bearer {OPERATOR}"}
SEEN = {"Authorization": f"Bearer {VIEWER}"}
SENDABLE = re.compile(rb"[\x21-\x7e\x80-\xff]([\x20\x09\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?")
RAW_HEADER = st.binary(min_size=1, max_size=30).filter(SENDABLE.fullmatch)
"""Header value bytes a client can send (h11's field-value), UTF-8 or not."""


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=60), JSON.map(orjson.dumps),
                      SILENCES.map(orjson.dumps)))
def test_any_silence_body_is_answered_with_a_reason_or_journalled(served, http, body):
    """``POST /api/silences``: 200 and a journal record that applies to a fresh core, or
    400 / 422 with the reasons; never a 500."""
    before = len(served.journal)
    response = http.post(f"{served.worker_url}/api/silences", headers=OP, content=body)
    answered(response, {200, 400, 422})
    if response.status_code == 200:
        _, value = served.journal[before]
        fresh = WORLD.triage()
        apply_control(fresh, SILENCE, value)
        assert fresh.silences.get(response.json()["id"]) is not None
    else:
        assert len(served.journal) == before


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
       name=st.text(max_size=300))
def test_any_promoted_rule_file_is_journalled_or_refused(served, http, body, name):
    response = http.post(f"{served.worker_url}/api/rules/promote", headers=OP, content=body,
                         params={"file": name})
    answered(response, {200, 422})


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(silence_id=st.text(min_size=1, max_size=120).filter(lambda s: "/" not in s))
def test_ending_a_silence_that_does_not_exist_is_a_404(served, http, silence_id):
    from urllib.parse import quote

    response = http.delete(f"{served.worker_url}/api/silences/{quote(silence_id, safe='')}",
                           headers=OP)
    answered(response, {200, 404})


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=RAW_HEADER, cookie=RAW_HEADER.filter(lambda b: b";" not in b))
def test_any_credentials_are_accepted_or_refused_never_a_500(served, http, value, cookie):
    """Header bytes that are not UTF-8 reach the handlers as surrogate escapes; comparing
    them with the token raised UnicodeEncodeError (a 500 instead of a 401)."""
    base = served.worker_url
    for headers in ({"Authorization": b"Bearer " + value}, {"Authorization": value},
                    {"Cookie": b"triage_viewer=" + cookie}):
        answered(http.get(f"{base}/api/summary", headers=headers), {401})
        answered(http.post(f"{base}/api/silences", headers=headers, content=b"{}"), {401})
    answered(http.get(f"{base}/api/silences", headers={"Authorization": b"Bearer " + value}),
             {401})
    answered(http.post(f"{base}/login", content=b"token=" + value,
                       headers={"Content-Type": "application/x-www-form-urlencoded"}),
             {400, 401})


@pytest.mark.parametrize("headers", [{"Authorization": b"Bearer \xff"},
                                     {"Cookie": b"triage_viewer=\xff\xfe"}])
def test_credentials_that_are_not_utf8_are_refused_with_401(served, http, headers):
    base = served.worker_url
    assert http.get(f"{base}/api/summary", headers=headers).status_code == 401
    assert http.get(f"{base}/api/case?id=C1", headers=headers).status_code == 401
    refused = http.post(f"{base}/api/silences", headers=headers, content=b"{}")
    if "Authorization" in headers:
        assert refused.status_code == 401
        assert refused.json() == {"errors": ["the operator token is required"]}


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=80),
       content_type=st.sampled_from(["application/x-www-form-urlencoded",
                                     "multipart/form-data", "multipart/form-data; boundary=zz",
                                     "text/plain", "application/x-www-form-urlencoded; "
                                     "charset=latin-1"]))
def test_any_login_form_is_a_login_or_a_refusal(served, http, body, content_type):
    response = http.post(f"{served.worker_url}/login", content=body,
                         headers={"Content-Type": content_type})
    answered(response, {303, 400, 401})


@pytest.mark.parametrize(("body", "content_type"), [
    (b"token=\xff", "application/x-www-form-urlencoded"),
    (b"garbage", "multipart/form-data; boundary=zz"),
    (b"garbage", "multipart/form-data"),
])
def test_a_login_form_that_cannot_be_read_is_a_400_page(served, http, body, content_type):
    response = http.post(f"{served.worker_url}/login", content=body,
                         headers={"Content-Type": content_type})
    assert response.status_code == 400 and "triage_viewer" not in response.headers.get(
        "set-cookie", "")
    assert response.headers["content-type"].startswith("text/html")


QUERY = st.dictionaries(st.sampled_from(["id", "clock", "bucket", "last", "name", "x"]),
                        st.text(max_size=40) | st.sampled_from(
                            ["hour", "day", "registered_at", "decided_at", "series", "rule",
                             "type", "unit", "9" * 5000, "²", "-1", " 5 ", "e1", "C1"]),
                        max_size=4)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERY)
def test_any_query_string_on_the_dashboard_api_is_answered(served, http, query):
    for path in ("/api/series", "/api/chart", "/api/event", "/api/case", "/api/summary"):
        answered(http.get(served.worker_url + path, params=query, headers=SEEN),
                 {200, 400, 404})


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.sampled_from(["limit", "page_token", "x"]),
                             st.text(max_size=8) | st.sampled_from(
                                 ["9" * 5000, "²", "١٠", "0", "1000", "1001", "00"]),
                             max_size=2),
       auth=RAW_HEADER)
def test_any_query_string_or_credentials_on_the_case_system_are_answered(served, http, query,
                                                                         auth):
    base = served.cases.url
    bearer = {"Authorization": f"Bearer {CASES_TOKEN}"}
    for path in ("/v1/cases", "/v1/tasks"):
        answered(http.get(base + path, params=query, headers=bearer), {200, 400})
    answered(http.get(f"{base}/v1/cases", headers={"Authorization": b"Bearer " + auth}),
             {401})


@pytest.mark.parametrize("query", ["limit=%C2%B2", "page_token=%C2%B2",
                                   "limit=" + "9" * 5000, "page_token=" + "9" * 5000])
def test_a_page_parameter_int_cannot_read_is_a_400(served, http, query):
    """``str.isdigit`` accepts "²" and 5,000 nines; ``int()`` refused both: a 500."""
    for path in ("/v1/cases", "/v1/tasks"):
        response = http.get(f"{served.cases.url}{path}?{query}",
                            headers={"Authorization": f"Bearer {CASES_TOKEN}"})
        assert response.status_code == 400, response.text
        assert response.json()["detail"].split(":")[0] in ("limit", "page_token")


def test_a_case_system_token_that_is_not_utf8_is_a_401(served, http):
    response = http.get(f"{served.cases.url}/v1/cases",
                        headers={"Authorization": b"Bearer \xff\xfe"})
    assert response.status_code == 401 and response.json()["title"] == "Unauthorized"


TASK_BODY = st.fixed_dictionaries(
    {}, optional={k: JSON | st.text(max_size=8) for k in (
        "task_id", "case_id", "unit", "benefit", "title", "reason", "rule", "score",
        "payment_hold", "event_ids", "facts", "created_at")})


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=60), JSON.map(orjson.dumps),
                      TASK_BODY.map(orjson.dumps),
                      st.fixed_dictionaries({"cpr": JSON | st.just(CPR)}).map(orjson.dumps)),
       task_id=st.text(min_size=1, max_size=20),
       content_type=st.sampled_from(["application/json", "application/problem+json",
                                     "text/plain"]))
def test_any_body_on_the_case_system_is_answered_with_a_problem_or_used(served, http, body,
                                                                         task_id, content_type):
    from urllib.parse import quote

    base = served.cases.url
    headers = {"Authorization": f"Bearer {CASES_TOKEN}", "Content-Type": content_type}
    for method, path in (("POST", "/v1/cases/lookup"), ("POST", "/v1/udk/persons/lookup"),
                         ("PUT", f"/v1/tasks/{quote(task_id, safe='')}")):
        answered(http.request(method, base + path, content=body, headers=headers),
                 {200, 201, 400, 404, 409, 415, 422})


# --- the case-system client against any answer ----------------------------------------------


@settings(max_examples=150, deadline=None)
@given(status=st.sampled_from([200, 201, 204, 302, 400, 404, 409, 422, 429, 500]),
       body=st.one_of(st.binary(max_size=40), JSON.map(orjson.dumps),
                      st.fixed_dictionaries({}, optional={
                          "cases": JSON | st.lists(JSON, max_size=2),
                          "next_page_token": JSON, "benefits": JSON,
                          "detail": JSON | st.just(CPR)}).map(orjson.dumps)),
       call=st.sampled_from(["cases_for", "udk", "all_cases", "deliver"]))
def test_any_answer_of_the_case_system_is_a_result_or_a_case_system_error(status, body, call):
    """The client turns whatever the case system answers into a result or a
    :class:`CaseSystemError` whose message has no CPR number in clear."""
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page_token"):  # a second page: the end
            return httpx.Response(200, json={"cases": [], "next_page_token": None})
        return httpx.Response(status, content=body)

    async def go() -> None:
        async def no_wait(_: float) -> None:
            return None

        async with CaseSystemClient("http://cases.test", transport=httpx.MockTransport(answer),
                                    attempts=1, sleep=no_wait, cache_size=0) as client:
            try:
                if call == "deliver":
                    await client.deliver({"task_id": "t1", "case_id": "C1"})
                elif call == "all_cases":
                    await client.all_cases()
                else:
                    await getattr(client, call)(CPR)
            except CaseSystemError as exc:
                no_cpr(str(exc))

    asyncio.run(go())
