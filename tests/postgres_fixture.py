"""Pytest plugin: a real PostgreSQL server (Debian's ``postgresql`` package) for the session.

``postgres_server`` runs ``initdb`` and ``pg_ctl`` in a fresh temporary directory on a free
loopback port and stops the server (by ``pg_ctl stop``) at the end of the session. PostgreSQL
refuses to run as root, and CI runs as root: then the server runs as the ``postgres`` system
user the package creates (``runuser -u postgres``), in a directory owned by it.
``postgres_url`` gives each test a database of its own on that server.

``make test`` installs the package when ``initdb`` is missing (``scripts/ensure-debs``); a
machine without it fails these tests with that message rather than skipping them.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from triage.stream.broker import free_port

__all__ = ["PostgresServer", "postgres_server", "postgres_url"]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: install Debian's postgresql package "
                           "(make test does: scripts/ensure-debs)")
    return path


@dataclass
class PostgresServer:
    port: int
    user: str = "triage"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="triage-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    server = PostgresServer(port)
    subprocess.run([*prefix, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U",
                    server.user, "-E", "UTF8", "--no-instructions"],
                   check=True, capture_output=True)
    subprocess.run([*prefix, _pg_bin("pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"),
                    "-w", "-t", "60", "-o",
                    f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    try:
        yield server
    finally:
        subprocess.run([*prefix, _pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                        "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield postgres_server.url(name)
    finally:
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
