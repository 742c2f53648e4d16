"""Worker configuration: environment variables (``TRIAGE_…``) over a TOML file over defaults.

Every setting has a default that runs the embedded demo; an operator overrides what differs in
production. Precedence, highest first: the environment, the file named by ``TRIAGE_CONFIG`` (or
``--config``), the defaults below. Durations are strings like ``24h``, ``90m``, ``3s``.

==========================  ====================================================================
``TRIAGE_BOOTSTRAP``        Kafka bootstrap servers (default ``127.0.0.1:9092``)
``TRIAGE_APP_ID``           consumer group and prefix of internal topics (default ``triage``)
``TRIAGE_PERSONS``          persons snapshot, JSON Lines (required)
``TRIAGE_CASES``            active cases, JSON Lines (required unless the case system is used)
``TRIAGE_CASESYSTEM_URL``   the case system's API (e.g. ``http://127.0.0.1:8080``): cases are
                            loaded and looked up there, and raised tasks delivered there
``TRIAGE_RULES``            rule file (default: the shipped ``rules/default.yaml``)
``TRIAGE_WINDOW``           household correlation window (default ``24h``)
``TRIAGE_MUNICIPALITY``     the municipality this deployment serves: the routing key (``0561``)
``TRIAGE_INPUT_PARTITIONS`` partitions of the input and output topics (default 3)
``TRIAGE_WEB_PORT``         health, readiness and metrics HTTP port (default 6066)
``TRIAGE_SESSION_TIMEOUT``  consumer group session timeout (default ``3s``; a join takes half)
``TRIAGE_FETCH_WAIT``       longest a fetch waits for data (default ``10ms``; faust's 1.5 s adds
                            about that much latency)
``TRIAGE_TICK``             how often the worker records the wall clock as event time, so a
                            quiet stream still closes its windows (default ``1s``); only
                            while every input partition it owns is read to its end
``TRIAGE_LATENESS``         allowed lateness: how far behind a later-registered event an event
                            may arrive and still be decided in its event-time place (``1h``)
``TRIAGE_MAX_CLOCK_JUMP``   how far one event may move event time ahead on its own (``7d``)
``TRIAGE_MAX_IDLE``         how long the router waits for an input partition that has nothing
                            buffered and nothing unread before merging without it (``50ms``)
``TRIAGE_MAX_MESSAGE_BYTES`` the largest input message accepted (default 524288); a larger one
                            is dead-lettered with its first KiB and a reference to it
``TRIAGE_CHECKPOINT_INTERVAL`` journal records between checkpoints of the decider's state
                            (default 20000; 0: none, a restart replays the whole journal)
``TRIAGE_CHECKPOINT_DIR``   where checkpoints are kept (default ``<data dir>/checkpoints``):
                            shared by the workers that may take a journal partition over
``TRIAGE_CHECKPOINT_KEY``   HMAC key of the checkpoints (default: a key file in that directory)
``TRIAGE_DATA_DIR``         faust's local data directory (default a temporary directory)
``TRIAGE_DECISION_LOG``     the decision log: ``sqlite:///path`` or ``postgresql://…`` (default
                            a SQLite file in the data directory; ``off``: none)
``TRIAGE_DECISION_LOG_GROUP`` its consumer group (default ``<app id>-decisionlog``)
``TRIAGE_DECISION_RETENTION`` how long decisions are kept, by ``decided_at`` (default ``90d``)
``TRIAGE_VIEWER_TOKEN``     token for the page and its API (which show case ids); without it
                            the web port must be bound to loopback
==========================  ====================================================================
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from triage.core import parse_window
from triage.eventtime import DEFAULT_LATENESS, DEFAULT_MAX_JUMP
from triage.rules import DEFAULT_RULES

INPUT_TOPICS = ("cpr.events", "dar.events", "atp.events")
OUTPUT_TOPICS = ("triage.decisions", "triage.tasks", "triage.deadletter")
ROUTED_TOPIC = "triage.routed"
KIND_HEADER = "triage-kind"
"""Header of records that are not events: journal ticks, producer heartbeats."""
TICK = b"tick"
HEARTBEAT = b"heartbeat"
OVERSIZED = b"oversized"
"""A journal record standing for an input message larger than the maximum message size."""


class WorkerSettings(BaseSettings):
    """Everything ``triage worker`` and ``triage dev`` need to run."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", extra="forbid")

    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "triage"
    persons: Path
    cases: Path | None = None
    casesystem_url: str | None = None
    rules: Path = DEFAULT_RULES
    window: timedelta = timedelta(hours=24)
    municipality: str = "0561"
    input_partitions: int = 3
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    session_timeout: timedelta = timedelta(seconds=3)
    fetch_wait: timedelta = timedelta(milliseconds=10)
    tick: timedelta = timedelta(seconds=1)
    lateness: timedelta = DEFAULT_LATENESS
    max_clock_jump: timedelta = DEFAULT_MAX_JUMP
    max_idle: timedelta = timedelta(milliseconds=50)
    max_message_bytes: int = 512 * 1024
    checkpoint_interval: int = 20_000
    checkpoint_dir: Path | None = None
    checkpoint_key: SecretStr | None = None
    data_dir: Path = Path(tempfile.gettempdir()) / "triage-worker"
    decision_log: str | None = None
    decision_log_group: str | None = None
    decision_retention: timedelta = timedelta(days=90)
    viewer_token: SecretStr | None = None

    @field_validator("window", "session_timeout", "fetch_wait", "tick", "lateness",
                     "max_clock_jump", "max_idle", "decision_retention", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() in ("0", "0s", "0ms"):
            return timedelta(0)
        if isinstance(value, str) and value[-2:] == "ms" and value[:-2].isdigit():
            return timedelta(milliseconds=int(value[:-2]))
        return parse_window(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _bound_beyond_lateness(self) -> WorkerSettings:
        if self.max_clock_jump <= self.lateness:
            raise ValueError("TRIAGE_MAX_CLOCK_JUMP must be larger than TRIAGE_LATENESS")
        return self

    @model_validator(mode="after")
    def _cases_from_somewhere(self) -> WorkerSettings:
        if self.cases is None and self.casesystem_url is None:
            raise ValueError("set TRIAGE_CASES (a cases file) or TRIAGE_CASESYSTEM_URL")
        return self

    @model_validator(mode="after")
    def _page_needs_loopback_or_token(self) -> WorkerSettings:
        if self.viewer_token is None and not is_loopback(self.web_host):
            raise ValueError(f"TRIAGE_WEB_HOST {self.web_host} is not a loopback address: set "
                             "TRIAGE_VIEWER_TOKEN, since the page shows case ids")
        return self

    @property
    def decision_log_url(self) -> str | None:
        """The decision log's URL, or None when it is off."""
        if self.decision_log is None:
            return f"sqlite:///{self.data_dir / 'decisions.sqlite3'}"
        return None if self.decision_log.strip().lower() in ("off", "none", "") \
            else self.decision_log

    @field_validator("municipality", mode="before")
    @classmethod
    def _municipality(cls, value: Any) -> Any:
        return value.zfill(4) if isinstance(value, str) and value.isdigit() else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import TomlConfigSettingsSource

        path = os.environ.get("TRIAGE_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)


def default_data_dir() -> Path:
    """The data directory when ``TRIAGE_DATA_DIR`` is not set."""
    return Path(tempfile.gettempdir()) / "triage-worker"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
