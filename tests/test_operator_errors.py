"""An operator's ordinary mistakes end in one line naming what is wrong and how to fix it, a
non-zero exit status, and nothing half-started left running (issue 12, point 6).

Each test runs the real ``triage`` command in a process, as an operator would, and asserts the
line on stderr and the exit status. "Nothing left running" is checked by looking for any process
that still holds the command's log files open (the broker's and the worker's stdout go there).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from triage.simulate import simulate
from triage.stream.broker import free_port

REPO = Path(__file__).resolve().parent.parent
TRIAGE = [sys.executable, "-m", "triage.cli"]


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    return subprocess.run([*TRIAGE, *map(str, args)], capture_output=True, text=True,
                          env={**clean, **(env or {})}, cwd=cwd, timeout=timeout, check=False)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's stderr, which must be exactly one ``triage: …`` line, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("triage: "), lines[0]
    return lines[0]


def holders(*paths: Path) -> list[int]:
    """Process ids that hold any of ``paths`` open (Linux /proc)."""
    wanted = {str(p.resolve()) for p in paths}
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in wanted for fd in (proc / "fd").iterdir()):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    simulate(folder, seed=1, events=300)
    return folder


def reference(demo: Path) -> dict[str, str]:
    return {"TRIAGE_PERSONS": str(demo / "persons.jsonl"),
            "TRIAGE_CASES": str(demo / "cases.jsonl")}


# --- triage worker: configuration ------------------------------------------------------------


def test_worker_config_that_is_not_toml(tmp_path):
    config = tmp_path / "triage.toml"
    config.write_text('persons = "a.jsonl"\ncases = [\n')
    result = run("worker", "--config", config)
    assert result.returncode == 2
    assert re.fullmatch(rf"triage: configuration: {re.escape(str(config))}: not valid TOML: .+",
                        one_line(result))


def test_worker_config_file_that_does_not_exist(tmp_path):
    result = run("worker", "--config", tmp_path / "nope.toml")
    assert result.returncode == 2
    assert one_line(result) == (f"triage: configuration: {tmp_path / 'nope.toml'}: no such "
                                "configuration file (--config or TRIAGE_CONFIG): give the path "
                                "of a TOML file")


def test_a_missing_setting_is_named_by_its_variable(tmp_path):
    result = run("worker", env={"TRIAGE_CASES": str(tmp_path / "cases.jsonl")})
    assert result.returncode == 2
    line = one_line(result)
    assert "TRIAGE_PERSONS is required" in line and "persons = …" in line
    assert "Field required" not in line


def test_an_empty_variable_counts_as_unset(demo):
    result = run("worker", env={**reference(demo), "TRIAGE_CASES": ""})
    assert result.returncode == 2
    assert "set TRIAGE_CASES (a cases file) or TRIAGE_CASESYSTEM_URL" in one_line(result)


def test_a_bad_value_is_named_by_its_variable(demo):
    result = run("worker", env={**reference(demo), "TRIAGE_WINDOW": "soon"})
    assert result.returncode == 2
    assert one_line(result).startswith("triage: configuration: TRIAGE_WINDOW: not a duration")


def test_an_unknown_key_in_the_config_file(demo, tmp_path):
    config = tmp_path / "triage.toml"
    config.write_text(f'persons = "{demo / "persons.jsonl"}"\n'
                      f'cases = "{demo / "cases.jsonl"}"\nwindwo = "2h"\n')
    result = run("worker", "--config", config)
    assert result.returncode == 2
    assert one_line(result) == ("triage: configuration: windwo: not a setting (see the settings "
                                "table in the README)")


def test_sasl_without_its_credentials(demo):
    result = run("worker", env={**reference(demo), "TRIAGE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    assert result.returncode == 2
    assert one_line(result) == (
        "triage: configuration: TRIAGE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs "
        "TRIAGE_KAFKA_SASL_MECHANISM, TRIAGE_KAFKA_SASL_USERNAME, "
        "TRIAGE_KAFKA_SASL_PASSWORD_FILE")


def test_an_unreadable_sasl_password_file(demo, tmp_path):
    result = run("worker", env={
        **reference(demo), "TRIAGE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "TRIAGE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "TRIAGE_KAFKA_SASL_USERNAME": "triage",
        "TRIAGE_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "missing")})
    assert result.returncode == 2
    assert one_line(result) == (f"triage: configuration: TRIAGE_KAFKA_SASL_PASSWORD_FILE: "
                                f"cannot read {tmp_path / 'missing'}: No such file or directory")


# --- triage worker: what it needs around it --------------------------------------------------


def test_worker_web_port_taken(demo, listening):
    result = run("worker", env={**reference(demo), "TRIAGE_WEB_PORT": str(listening)})
    assert result.returncode == 2
    assert one_line(result) == (f"triage: port {listening} on 127.0.0.1 is already in use: stop "
                                "what listens there or choose another with TRIAGE_WEB_PORT")


def test_worker_with_no_broker_at_the_bootstrap_address(demo):
    dead = f"127.0.0.1:{free_port()}"
    result = run("worker", env={**reference(demo), "TRIAGE_BOOTSTRAP": dead,
                                "TRIAGE_WEB_PORT": str(free_port())})
    assert result.returncode == 2
    assert one_line(result) == (f"triage: TRIAGE_BOOTSTRAP {dead}: no Kafka broker answers "
                                "there; check the address and that the broker runs")


@pytest.mark.kafka
def test_worker_with_an_unreachable_case_system(demo, kafka_broker):
    url = f"http://127.0.0.1:{free_port()}"
    result = run("worker", env={"TRIAGE_PERSONS": str(demo / "persons.jsonl"),
                                "TRIAGE_CASESYSTEM_URL": url,
                                "TRIAGE_BOOTSTRAP": kafka_broker.bootstrap,
                                "TRIAGE_WEB_PORT": str(free_port())})
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"triage: TRIAGE_CASESYSTEM_URL {url}: the case system did not "
                           "answer (")
    assert line.endswith("check the URL and that it runs")


# --- triage casesystem serve, poll-atp, simulate ---------------------------------------------


CASESYSTEM_TOKEN = {"TRIAGE_CASESYSTEM_TOKEN": "operator-errors-token-0123456789"}
"""The reference case system refuses to serve without a token (tested in test_casesystem)."""


def test_casesystem_serve_with_a_bad_cases_file(tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"case_id": "C1"}\n')
    result = run("casesystem", "serve", "--cases", cases, "--port", str(free_port()),
                 env=CASESYSTEM_TOKEN)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"triage: {cases}, line 1: ")
    assert "benefit: Field required" in line and "(fix the file" in line


def test_casesystem_serve_on_a_taken_port(demo, listening):
    result = run("casesystem", "serve", "--cases", demo / "cases.jsonl", "--port",
                 str(listening), env=CASESYSTEM_TOKEN)
    assert result.returncode == 2
    assert one_line(result) == (f"triage: port {listening} on 127.0.0.1 is already in use: stop "
                                "what listens there or choose another with --port")


def test_poll_atp_against_an_unreachable_case_system_with_no_state_fails(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "atp.jsonl"
    result = run("poll-atp", "--casesystem", url, "--out", out, "--rounds", "1",
                 "--state", tmp_path / "state.json")
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"triage: --casesystem {url}: the case system did not answer (")
    assert line.endswith("check the URL and that it runs")
    assert result.stdout == ""  # no "events: 0" that looks like success
    assert not out.exists()


def test_simulate_into_a_file(tmp_path):
    target = tmp_path / "events.jsonl"
    target.write_text("")
    result = run("simulate", target, "--events", "10")
    assert result.returncode == 2
    assert one_line(result) == (f"triage: {target} is a file: give OUTDIR a directory (it is "
                                "created)")


# --- output cut short: | head ----------------------------------------------------------------


def closed_pipe_run(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """Run with stdout a pipe whose reader is already gone: every write fails with EPIPE,
    deterministically (what ``| head`` does once it has its lines)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([*TRIAGE, *map(str, args)], stdout=write,
                              stderr=subprocess.PIPE, timeout=120, check=False)
    finally:
        os.close(write)


def test_rules_facts_into_a_closed_pipe_ends_quietly():
    result = closed_pipe_run("rules", "facts")
    assert result.stderr == b""
    assert result.returncode == 141


def test_replay_summary_into_a_closed_pipe_ends_quietly(demo, tmp_path):
    result = closed_pipe_run("replay", demo / "events.jsonl", "--persons",
                             demo / "persons.jsonl", "--cases", demo / "cases.jsonl",
                             "--out", tmp_path / "decisions.jsonl")
    assert result.stderr == b""
    assert result.returncode == 141
    assert (tmp_path / "decisions.jsonl").stat().st_size > 0  # the work itself was done


def test_rules_check_into_a_closed_pipe_ends_quietly():
    result = closed_pipe_run("rules", "check")
    assert result.stderr == b""
    assert result.returncode == 141


# --- triage dev -------------------------------------------------------------------------------


def test_dev_with_its_web_port_taken_starts_nothing(tmp_path, listening):
    result = run("dev", "--dir", tmp_path / "demo", "--web-port", str(listening),
                 "--events", "100")
    assert result.returncode == 2
    assert one_line(result) == (f"triage: port {listening} on 127.0.0.1 is already in use: stop "
                                "what listens there or choose another with --web-port")
    assert not (tmp_path / "demo").exists()  # not even the demo data was generated


@pytest.mark.slow
@pytest.mark.kafka
def test_dev_when_the_worker_cannot_start_says_why_and_stops_the_broker(demo, tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    for name in ("persons", "cases", "events", "labels"):
        (folder / f"{name}.jsonl").write_bytes((demo / f"{name}.jsonl").read_bytes())
    missing = tmp_path / "no-such-rules.yaml"
    result = run("dev", "--dir", folder, "--web-port", str(free_port()),
                 env={"TRIAGE_RULES": str(missing)})
    assert result.returncode == 2
    assert one_line(result) == (
        f"triage: the worker exited with status 2 while starting: triage: {missing}: cannot "
        f"read rule file: No such file or directory (log: {folder / 'worker.log'})")
    assert holders(folder / "broker.log", folder / "worker.log") == []


@pytest.mark.slow
@pytest.mark.kafka
def test_ctrl_c_while_feeding_stops_everything_cleanly(tmp_path):
    folder = tmp_path / "demo"
    port = free_port()
    process = subprocess.Popen(
        [*TRIAGE, "dev", "--dir", str(folder), "--events", "2000", "--rate", "100",
         "--web-port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # fed once the worker is ready and feeding began
            try:
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                if re.search(r"^triage_events_total\{.*\} [1-9]", metrics, re.M):
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.2)
        else:
            pytest.fail("triage dev never started deciding")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    stderr = err.decode()
    assert process.returncode == 130, stderr  # interrupted, everything stopped
    assert "Task was destroyed but it is pending" not in stderr
    assert "Traceback" not in stderr and stderr.strip() == "", stderr
    assert "stopping …" in out.decode()
    assert holders(folder / "broker.log", folder / "worker.log") == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0)


# --- make ------------------------------------------------------------------------------------


def test_make_replay_demo_does_not_write_into_the_demo_directory():
    plan = subprocess.run(["make", "-n", "replay-demo"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout
    plan = re.sub(r"\\\n\s*", " ", plan)  # join continued lines
    commands = [line for line in plan.splitlines() if "triage " in line]
    assert any("simulate demo-replay" in c for c in commands), plan
    assert any("--out demo-replay/decisions.jsonl" in c for c in commands), plan
    assert not re.search(r"(?<![\w-])demo/", plan), plan


def test_no_code_uses_a_fixed_tmp_path():
    """Temporary files go where the system's temporary directory is (``tempfile``), never to a
    fixed ``/tmp/…`` path that two runs or two users would share."""
    offenders = [f"{path.relative_to(REPO)}:{number}"
                 for folder in ("triage", "connectors", "bench")
                 for path in sorted((REPO / folder).rglob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if re.search(r"""["']/tmp\b""", line)]
    assert offenders == []


def test_poll_dar_whose_every_round_failed_does_not_look_like_success(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result = run("poll-dar", "--url", url, "--out", tmp_path / "dar.jsonl", "--rounds", "1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"triage: --url {url}: every round failed: the replication service did not answer; "
        "check the URL and that it runs")
