"""Files with personal data are created 0600 and data directories 0700, never under a fixed,
shared /tmp path (issue 9 point 8)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_replay_cli import sample_world, write_world
from triage.private_files import (
    PrivatePathError,
    open_private,
    private_dir,
    state_dir,
    write_private_atomic,
)

FIXTURE = Path(__file__).parent / "fixtures" / "cpr" / "extract_sample.txt"


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_files_are_created_0600_even_under_a_lax_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with open_private(tmp_path / "a.jsonl") as handle:
            handle.write(b"x\n")
        (tmp_path / "b.jsonl").write_bytes(b"old")
        (tmp_path / "b.jsonl").chmod(0o644)
        with open_private(tmp_path / "b.jsonl", "ab") as handle:  # an existing file tightened
            handle.write(b" new")
        write_private_atomic(tmp_path / "c.json", b"{}")
        created = private_dir(tmp_path / "deep" / "data")
    finally:
        os.umask(old)
    assert [mode(tmp_path / n) for n in ("a.jsonl", "b.jsonl", "c.json")] == ["0o600"] * 3
    assert (tmp_path / "b.jsonl").read_bytes() == b"old new"
    assert mode(created) == "0o700"
    assert not list(tmp_path.glob(".c.json.*"))  # no temporary file left behind


def test_a_directory_planted_by_someone_else_or_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PrivatePathError, match="symbolic link"):
        private_dir(tmp_path / "link")
    if os.geteuid() == 0:  # only root can hand a directory to another user
        planted = tmp_path / "planted"
        planted.mkdir()
        os.chown(planted, 65534, 65534)
        with pytest.raises(PrivatePathError, match="another user"):
            private_dir(planted)


def test_the_worker_data_dir_defaults_to_a_private_per_user_directory(tmp_path, monkeypatch):
    from triage.stream.settings import WorkerSettings

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("TRIAGE_DATA_DIR", raising=False)
    settings = WorkerSettings(persons=tmp_path / "p.jsonl", cases=tmp_path / "c.jsonl")
    assert settings.data_dir == tmp_path / "state" / "triage" / "worker-triage"
    assert mode(settings.data_dir) == "0o700"
    assert not str(state_dir(environ={"HOME": "/home/x"})).startswith("/tmp")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triage.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False,
                          preexec_fn=lambda: os.umask(0o022))


def test_the_command_line_writes_events_and_decisions_0600(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    ingest = run("ingest", "cpr-extract", FIXTURE, "--out", events, "--allow-trimmed")
    assert events.exists(), ingest.stderr
    assert mode(events) == "0o600"
    files = write_world(sample_world(), tmp_path)
    out, tasks = tmp_path / "decisions.jsonl", tmp_path / "tasks.jsonl"
    replay = run("replay", files["events"], "--persons", files["persons"], "--cases",
                 files["cases"], "--out", out, "--tasks", tasks, "--quiet")
    assert replay.returncode == 0, replay.stderr
    assert mode(out) == mode(tasks) == "0o600"
