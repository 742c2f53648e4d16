"""Bounded HTTP (issue 9 point 6) on both servers: the reference case system in this process,
the worker's web port in a real ``triage worker`` process.

1,500 half-open requests (a request line and part of the headers, never finished) held 1,500
descriptors on each server, and with a 1,024 descriptor limit ``/health`` stopped answering.
Now each server holds at most its connection limit, closes the oldest idle or half-open
connection to make room, times half-open ones out, and ``/health`` answers throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from connectors.casesystem.server import ReferenceCaseSystem
from tests.world import World, address
from triage.web_limits import HttpLimits

HALF_OPEN = 1500
PARTIAL = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # never finished
CPR = "0101901234"


@contextlib.contextmanager
def descriptors(needed: int) -> Iterator[None]:
    """Raise this process's soft descriptor limit to ``needed`` for the test (the client side
    of 1,500 connections needs 1,500 descriptors itself)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target < needed:
        pytest.fail(f"the hard descriptor limit ({hard}) is below the {needed} this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def open_half(host: str, port: int, count: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection(host, port)
        writer.write(PARTIAL)
        writers.append(writer)
    await asyncio.gather(*(w.drain() for w in writers), return_exceptions=True)
    return writers


def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.transport.abort()


async def until(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Await a condition (no fixed sleeps): poll it until it holds or time is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# --- the reference case system -----------------------------------------------------------


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ReferenceCaseSystem]:
    w = World()
    w.person("modtager", address("home"))
    w.case("K1", "kontanthjaelp", "modtager")
    cases = tmp_path / "cases.jsonl"
    cases.write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in w.cases))
    limits = HttpLimits(header_timeout=2.0, request_timeout=2.0, max_connections=200,
                        max_body=64 * 1024, max_line=2048, max_field=2048, max_headers=20)
    with descriptors(4096):
        system = ReferenceCaseSystem(cases, limits=limits)
        await system.start()
        yield system
        await system.stop()
        system.close()


async def test_half_open_connections_do_not_stop_health(server: ReferenceCaseSystem) -> None:
    writers = await open_half(server.host, server.port, HALF_OPEN)
    try:
        guarded = server.runner.guarded  # type: ignore[union-attr]
        assert guarded is not None
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            for _ in range(3):
                assert (await http.get("/v1/health")).status_code == 200
        # the server never held more than its limit, however many clients tried
        assert len(guarded.connections) <= guarded.max_connections == 200
        # it had to shed (how many depends on how many the header timeout closed meanwhile)
        assert guarded.shed > 0
        # and the half-open connections it still holds are timed out
        await until(lambda: len(guarded.connections) == 0)
    finally:
        close_all(writers)


async def test_a_slow_loris_is_closed_after_the_header_timeout(
        server: ReferenceCaseSystem) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET /v1/health HTTP/1.1\r\n")
    closed = False
    try:
        for _ in range(200):  # one header byte at a time keeps nothing alive
            writer.write(b"X")
            await writer.drain()
            try:
                closed = await asyncio.wait_for(reader.read(1), 0.05) == b""
            except TimeoutError:
                continue
            if closed:
                break
    except ConnectionError:
        closed = True
    finally:
        writer.transport.abort()
    assert closed


async def test_lines_fields_headers_and_bodies_are_bounded(server: ReferenceCaseSystem) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10, headers=auth) as http:
        assert (await http.get("/v1/tasks", params={"x": "y" * 4000})).status_code == 400
        assert (await http.get("/v1/tasks", headers={"X-Big": "z" * 4000})).status_code == 400
        many = {f"X-H{i}": "1" for i in range(30)}
        assert (await http.get("/v1/tasks", headers=many)).status_code == 400
        big = await http.put("/v1/tasks/T-1", content=b"{" + b" " * 100_000 + b"}",
                             headers={"content-type": "application/json"})
        assert big.status_code == 413
        assert (await http.get("/v1/tasks")).status_code == 200  # and it still serves


async def test_a_request_that_never_finishes_its_body_gets_408(
        server: ReferenceCaseSystem) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(b"PUT /v1/tasks/T-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 1000\r\nAuthorization: Bearer " +
                     server.token.encode() + b"\r\n\r\n{")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.transport.abort()
    assert status.startswith(b"HTTP/1.1 408")


# --- the worker's web port ---------------------------------------------------------------


def _low_descriptor_limit() -> None:  # pragma: no cover (runs in the child)
    """The worker runs with the 1,024-descriptor limit of the issue's probe."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


@pytest.mark.kafka
@pytest.mark.slow
def test_the_worker_port_survives_half_open_connections_and_never_logs_a_cpr_number(
        tmp_path: Path) -> None:
    from tests.test_worker import write_reference
    from triage.dev import create_topics, stop_process, wait_ready
    from triage.stream.broker import EmbeddedBroker, free_port

    w = World()
    w.person("modtager", address("home"))
    w.case("K1", "kontanthjaelp", "modtager")
    write_reference(w, tmp_path)
    port = free_port()
    log_path = tmp_path / "worker.log"
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker, descriptors(4096):
        create_topics(broker, partitions=3)
        env = {**os.environ, "TRIAGE_BOOTSTRAP": broker.bootstrap,
               "TRIAGE_PERSONS": str(tmp_path / "persons.jsonl"),
               "TRIAGE_CASES": str(tmp_path / "cases.jsonl"), "TRIAGE_WEB_PORT": str(port),
               "TRIAGE_DATA_DIR": str(tmp_path / "data")}
        with log_path.open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "triage.cli", "worker"], env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_low_descriptor_limit)
        try:
            wait_ready(f"http://127.0.0.1:{port}/ready", worker)
            before = log_path.stat().st_size
            health = asyncio.run(_hammer_worker(port))
            probes = _hostile_requests(port)
            assert worker.poll() is None
            grown = log_path.stat().st_size - before
            text = log_path.read_text(errors="replace")
            fds = len(os.listdir(f"/proc/{worker.pid}/fd"))
        finally:
            stop_process(worker)
    assert health == [200, 200, 200]
    assert fds < 600  # the worker held its limit (256 web connections), not 1,500
    assert probes["router"] == probes["table"] == 404  # faust's internal pages are off
    assert probes["big body"] in (400, 404, 405, 413)
    assert CPR not in text and "0101901234" not in text
    assert grown < 64 * 1024, f"the log grew by {grown} bytes"
    assert "Too many open files" not in text


async def _hammer_worker(port: int) -> list[int]:
    writers = await open_half("127.0.0.1", port, HALF_OPEN)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            return [(await http.get(f"http://127.0.0.1:{port}/health")).status_code
                    for _ in range(3)]
    finally:
        close_all(writers)


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def _hostile_requests(port: int) -> dict[str, int]:
    """The issue's probes: a CPR number in a request line and in a header, a bad header with
    one, a 10 MB body; and faust's internal pages."""
    probes = {
        "cpr in request line": f"GET /health?cpr={CPR} HTTP/1.1\r\nHost: x\r\n"
                               "Connection: close\r\n\r\n".encode(),
        "cpr in header": f"GET /health HTTP/1.1\r\nHost: x\r\nX-Cpr: {CPR}\r\n"
                         "Connection: close\r\n\r\n".encode(),
        "bad header": f"GET /health HTTP/1.1\r\nHost: x\r\nX-Cpr {CPR}\r\n\r\n".encode(),
        "bad request line": f"GET /{CPR} HTTP/9\x00\r\n\r\n".encode(),
        "big body": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 10485760\r\nConnection: close\r\n\r\n"
                    + (CPR.encode() + b" ") * (10_485_760 // 11),
        "router": b"GET /router/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "table": b"GET /table/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    }
    return {name: _status(_raw(port, data)) for name, data in probes.items()}
