"""The deployment files are valid and honest (issue 12, points 1–4).

No container engine or cluster runs here, so each file is checked by the tool that would read
it: Debian's ``docker-compose config`` for the Compose file, the Kubernetes schemas (offline,
``kubernetes-validate``) for the manifests, ``promtool`` for Prometheus' configuration and the
alerts' unit tests; and the Dockerfile's install step is compared with the one CI runs.
"""

from __future__ import annotations

import asyncio
import copy
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer

from triage.dev import create_topics
from triage.probe import probe
from triage.simulate import simulate
from triage.stream.broker import EmbeddedBroker, free_port
from triage.stream.settings import INPUT_TOPICS, OUTPUT_TOPICS, ROUTED_TOPIC, WorkerSettings

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
PROMETHEUS = DEPLOY / "prometheus"
KUBERNETES_VERSION = "1.37.0"

# The shared metric contract (README, "Metrics"): the names alerts may use.
CONTRACT_METRICS = {
    "triage_events_total", "triage_decisions_total", "triage_tasks_created_total",
    "triage_tasks_delivered_total", "triage_deadletters_total", "triage_lookup_failures_total",
    "triage_late_events_total", "triage_decision_latency_seconds",
    "triage_consumer_lag_records", "triage_open_household_moves", "triage_waiting_events",
    "triage_rebuilds_total", "triage_rebuild_duration_seconds", "triage_ruleset_info",
    "triage_rules_reloads_total", "triage_shadow_decisions_total",
    "triage_casesystem_requests_total",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: `make test` installs it (scripts/ensure-debs)"
    return path


# --- Dockerfile and the install CI runs ------------------------------------------------------


def makefile_pip_install() -> str:
    match = re.search(r"^PIP_INSTALL\s*:=\s*(.+)$", (REPO / "Makefile").read_text(), re.M)
    assert match, "the Makefile defines PIP_INSTALL"
    return match.group(1).strip()


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), per stage."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_the_dockerfile_installs_exactly_as_make_setup_does():
    pip = makefile_pip_install()
    assert "-c constraints.txt" in pip
    make_setup = (REPO / "Makefile").read_text()
    assert "$(BIN)/$(PIP_INSTALL) -e '.[test]'" in make_setup  # CI: the same, plus the tests
    build, _final = dockerfile_stages()
    installs = [line for line in build if "pip install" in line and "-c " in line]
    assert len(installs) == 1 and f"{pip} ." in installs[0], installs
    assert any(line.startswith("COPY") and "constraints.txt" in line for line in build)


def test_the_final_image_is_slim_non_root_without_build_tools_and_checks_health():
    build, final = dockerfile_stages()
    assert build[0].startswith("FROM python:3.11-slim") and " AS build" in build[0]
    assert final[0].startswith("FROM python:3.11-slim")
    assert any("build-essential" in line for line in build)
    assert not any("apt-get install" in line or "build-essential" in line for line in final)
    user = [line for line in final if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root")
    health = [line for line in final if line.startswith("HEALTHCHECK")]
    assert health and "triage.probe" in health[0] and "/health" in health[0]
    env = " ".join(line for line in final if line.startswith("ENV"))
    assert "TRIAGE_RULES=/etc/triage/rules/default.yaml" in env  # the mount point for rules
    assert "TRIAGE_WEB_HOST=0.0.0.0" in env
    assert any("rules/default.yaml /etc/triage/rules/default.yaml" in line for line in final)
    assert final[-2:] == ['ENTRYPOINT ["triage"]', 'CMD ["worker"]']


def test_the_dockerignore_lets_in_exactly_what_the_dockerfile_copies():
    rules = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"  # everything else (.venv, demo/, tests) stays out of the context
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = {src.rstrip("/").removeprefix("./") for stage in dockerfile_stages()
              for line in stage if line.startswith("COPY ") and "--from" not in line
              for src in line.split()[1:-1]}
    assert copied == allowed
    for path in allowed:
        assert (REPO / path).exists(), path


def test_constraints_pin_every_dependency_at_the_version_pyproject_names():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    for requirement in wanted:
        name, _, version = requirement.partition("==")
        key = re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()  # extras: same package
        assert key in pins, f"{name} is not in constraints.txt: run scripts/lock"
        if version:
            assert pins[key] == version, f"{name}: pyproject {version}, constraints " \
                f"{pins[key]}: run scripts/lock"


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_health_check_probe(web):
    assert probe("/health", port=web) is None
    assert probe("/ready", port=web) == f"http://127.0.0.1:{web}/ready: status 503"
    closed = free_port()
    assert probe("/health", port=closed).startswith(f"http://127.0.0.1:{closed}/health: no ")
    run = subprocess.run([sys.executable, "-m", "triage.probe", "/ready"], capture_output=True,
                         text=True, env={"TRIAGE_WEB_PORT": str(web)}, check=False)
    assert run.returncode == 1 and run.stderr.startswith("unhealthy: ")
    run = subprocess.run([sys.executable, "-m", "triage.probe"], capture_output=True,
                         text=True, env={"TRIAGE_WEB_PORT": str(web)}, check=False)
    assert run.returncode == 0, run.stderr


# --- Compose ---------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_docker_compose_accepts_the_compose_file():
    run = subprocess.run([tool("docker-compose"), "-f", str(DEPLOY / "compose.yaml"), "config",
                          "--quiet"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    resolved = subprocess.run([tool("docker-compose"), "-f", str(DEPLOY / "compose.yaml"),
                               "config"], capture_output=True, text=True, check=True).stdout
    services = yaml.safe_load(resolved)["services"]
    assert {"kafka", "topics", "casesystem", "worker-1", "worker-2", "prometheus",
            "grafana"} <= set(services)


def test_compose_runs_kafka_in_kraft_mode_and_creates_every_topic():
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "ZOOKEEPER" not in " ".join(kafka["environment"])
    script = services["topics"]["command"][0]
    for topic in (*INPUT_TOPICS, *OUTPUT_TOPICS):
        assert re.search(rf"\b{re.escape(topic)}\b.*; do create \"\$\$topic\" 3", script), topic
    assert f"create {ROUTED_TOPIC} 1" in script  # one journal partition per municipality


def test_compose_workers_share_one_consumer_group_and_are_what_prometheus_scrapes():
    services = compose()["services"]
    workers = [services["worker-1"], services["worker-2"]]
    assert workers[0]["environment"] == workers[1]["environment"]
    env = workers[0]["environment"]
    assert env["TRIAGE_APP_ID"] == "triage" and env["TRIAGE_BOOTSTRAP"] == "kafka:9092"
    assert env["TRIAGE_CASESYSTEM_URL"] == "http://casesystem:8080"
    settings = {f"TRIAGE_{name.upper()}" for name in WorkerSettings.model_fields}
    pending = {"TRIAGE_VIEWER_TOKEN", "TRIAGE_OPERATOR_TOKEN"}  # settings of other branches
    assert set(env) - settings <= pending
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "triage")
    targets = {t for c in job["static_configs"] for t in c["targets"]}
    assert targets == {"worker-1:6066", "worker-2:6066"}


def test_compose_mounts_only_files_the_repository_has():
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"


# --- Kubernetes ------------------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return {name: yaml.safe_load((K8S / name).read_text())
            for name in kustomization["resources"]}


def test_every_manifest_validates_against_the_kubernetes_schemas():
    listed = set(manifests())
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present  # nothing forgotten in kustomization.yaml
    for name, resource in manifests().items():
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"deploy/k8s/{name}: {exc}")


def test_the_schema_check_would_catch_a_mistake():
    broken = copy.deepcopy(manifests()["deployment.yaml"])
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_worker_pod_is_locked_down_probed_and_bounded():
    deployment = manifests()["deployment.yaml"]
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] >= 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (worker,) = pod["containers"]
    security = worker["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert worker["livenessProbe"]["httpGet"]["path"] == "/health"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert worker["resources"]["requests"] and worker["resources"]["limits"]["memory"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    config = manifests()["config.yaml"]["data"]
    assert "emptyDir" in volumes[mounts[config["TRIAGE_DATA_DIR"]]]  # the writable data
    assert "emptyDir" in volumes[mounts["/tmp"]]
    rules_dir = str(Path(config["TRIAGE_RULES"]).parent)
    assert volumes[mounts[rules_dir]]["configMap"]["name"] == "triage-rules"
    secret_dir = str(Path(config["TRIAGE_KAFKA_SASL_PASSWORD_FILE"]).parent)
    assert volumes[mounts[secret_dir]]["secret"]["secretName"] == "triage-secrets"
    secret = manifests()["secret.yaml"]["stringData"]
    for variable in ("TRIAGE_KAFKA_SASL_PASSWORD_FILE", "TRIAGE_KAFKA_CA_FILE"):
        assert Path(config[variable]).name in secret
    for env in worker["env"]:
        if "valueFrom" in env:
            assert env["valueFrom"]["secretKeyRef"]["key"] in secret


def test_the_config_map_holds_worker_settings_only():
    settings = {f"TRIAGE_{name.upper()}" for name in WorkerSettings.model_fields}
    config = manifests()["config.yaml"]["data"]
    assert set(config) <= settings, set(config) - settings
    secret = {"viewer_token": "from the Secret"}  # the Deployment adds it from triage-secrets
    WorkerSettings.model_validate({**{k.removeprefix("TRIAGE_").lower(): v
                                      for k, v in config.items()}, **secret})  # valid, too


def test_the_rules_config_map_is_the_shipped_ruleset():
    data = manifests()["rules.yaml"]["data"]
    assert data["default.yaml"] == (REPO / "rules" / "default.yaml").read_text(), \
        "deploy/k8s/rules.yaml is stale: run scripts/render-k8s-rules"


def test_a_pod_disruption_budget_keeps_a_worker_and_the_network_is_fenced():
    labels = manifests()["deployment.yaml"]["spec"]["selector"]["matchLabels"]
    pdb = manifests()["pdb.yaml"]["spec"]
    assert pdb["minAvailable"] == 1 and pdb["selector"]["matchLabels"] == labels
    policy = manifests()["networkpolicy.yaml"]["spec"]
    assert policy["podSelector"]["matchLabels"] == labels
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [6066]
    service = manifests()["service.yaml"]["spec"]
    assert service["selector"] == labels and service["ports"][0]["port"] == 6066


# --- Prometheus ------------------------------------------------------------------------------


def test_promtool_accepts_the_prometheus_configuration_and_its_rules():
    run = subprocess.run([tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 rule files found" in run.stdout + run.stderr


def test_the_alerts_pass_their_promtool_unit_tests():
    run = subprocess.run([tool("promtool"), "test", "rules", "alerts_test.yml"],
                         cwd=PROMETHEUS, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout + run.stderr


def test_every_alert_is_unit_tested_and_uses_contract_metric_names():
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert {"TriageWorkerDown", "TriageConsumerLagGrowing", "TriageDeadLetters",
            "TriageCouldNotCheck", "TriageLateEvents", "TriageRulesReloadRejected",
            "TriageShadowDisagrees"} <= set(alerts)
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"]
             if case["exp_alerts"]}
    assert fired == set(alerts)  # each alert is shown firing at least once
    for name, rule in alerts.items():
        used = set(re.findall(r"\btriage_[a-z_]+\b", rule["expr"]))
        assert used <= CONTRACT_METRICS, (name, used - CONTRACT_METRICS)
        anchor = rule["annotations"]["runbook"].split("#")[1]
        assert anchor == name.lower()


# --- triage feed (the Compose file's feeder) -------------------------------------------------


@pytest.mark.kafka
def test_triage_feed_produces_every_line_to_its_topic(tmp_path):
    simulate(tmp_path, seed=3, events=200)
    lines = [line for line in (tmp_path / "events.jsonl").read_bytes().splitlines() if line]
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker, partitions=3)
        run = subprocess.run([sys.executable, "-m", "triage.cli", "feed",
                              str(tmp_path / "events.jsonl"), "--kafka", broker.bootstrap,
                              "--rate", "5000"], capture_output=True, text=True, timeout=120,
                             check=False)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == f"fed {len(lines)} events to {broker.bootstrap}"
        got = asyncio.run(_read_all(broker.bootstrap, len(lines)))
    assert sorted(got) == sorted(lines)
    first = orjson.loads(lines[0])
    assert first["source"] in ("cpr", "dar", "atp")


async def _read_all(bootstrap: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(*INPUT_TOPICS, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=50)
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < expected:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), timeout=60)
            values += [m.value for messages in batch.values() for m in messages]
        return values
    finally:
        await consumer.stop()
