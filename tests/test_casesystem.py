"""The case system connector: its OpenAPI description, the reference server, the client.

Everything runs over real HTTP on loopback against :class:`ReferenceCaseSystem` started in this
process on a free port. Failures are simulated by the server itself (``server.faults``) or by
stopping it; time-dependent behaviour (breaker reset, cache expiry) runs on a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import orjson
import pytest
from jsonschema.exceptions import ValidationError as SchemaError
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from connectors.casesystem import (
    CaseSystemClient,
    CircuitBreaker,
    CircuitOpen,
    LookupUnavailable,
    ReferenceCaseSystem,
    TaskConflict,
    TaskRejected,
    TTLCache,
    load_spec,
    retry,
    serve_forever,
)
from connectors.casesystem.resilience import BreakerState, backoff_delay
from triage import cprnumber
from triage.models.outputs import Task
from triage.models.reference import CaseRecord

# --- test data -------------------------------------------------------------------------------

ANNA, BO, CARL, DORTE, EMIL = "0101901234", "0202852345", "0303753456", "1505604567", "2010121111"
STRANGER = "0707071234"  # a valid number with no case and no UDK record
TOKEN = "test-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
NOT_A_DATE = "3102901234"  # ten digits, but 31 February: not a CPR number
ALL_CPRS = (ANNA, BO, CARL, DORTE, EMIL, STRANGER)
CPR_LIKE = re.compile(r"(?<!\d)\d{10}(?!\d)")
# In log text a ten-digit run inside a hex literal (an object address such as 0x7f7277557010,
# which debug logs print) is not a number: only runs standing alone count there.
NUMBER_IN_LOG = re.compile(r"(?<![0-9A-Za-z])\d{10}(?![0-9A-Za-z])")

CASES = [
    {"case_id": "K-1", "benefit": "kontanthjaelp", "municipality_code": "0101", "unit": "jobcenter",
     "members": [{"cpr": ANNA, "role": "applicant"}, {"cpr": BO, "role": "spouse"},
                 {"cpr": EMIL, "role": "child"}]},
    {"case_id": "K-2", "benefit": "sygedagpenge", "municipality_code": "0101",
     "unit": "borgerservice", "members": [{"cpr": ANNA, "role": "applicant"}]},
    {"case_id": "K-3", "benefit": "ressourceforloebsydelse", "municipality_code": "0561",
     "unit": "jobcenter", "members": [{"cpr": CARL, "role": "applicant"}]},
    {"case_id": "K-4", "benefit": "ledighedsydelse", "municipality_code": "0751",
     "unit": "jobcenter", "members": [{"cpr": DORTE, "role": "applicant"}]},
    {"case_id": "K-5", "benefit": "kontanthjaelp", "municipality_code": "0751",
     "unit": "jobcenter", "members": [{"cpr": DORTE, "role": "applicant"}]},
]
UDK = [
    {"cpr": ANNA,
     "benefits": [{"benefit": "a_dagpenge", "amount": 18000, "period_from": "2024-01-01",
                   "period_to": None},
                  {"benefit": "boligstoette", "amount": 1500.5, "period_from": "2023-05-01",
                   "period_to": "2024-04-30"}],
     "income": [{"amount": 24000, "income_type": "wage", "period": "2024-02"}]},
    {"cpr": CARL, "benefits": [], "income": []},
]


def make_task(task_id: str = "T-1", case_id: str = "K-1", **extra: Any) -> dict[str, Any]:
    task = {"task_id": task_id, "case_id": case_id, "unit": "jobcenter",
            "benefit": "kontanthjaelp", "title": "Flytning ud af kommunen",
            "reason": "Ansøgeren er flyttet til en anden kommune.", "rule": "moved_out",
            "score": 0.9, "payment_hold": True, "event_ids": ["e-1", "e-2"],
            "facts": {"from_municipality": "0101", "to_municipality": "0561"},
            "correlation_id": "c-1", "created_at": "2024-03-01T10:00:00+01:00"}
    task.update(extra)
    return task


def test_the_test_numbers_are_valid_cpr_numbers() -> None:
    for cpr in ALL_CPRS:
        assert cprnumber.validate(cpr) == cpr
    with pytest.raises(cprnumber.InvalidCpr):
        cprnumber.validate(NOT_A_DATE)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- the contract: validating exchanges against openapi.yaml ---------------------------------

SPEC = load_spec()
_SPEC_URI = "urn:triage:casesystem:openapi"
_SCHEMAS = Registry().with_resource(
    _SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012))
_PATHS = [(re.compile("^" + re.sub(r"\{[^}]+\}", "([^/]+)", template) + "$"), template)
          for template in SPEC["paths"]]


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _resolve(pointer: str) -> tuple[str, Any]:
    """Follow ``$ref``s from a JSON pointer into the spec; return the final pointer and node."""
    node: Any = SPEC
    for part in pointer.lstrip("/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, dict) and "$ref" in node:
        return _resolve(node["$ref"].removeprefix("#"))
    return pointer, node


def _validate(pointer: str, instance: Any) -> None:
    validator = OAS31Validator({"$ref": f"{_SPEC_URI}#{pointer}"}, registry=_SCHEMAS,
                               format_checker=oas31_format_checker)
    validator.validate(instance)


def _operation(method: str, raw_path: str) -> tuple[str, dict[str, str]]:
    for pattern, template in _PATHS:
        match = pattern.match(raw_path)
        if match and method.lower() in SPEC["paths"][template]:
            names = re.findall(r"\{([^}]+)\}", template)
            return template, {n: unquote(v) for n, v in zip(names, match.groups(), strict=True)}
    raise AssertionError(f"{method} {raw_path} is not in openapi.yaml")


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    return int(value) if schema.get("type") == "integer" and value.lstrip("-").isdigit() else value


def check_request(request: httpx.Request) -> tuple[str, str]:
    """The request is an operation of the spec with declared, valid parameters and body, and
    its URL carries no CPR number."""
    assert not CPR_LIKE.search(str(request.url)), "a CPR number in a URL"
    url = urlsplit(str(request.url))
    template, path_values = _operation(request.method, url.path)
    op_pointer = f"/paths/{_escape(template)}/{request.method.lower()}"
    _, operation = _resolve(op_pointer)
    declared = {(p["in"], p["name"]): i for i, p in enumerate(operation.get("parameters", []))}
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    for location, values in (("path", path_values), ("query", query)):
        for name, value in values.items():
            assert (location, name) in declared, f"undeclared {location} parameter {name}"
            schema_pointer = f"{op_pointer}/parameters/{declared[(location, name)]}/schema"
            _validate(schema_pointer, _coerce(value, _resolve(schema_pointer)[1]))
    for (location, name), i in declared.items():
        if operation["parameters"][i].get("required"):
            assert name in (path_values if location == "path" else query), f"missing {name}"
    if "requestBody" in operation:
        assert request.headers["content-type"].split(";")[0] == "application/json"
        _validate(f"{op_pointer}/requestBody/content/application~1json/schema",
                  orjson.loads(request.content))
    else:
        assert not request.content
    return request.method, template


def check_response(request: httpx.Request, response: httpx.Response, *,
                   valid_request: bool = True) -> tuple[str, str, int]:
    """The response's status and content type are declared, and its body fits the schema.
    ``valid_request=False`` for a deliberately malformed request: only its operation is checked.
    """
    if valid_request:
        method, template = check_request(request)
    else:
        method = request.method
        template, _ = _operation(method, urlsplit(str(request.url)).path)
    op_pointer = f"/paths/{_escape(template)}/{method.lower()}"
    status = str(response.status_code)
    _, operation = _resolve(op_pointer)
    assert status in operation["responses"], f"{method} {template}: undeclared status {status}"
    resp_pointer, declared = _resolve(f"{op_pointer}/responses/{status}")
    content_type = response.headers["content-type"].split(";")[0].strip()
    assert content_type in declared["content"], f"{method} {template} {status}: {content_type}"
    _validate(f"{resp_pointer}/content/{_escape(content_type)}/schema", response.json())
    return method, template, response.status_code


def spec_operations() -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in SPEC["paths"].items() for m in item}


class RecordingTransport(httpx.AsyncBaseTransport):
    """httpx's real transport, keeping every exchange (attempts included) for inspection."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.exchanges.append((request, response))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- fixtures --------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {"cases": write_jsonl(tmp_path / "cases.jsonl", CASES),
            "udk": write_jsonl(tmp_path / "udk.jsonl", UDK),
            "store": tmp_path / "store" / "tasks.sqlite"}


@pytest.fixture
async def server(files: dict[str, Path]) -> AsyncIterator[ReferenceCaseSystem]:
    system = ReferenceCaseSystem(files["cases"], udk_path=files["udk"],
                                 store_path=files["store"], token=TOKEN)
    await system.start()
    yield system
    await system.stop()
    system.close()


ClientFactory = Callable[..., CaseSystemClient]


@pytest.fixture
async def make_client(server: ReferenceCaseSystem) -> AsyncIterator[ClientFactory]:
    clients: list[CaseSystemClient] = []

    def make(**options: Any) -> CaseSystemClient:
        options.setdefault("base_delay", 0.001)
        options.setdefault("max_delay", 0.01)
        options.setdefault("rng", random.Random(7))
        options.setdefault("token", server.token)
        client = CaseSystemClient(server.url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def http(server: ReferenceCaseSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers=BEARER) as client:
        yield client


def assert_no_cpr(exc: BaseException) -> None:
    for text in (str(exc), repr(exc)):
        assert not CPR_LIKE.search(text), text
    # no chained httpx error, whose message or request URL could carry the number
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__


# --- contract --------------------------------------------------------------------------------


def test_openapi_yaml_is_a_valid_openapi_31_document() -> None:
    assert SPEC["openapi"].startswith("3.1")
    validate_spec(SPEC)
    assert spec_operations() == {
        ("GET", "/v1/health"), ("GET", "/v1/cases"), ("POST", "/v1/cases/lookup"),
        ("PUT", "/v1/tasks/{task_id}"), ("GET", "/v1/tasks/{task_id}"), ("GET", "/v1/tasks"),
        ("POST", "/v1/udk/persons/lookup")}


def test_every_operation_but_health_requires_credentials() -> None:
    schemes = SPEC["components"]["securitySchemes"]
    assert schemes["integrationPlatform"]["flows"]["clientCredentials"]["tokenUrl"]
    assert (schemes["referenceToken"]["type"], schemes["referenceToken"]["scheme"]) == (
        "http", "bearer")
    assert {next(iter(r)) for r in SPEC["security"]} == {"integrationPlatform", "referenceToken"}
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            public = operation.get("security") == []
            assert public == (path == "/v1/health"), (method, path)
            if not public:
                assert "401" in operation["responses"], (method, path)


def test_the_spec_case_schema_accepts_exactly_the_contract_cases() -> None:
    for case in CASES:
        _validate("/components/schemas/Case", case)
        CaseRecord.model_validate(case)
    bad = dict(CASES[0], benefit="folkepension")
    with pytest.raises(SchemaError):
        _validate("/components/schemas/Case", bad)
    with pytest.raises(SchemaError):
        _validate("/components/schemas/Task", {k: v for k, v in make_task().items()
                                               if k != "event_ids"})
    _validate("/components/schemas/Task", make_task(correlation_id=None))


async def test_every_endpoint_answers_as_the_spec_says(
        server: ReferenceCaseSystem, http: httpx.AsyncClient) -> None:
    seen: set[tuple[str, str, int]] = set()

    async def exchange(method: str, url: str, *, valid: bool = True,
                       **kwargs: Any) -> httpx.Response:
        response = await http.request(method, url, **kwargs)
        seen.add(check_response(response.request, response, valid_request=valid))
        return response

    assert (await exchange("GET", "/v1/health")).json()["status"] == "ok"
    anna = (await exchange("POST", "/v1/cases/lookup", json={"cpr": ANNA})).json()
    assert {c["case_id"] for c in anna["cases"]} == {"K-1", "K-2"}
    assert anna["next_page_token"] is None
    assert (await exchange("POST", "/v1/cases/lookup", json={"cpr": EMIL})).json()["cases"][0][
        "case_id"] == "K-1"
    assert (await exchange("POST", "/v1/cases/lookup", json={"cpr": STRANGER})
            ).json()["cases"] == []
    for bad in (NOT_A_DATE, "12345", "01019O1234"):
        response = await exchange("POST", "/v1/cases/lookup", json={"cpr": bad}, valid=False)
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")
        assert bad not in response.text
    assert (await exchange("POST", "/v1/cases/lookup", json={"person": ANNA}, valid=False)
            ).status_code == 422
    refused = await http.get("/v1/cases", params={"cpr": ANNA})  # never in a URL
    assert refused.status_code == 400 and "POST /v1/cases/lookup" in refused.text

    page = (await exchange("GET", "/v1/cases", params={"limit": 2})).json()
    ids = [c["case_id"] for c in page["cases"]]
    while page["next_page_token"] is not None:
        page = (await exchange("GET", "/v1/cases", params={
            "limit": 2, "page_token": page["next_page_token"]})).json()
        ids += [c["case_id"] for c in page["cases"]]
    assert ids == [c["case_id"] for c in CASES]
    assert (await exchange("GET", "/v1/cases", params={"page_token": "x"})).status_code == 400
    for limit in (0, 1001):
        assert (await exchange("GET", "/v1/cases", params={"limit": limit}, valid=False)
                ).status_code == 400

    created = await exchange("PUT", "/v1/tasks/T-1", json=make_task())
    assert created.status_code == 201 and created.headers["location"] == "/v1/tasks/T-1"
    again = await exchange("PUT", "/v1/tasks/T-1", json=make_task(
        created_at="2024-03-02T09:00:00+01:00"))  # a redelivery, stamped anew
    assert again.status_code == 200
    assert again.json()["created_at"] == "2024-03-01T10:00:00+01:00"  # as first received
    for other in (make_task(case_id="K-2"), make_task(title="Ingen handling nødvendig"),
                  make_task(score=0.0), make_task(event_ids=["e-1"])):
        assert (await exchange("PUT", "/v1/tasks/T-1", json=other)).status_code == 409
    assert (await exchange("GET", "/v1/tasks/T-1")).json()["title"] == make_task()["title"]
    assert (await exchange("GET", "/v1/tasks/T-404")).status_code == 404
    for body in ({"task_id": "T-2"}, make_task("T-2", score=1.5), make_task("T-other")):
        assert (await exchange("PUT", "/v1/tasks/T-2", json=body, valid=False)
                ).status_code == 422
    response = await http.put("/v1/tasks/T-3", content=b"{not json",
                              headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = await exchange("PUT", "/v1/tasks/T-4", content=orjson.dumps(make_task("T-4")),
                                  headers={"content-type": content_type}, valid=False)
        assert response.status_code == 415
    huge = make_task("T-5", facts={"padding": "x" * (300 * 1024)})
    assert (await exchange("PUT", "/v1/tasks/T-5", json=huge, valid=False)).status_code == 413
    for number in range(6, 9):
        await exchange("PUT", f"/v1/tasks/T-{number}", json=make_task(f"T-{number}"))
    listed, page = [], (await exchange("GET", "/v1/tasks", params={"limit": 2})).json()
    while True:
        listed += [t["task_id"] for t in page["tasks"]]
        if page["next_page_token"] is None:
            break
        page = (await exchange("GET", "/v1/tasks", params={
            "limit": 2, "page_token": page["next_page_token"]})).json()
    assert listed == ["T-1", "T-6", "T-7", "T-8"]
    assert (await exchange("GET", "/v1/tasks", params={"limit": 5000}, valid=False)
            ).status_code == 400

    udk = (await exchange("POST", "/v1/udk/persons/lookup", json={"cpr": ANNA})).json()
    assert udk["cpr"] == ANNA and udk["benefits"][0]["benefit"] == "a_dagpenge"
    assert (await exchange("POST", "/v1/udk/persons/lookup", json={"cpr": STRANGER})
            ).status_code == 404
    assert (await exchange("POST", "/v1/udk/persons/lookup", json={"cpr": NOT_A_DATE})
            ).status_code == 400
    assert (await exchange("POST", "/v1/udk/persons/lookup", json={"cpr": "123"}, valid=False)
            ).status_code == 400

    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": f"Basic {TOKEN}"}):
        for method, path, body in (("GET", "/v1/cases", None), ("GET", "/v1/tasks", None),
                                   ("PUT", "/v1/tasks/T-9", make_task("T-9")),
                                   ("POST", "/v1/cases/lookup", {"cpr": ANNA})):
            denied = await exchange(method, path, json=body, headers=headers)
            assert denied.status_code == 401, (method, path, headers)
            assert denied.headers["www-authenticate"].startswith("Bearer")
            assert ANNA not in denied.text
    assert (await exchange("GET", "/v1/tasks/T-9")).status_code == 404  # nothing was planted

    server.faults.fail = True
    for path in ("/v1/health", "/v1/cases", "/v1/tasks", "/v1/tasks/T-1"):
        assert (await exchange("GET", path)).status_code == 503
    assert (await exchange("PUT", "/v1/tasks/T-9", json=make_task("T-9"))).status_code == 503
    for path in ("/v1/cases/lookup", "/v1/udk/persons/lookup"):
        assert (await exchange("POST", path, json={"cpr": ANNA})).status_code == 503

    # every operation of the spec was seen answering successfully
    assert {(m, p) for m, p, s in seen if s < 300} == spec_operations()


async def test_the_clients_requests_and_the_answers_match_the_spec(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    transport = RecordingTransport()
    client = make_client(transport=transport)
    await client.cases_for(ANNA)
    await client.cases_for(STRANGER)
    assert len(await client.all_cases(page_size=2)) == len(CASES)
    assert await client.deliver(make_task()) is True
    assert await client.deliver(Task(**make_task("T-2", correlation_id=None))) is True
    await client.udk(ANNA)
    await client.udk(STRANGER)
    assert await client.health()
    with pytest.raises(TaskConflict):
        await client.deliver(make_task(case_id="K-3"))
    server.faults.flap = True
    await client.cases_for(BO)  # a 503, then the answer

    seen = {check_response(request, response) for request, response in transport.exchanges}
    assert {(m, p) for m, p, _ in seen} == spec_operations() - {
        ("GET", "/v1/tasks"), ("GET", "/v1/tasks/{task_id}")}
    assert ("POST", "/v1/cases/lookup", 503) in seen
    assert all(request.headers["authorization"] == f"Bearer {TOKEN}"
               for request, _ in transport.exchanges if request.url.path != "/v1/health")


# --- client behaviour ------------------------------------------------------------------------


async def test_cases_for_returns_the_persons_case_records(make_client: ClientFactory) -> None:
    client = make_client()
    cases = await client.cases_for(ANNA)
    assert all(isinstance(c, CaseRecord) for c in cases)
    assert sorted(c.case_id for c in cases) == ["K-1", "K-2"]
    assert {m.role for m in cases[0].members} == {"applicant", "spouse", "child"}
    assert await client.cases_for(STRANGER) == []


async def test_all_cases_follows_the_pages(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    cases = await make_client().all_cases(page_size=2)
    assert [c.case_id for c in cases] == ["K-1", "K-2", "K-3", "K-4", "K-5"]
    assert server.requests == [("GET", "/v1/cases")] * 3


async def test_udk_returns_the_record_or_none(make_client: ClientFactory) -> None:
    client = make_client()
    record = await client.udk(ANNA)
    assert record is not None and record["income"][0]["income_type"] == "wage"
    assert await client.udk(STRANGER) is None


async def test_metrics_count_outcomes_in_the_given_registry(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    client = make_client(registry=registry)
    await client.cases_for(ANNA)
    await client.cases_for(ANNA)
    await client.udk(STRANGER)
    server.faults.flap = True
    await client.deliver(make_task())

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("triage_casesystem_requests_total", operation="cases_for", outcome="ok") == 1
    assert value("triage_casesystem_requests_total", operation="cases_for",
                 outcome="cache_hit") == 1
    assert value("triage_casesystem_requests_total", operation="udk", outcome="not_found") == 1
    assert value("triage_casesystem_requests_total", operation="deliver", outcome="created") == 1
    assert value("triage_casesystem_retries_total", operation="deliver") == 1
    assert value("triage_casesystem_breaker_state") == 0


# --- idempotent task delivery ----------------------------------------------------------------


async def test_delivering_a_task_twice_creates_one_task(
        server: ReferenceCaseSystem, make_client: ClientFactory, files: dict[str, Path]) -> None:
    client = make_client()
    task = Task(**make_task())
    assert await client.deliver(task) is True
    assert await client.deliver(task) is False
    assert await client.deliver(make_task()) is False  # the dict form is the same task
    assert [t["task_id"] for t in server.store.page(0, 10)[0]] == ["T-1"]


async def test_the_same_task_id_for_another_case_is_a_conflict(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    client = make_client()
    await client.deliver(make_task())
    with pytest.raises(TaskConflict, match="409"):
        await client.deliver(make_task(case_id="K-2"))
    stored = server.store.get("T-1")
    assert stored is not None and stored["case_id"] == "K-1"
    assert len(server.store) == 1


async def test_a_task_planted_first_under_the_id_is_a_conflict_not_a_repeat(
        server: ReferenceCaseSystem, make_client: ClientFactory, http: httpx.AsyncClient,
        ) -> None:
    """Issue 9: a task planted under the real task's id ("Ingen handling nødvendig", score
    0) was kept and the real delivery counted as a repeat. Now the plant needs the token, and
    even with it the real delivery is a conflict, never a repeat."""
    planted = make_task(title="Ingen handling nødvendig", score=0.0, payment_hold=False)
    assert (await http.put("/v1/tasks/T-1", json=planted, headers={"Authorization": ""})
            ).status_code == 401
    assert len(server.store) == 0
    assert (await http.put("/v1/tasks/T-1", json=planted)).status_code == 201  # a token holder
    with pytest.raises(TaskConflict, match="different task"):
        await make_client().deliver(make_task())


async def test_an_invalid_task_is_rejected_and_not_recorded(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(TaskRejected) as caught:
        await client.deliver(make_task(score=2.0))
    assert caught.value.status == 422 and "score" in str(caught.value)
    with pytest.raises(TaskRejected):
        await client.deliver({"title": "no id"})
    assert len(server.store) == 0


async def test_a_delivery_retried_after_a_503_creates_one_task(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    server.faults.flap = True
    assert await make_client(attempts=3).deliver(make_task()) is True
    assert server.request_count == 2
    assert len(server.store) == 1


async def test_tasks_survive_a_restart_of_the_server(files: dict[str, Path]) -> None:
    first = ReferenceCaseSystem(files["cases"], store_path=files["store"], token=TOKEN)
    async with first, CaseSystemClient(first.url, token=TOKEN) as client:
        assert await client.deliver(make_task()) is True
    second = ReferenceCaseSystem(files["cases"], store_path=files["store"], token=TOKEN)
    async with second, CaseSystemClient(second.url, token=TOKEN) as client:
        assert await client.deliver(make_task()) is False  # idempotent across the restart
        with pytest.raises(TaskConflict):
            await client.deliver(make_task(title="changed"))
    assert oct(files["store"].stat().st_mode & 0o777) == "0o600"
    assert oct(files["store"].parent.stat().st_mode & 0o777) == "0o700"


async def test_a_client_without_the_token_is_refused(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    client = make_client(token=None, attempts=1)
    assert await client.health()  # public
    with pytest.raises(LookupUnavailable, match="HTTP 401"):
        await client.cases_for(ANNA)
    with pytest.raises(TaskRejected) as caught:
        await client.deliver(make_task())
    assert caught.value.status == 401
    assert len(server.store) == 0


# --- resilience ------------------------------------------------------------------------------


async def test_server_down_fails_fast_after_the_configured_attempts(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    await server.stop()
    transport = RecordingTransport()
    client = make_client(transport=transport, attempts=3)
    started = time.perf_counter()
    with pytest.raises(LookupUnavailable) as caught:
        await client.cases_for(ANNA)
    assert time.perf_counter() - started < 1.0
    assert len(transport.requests) == 3
    assert caught.value.reason == "unreachable" and caught.value.operation == "cases_for"
    assert "could not connect" in str(caught.value) and "3 attempts" in str(caught.value)
    assert_no_cpr(caught.value)


async def test_a_server_slower_than_the_timeout_is_a_timeout(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    server.faults.delay = 5.0
    client = make_client(timeout=0.1, attempts=2)
    started = time.perf_counter()
    with pytest.raises(LookupUnavailable) as caught:
        await client.cases_for(ANNA)
    assert time.perf_counter() - started < 2.0
    assert caught.value.reason == "timeout"
    assert "timeout" in str(caught.value) and "0.1 s" in str(caught.value)
    assert server.request_count == 2
    assert_no_cpr(caught.value)


async def test_a_flapping_server_is_retried_to_success(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    server.faults.flap = True
    client = make_client(attempts=3, cache_size=0)
    for cpr in (ANNA, CARL, DORTE):
        assert await client.cases_for(cpr)
    assert server.request_count == 6  # each lookup: one 503, one answer
    assert client.breaker.state is BreakerState.CLOSED


async def test_a_persistent_503_gives_up_after_the_attempts(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    server.faults.fail = True
    with pytest.raises(LookupUnavailable) as caught:
        await make_client(attempts=3).udk(ANNA)
    assert caught.value.reason == "server_error" and "HTTP 503" in str(caught.value)
    assert server.request_count == 3
    assert_no_cpr(caught.value)


async def test_the_breaker_opens_fails_fast_and_a_trial_success_closes_it(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30.0, clock=clock)
    client = make_client(attempts=1, breaker=breaker, clock=clock)

    def gauge() -> float | None:
        return client.registry.get_sample_value("triage_casesystem_breaker_state")

    server.faults.fail = True
    for _ in range(3):
        with pytest.raises(LookupUnavailable, match="HTTP 503"):
            await client.cases_for(ANNA)
    assert breaker.state is BreakerState.OPEN and gauge() == 1
    reached = server.request_count
    assert reached == 3

    server.faults.fail = False  # the server has recovered, but the breaker does not know yet
    for cpr in (ANNA, BO, CARL):
        with pytest.raises(LookupUnavailable) as caught:
            await client.cases_for(cpr)
        assert caught.value.reason == "breaker_open"
        assert "circuit breaker is open" in str(caught.value)
        assert_no_cpr(caught.value)
    assert server.request_count == reached  # failed fast: the server saw nothing

    clock.advance(29.9)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN and gauge() == 2
    assert [c.case_id for c in await client.cases_for(CARL)] == ["K-3"]
    assert breaker.state is BreakerState.CLOSED and gauge() == 0
    assert server.request_count == reached + 1
    assert client.registry.get_sample_value(
        "triage_casesystem_requests_total",
        {"operation": "cases_for", "outcome": "breaker_open"}) == 3


async def test_a_failed_trial_call_opens_the_breaker_again(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=10.0, clock=clock)
    client = make_client(attempts=3, breaker=breaker, clock=clock)
    server.faults.fail = True
    with pytest.raises(LookupUnavailable) as caught:
        await client.cases_for(ANNA)  # two attempts fail, the breaker opens before the third
    assert caught.value.reason == "server_error"
    assert "(2 attempts); the circuit breaker is now open" in str(caught.value)
    assert server.request_count == 2
    clock.advance(10.0)
    with pytest.raises(LookupUnavailable, match="HTTP 503"):
        await client.cases_for(ANNA)  # the one trial call fails: open again, no retry
    assert server.request_count == 3
    assert breaker.state is BreakerState.OPEN
    clock.advance(9.0)
    assert breaker.state is BreakerState.OPEN  # the timeout restarted at the failed trial


async def test_the_cache_answers_within_the_ttl_and_asks_again_after(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    clock = FakeClock()
    client = make_client(cache_ttl=60.0, clock=clock)
    first = await client.cases_for(ANNA)
    clock.advance(59.0)
    assert await client.cases_for(ANNA) == first
    assert server.request_count == 1
    clock.advance(1.0)
    assert await client.cases_for(ANNA) == first
    assert server.request_count == 2


async def test_the_cache_is_bounded(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    client = make_client(cache_size=2, clock=FakeClock())
    for cpr in (ANNA, BO, CARL):
        await client.cases_for(cpr)
    assert server.request_count == 3
    await client.cases_for(CARL)
    await client.cases_for(BO)
    assert server.request_count == 3  # the two newest are cached
    await client.cases_for(ANNA)
    assert server.request_count == 4  # the oldest was evicted


async def test_failures_are_not_cached(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    client = make_client(attempts=1)
    server.faults.fail = True
    with pytest.raises(LookupUnavailable):
        await client.cases_for(ANNA)
    server.faults.fail = False
    assert len(await client.cases_for(ANNA)) == 2


async def test_concurrent_lookups_of_one_person_share_one_request(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    server.faults.delay = 0.05  # keeps the first request in flight while the others arrive
    client = make_client()
    results = await asyncio.gather(*(client.cases_for(DORTE) for _ in range(5)))
    assert all([c.case_id for c in r] == ["K-4", "K-5"] for r in results)
    assert server.request_count == 1


async def test_the_server_can_be_stopped_and_restarted_on_its_port(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    client = make_client(attempts=1, cache_size=0)
    port = server.port
    await server.stop()
    with pytest.raises(LookupUnavailable, match="could not connect"):
        await client.cases_for(ANNA)
    await server.start()
    assert server.port == port
    assert len(await client.cases_for(ANNA)) == 2


# --- no CPR numbers in messages or logs ------------------------------------------------------


async def test_no_exception_message_contains_a_cpr_number(
        server: ReferenceCaseSystem, make_client: ClientFactory) -> None:
    clock = FakeClock()
    raised: list[Exception] = []

    async def collect(call: Any) -> None:
        try:
            await call
        except (LookupUnavailable, TaskRejected, TaskConflict) as exc:
            raised.append(exc)

    client = make_client(attempts=2, timeout=0.1, clock=clock,
                         breaker=CircuitBreaker(failure_threshold=100, clock=clock))
    await collect(client.cases_for(NOT_A_DATE))  # 400 from the server
    await collect(client.udk(NOT_A_DATE))
    await collect(client.deliver(make_task("0101901234", score=5)))  # careless id, bad task
    server.faults.fail = True
    await collect(client.cases_for(ANNA))
    await collect(client.udk(ANNA))
    server.faults.fail, server.faults.delay = False, 5.0
    await collect(client.cases_for(BO))
    server.faults.delay = 0.0
    await server.stop()
    await collect(client.cases_for(CARL))
    opened = make_client(attempts=1, clock=clock,
                         breaker=CircuitBreaker(failure_threshold=1, clock=clock))
    await collect(opened.cases_for(DORTE))
    await collect(opened.cases_for(DORTE))

    reasons = [getattr(e, "reason", type(e).__name__) for e in raised]
    assert reasons == ["rejected", "rejected", "TaskRejected", "server_error", "server_error",
                       "timeout", "unreachable", "unreachable", "breaker_open"]
    for exc in raised:
        assert_no_cpr(exc)
    assert "010190-****" in str(raised[3])  # the masked number says whose lookup failed


async def test_request_logs_do_not_show_cpr_numbers(
        make_client: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await make_client().cases_for(ANNA)
        await make_client().udk(ANNA)
    assert "POST http://127.0.0.1:" in caplog.text and "/v1/cases/lookup" in caplog.text
    assert "--- Logging error ---" not in caplog.text
    assert ANNA not in caplog.text
    assert not NUMBER_IN_LOG.search(caplog.text)


# --- the building blocks ---------------------------------------------------------------------


async def test_retry_backs_off_exponentially_with_full_jitter() -> None:
    pauses: list[float] = []
    calls = 0

    async def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 5:
            raise ConnectionError("down")
        return "up"

    result = await retry(flaky, attempts=5, base_delay=0.1, max_delay=0.5,
                         rng=random.Random(42), sleep=fake_sleep)
    assert result == "up" and calls == 5
    expected_rng = random.Random(42)
    caps = [0.1, 0.2, 0.4, 0.5]
    assert pauses == [expected_rng.uniform(0, cap) for cap in caps]
    assert all(0 <= p <= cap for p, cap in zip(pauses, caps, strict=True))
    assert [backoff_delay(n, base_delay=0.1, max_delay=0.5, jitter=False)
            for n in range(1, 6)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


async def test_retry_gives_up_and_does_not_retry_what_it_should_not() -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise ValueError(str(calls))

    async def no_sleep(_: float) -> None:
        return None

    with pytest.raises(ValueError, match="3"):
        await retry(failing, 3, 0.01, 0.1, sleep=no_sleep)
    calls = 0
    with pytest.raises(ValueError, match="1"):
        await retry(failing, 3, 0.01, 0.1, retry_on=lambda e: not isinstance(e, ValueError),
                    sleep=no_sleep)


async def test_breaker_states_and_a_single_trial_call() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=5.0, clock=clock)
    breaker.record_failure()
    breaker.record_success()  # a success resets the count of consecutive failures
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.advance(5.0)
    breaker.before_call()  # the trial call
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # only one at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED

    async def ok() -> int:
        return 1

    assert await breaker.call(ok) == 1


def test_ttl_cache_expires_and_is_bounded() -> None:
    clock = FakeClock()
    cache: TTLCache[str, int] = TTLCache(maxsize=2, ttl=10.0, clock=clock)
    cache["a"] = 1
    clock.advance(5)
    cache["b"] = 2
    cache["c"] = 3
    assert "a" not in cache and cache["b"] == 2 and len(cache) == 2
    clock.advance(10)
    assert cache.get("b") is None and cache.get("c") is None


# --- the command line server -----------------------------------------------------------------


async def test_serve_forever_serves_until_stopped(files: dict[str, Path]) -> None:
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    runner = asyncio.create_task(serve_forever(
        files["cases"], files["udk"], port=0, stop=stop, token=TOKEN,
        on_ready=lambda s: ready.set_result(s.url)))
    url = await asyncio.wait_for(ready, 5)
    async with CaseSystemClient(url) as client:
        assert await client.health()
        stop.set()
        await asyncio.wait_for(runner, 5)
        assert not await client.health()


def test_run_reference_server_stops_on_sigterm(files: dict[str, Path]) -> None:
    code = ("import sys; from connectors.casesystem import run_reference_server; "
            "run_reference_server(sys.argv[1], sys.argv[2], sys.argv[3], port=0, "
            f"token={TOKEN!r})")
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(files["cases"]), str(files["udk"]), str(files["store"])],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "listening on http://127.0.0.1:" in line and "5 cases" in line
        url = line.split("listening on ")[1].split()[0]
        response = httpx.put(f"{url}/v1/tasks/T-1", json=make_task(), timeout=5,
                             headers=BEARER)
        assert response.status_code == 201
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    import sqlite3

    with sqlite3.connect(files["store"]) as db:
        assert [row[0] for row in db.execute("SELECT task_id FROM tasks")] == ["T-1"]


def test_the_command_refuses_to_serve_without_a_token(files: dict[str, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_CASESYSTEM_TOKEN")}
    run = subprocess.run([sys.executable, "-m", "triage.cli", "casesystem", "serve", "--cases",
                          str(files["cases"]), "--port", "0"], capture_output=True, text=True,
                         env=env, timeout=60, check=False)
    assert run.returncode == 2 and "needs a bearer token" in run.stderr
    short = subprocess.run([sys.executable, "-m", "triage.cli", "casesystem", "serve",
                            "--cases", str(files["cases"])], capture_output=True, text=True,
                           env={**env, "TRIAGE_CASESYSTEM_TOKEN": "abc"}, timeout=60,
                           check=False)
    assert short.returncode == 2 and "at least 16" in short.stderr and "abc" not in short.stderr


async def test_a_rotated_token_file_is_picked_up_without_a_restart(
        server: ReferenceCaseSystem, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    async with CaseSystemClient(server.url, token_file=token_file, attempts=1) as client:
        assert len(await client.cases_for(ANNA)) == 2
        server.token = "rotated-token-abcdefghijkl"  # the platform rotates the credentials
        with pytest.raises(LookupUnavailable, match="HTTP 401"):
            await client.cases_for(BO)
        token_file.write_text(server.token)
        os.utime(token_file, ns=(1, time.time_ns() + 10**9))  # a new modification time
        assert len(await client.cases_for(BO)) == 1
    assert "rotated-token" not in repr(client._http.auth)
