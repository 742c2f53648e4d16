"""Worker configuration: environment variables (``TRIAGE_…``) over a TOML file over defaults.

Every setting has a default that runs the embedded demo; an operator overrides what differs in
production. Precedence, highest first: the environment, the file named by ``TRIAGE_CONFIG`` (or
``--config``), the defaults below. Durations are strings like ``24h``, ``90m``, ``3s``, ``10ms``.
In the TOML file a setting is its lower-case name without the prefix (``persons = "…"``).

The README's settings table lists every field of :class:`WorkerSettings` with its default (a
test compares the two). A configuration that cannot be used raises :class:`ConfigError` (or
pydantic's ``ValidationError``, which :func:`describe_settings_error` turns into one line naming
the ``TRIAGE_…`` variables, never a value).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from triage.core import DurationTooLong, parse_window
from triage.eventtime import DEFAULT_LATENESS, DEFAULT_MAX_JUMP
from triage.private_files import private_dir, state_dir
from triage.rules import DEFAULT_RULES

if TYPE_CHECKING:
    from connectors.casesystem.client import CaseSystemClient

INPUT_TOPICS = ("cpr.events", "dar.events", "atp.events")
OUTPUT_TOPICS = ("triage.decisions", "triage.tasks", "triage.deadletter", "triage.shadow",
                 "triage.audit")
ROUTED_TOPIC = "triage.routed"
KIND_HEADER = "triage-kind"
"""Header of records that are not events: journal ticks, producer heartbeats."""
TICK = b"tick"
HEARTBEAT = b"heartbeat"
OVERSIZED = b"oversized"
"""A journal record standing for an input message larger than the maximum message size."""


class WorkerSettings(BaseSettings):
    """Everything ``triage worker`` and ``triage dev`` need to run."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", extra="forbid",
                                      env_ignore_empty=True)

    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "triage"
    persons: Path
    cases: Path | None = None
    casesystem_url: str | None = None
    casesystem_token: SecretStr | None = None
    casesystem_token_file: Path | None = None
    rules: Path = DEFAULT_RULES
    shadow_rules: Path | None = None
    operator_token: SecretStr | None = None
    operator_token_file: Path | None = None
    window: timedelta = timedelta(hours=24)
    municipality: str = "0561"
    input_partitions: int = Field(default=3, ge=1)
    web_port: int = Field(default=6066, ge=0, le=65535)  # else bind() raises OverflowError
    web_host: str = "127.0.0.1"
    session_timeout: timedelta = timedelta(seconds=3)
    fetch_wait: timedelta = timedelta(milliseconds=10)
    tick: timedelta = timedelta(seconds=1)
    lateness: timedelta = DEFAULT_LATENESS
    max_clock_jump: timedelta = DEFAULT_MAX_JUMP
    max_idle: timedelta = timedelta(milliseconds=50)
    max_message_bytes: int = Field(default=512 * 1024, ge=1)
    checkpoint_interval: int = 20_000
    checkpoint_dir: Path | None = None
    checkpoint_key: SecretStr | None = None
    data_dir: Path = Field(
        default_factory=lambda data: state_dir(f"worker-{data.get('app_id', 'triage')}"))
    """Never a fixed, shared ``/tmp`` path: by default a per-user directory (see the table)."""

    # Kafka over TLS and SASL (triage.stream.kafka_security turns these into client kwargs).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ca_file: Path | None = None
    kafka_cert_file: Path | None = None
    kafka_key_file: Path | None = None
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
        try:  # timedelta raises OverflowError, which pydantic would let through, for 1e12ms
            if isinstance(value, str) and value[-2:] == "ms" and value[:-2].isdigit():
                return timedelta(milliseconds=int(value[:-2]))
            return parse_window(value) if isinstance(value, str) else value
        except (OverflowError, DurationTooLong):
            raise ValueError("too long a duration") from None
        except ValueError:  # parse_window's message quotes the value: never shown (see above)
            raise ValueError("not a duration (use e.g. 24h, 90m, 3600s, 2d or 10ms)") from None

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
    def _kafka_security_complete(self) -> WorkerSettings:
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl:
            missing = [f"TRIAGE_{name.upper()}" for name in
                       ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password_file")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError(f"TRIAGE_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} "
                                 f"needs {', '.join(missing)}")
        elif self.kafka_sasl_mechanism is not None:
            raise ValueError("TRIAGE_KAFKA_SASL_MECHANISM is set but "
                             "TRIAGE_KAFKA_SECURITY_PROTOCOL is not SASL_PLAINTEXT or SASL_SSL")
        if (self.kafka_cert_file is None) != (self.kafka_key_file is None):
            raise ValueError("set both TRIAGE_KAFKA_CERT_FILE and TRIAGE_KAFKA_KEY_FILE "
                             "(a client certificate and its key), or neither")
        return self

    def casesystem_client(self, **options: Any) -> CaseSystemClient:
        """A client of the configured case system, with the configured credentials."""
        from connectors.casesystem.client import CaseSystemClient

        assert self.casesystem_url is not None
        token = (self.casesystem_token.get_secret_value()
                 if self.casesystem_token is not None else None)
        return CaseSystemClient(self.casesystem_url, token=token,
                                token_file=self.casesystem_token_file if token is None else None,
                                **options)

    @model_validator(mode="after")
    def _private_data_dir(self) -> WorkerSettings:
        """The data directory exists, is this user's and is ``0700`` (faust keeps offsets and
        table data there)."""
        try:  # an OSError would pass through pydantic as a traceback
            private_dir(self.data_dir)
        except OSError as exc:
            raise ValueError(f"TRIAGE_DATA_DIR: {exc.strerror or exc}") from None
        return self

    @model_validator(mode="after")
    def _page_needs_loopback_or_token(self) -> WorkerSettings:
        if self.viewer_token is None and not is_loopback(self.web_host):
            raise ValueError(f"TRIAGE_WEB_HOST {self.web_host} is not a loopback address: set "
                             "TRIAGE_VIEWER_TOKEN, since the page shows case ids")
        return self

    def operator_secret(self) -> str | None:
        """The operator token (``TRIAGE_OPERATOR_TOKEN`` or the file
        ``TRIAGE_OPERATOR_TOKEN_FILE``); None: the changing endpoints are disabled."""
        if self.operator_token is not None:
            return self.operator_token.get_secret_value() or None
        if self.operator_token_file is not None:
            try:
                return self.operator_token_file.read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                raise ConfigError(f"TRIAGE_OPERATOR_TOKEN_FILE: cannot read "
                                  f"{self.operator_token_file}: {exc.strerror}") from None
        return None

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
            config = Path(path)
            if not config.is_file():
                raise ConfigError(f"{config}: no such configuration file (--config or "
                                  "TRIAGE_CONFIG): give the path of a TOML file")
            try:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{config}: not valid TOML: {exc}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{config}: cannot read: {exc}") from None
            except RecursionError:  # tomllib parses [[[…]]] recursively
                raise ConfigError(f"{config}: not valid TOML: nested too deeply") from None
        return tuple(sources)


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is one line naming what to fix."""


def describe_settings_error(exc: ValidationError) -> str:
    """One line for the operator: each problem named by its ``TRIAGE_…`` variable (the TOML
    key is the same name in lower case, without the prefix), never the value given."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = err["loc"]
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:
            parts.append(msg)
            continue
        name = f"TRIAGE_{str(loc[0]).upper()}"
        if err["type"] == "missing":
            parts.append(f"{name} is required (set it in the environment, or "
                         f"{loc[0]} = … in the --config file)")
        elif err["type"] == "extra_forbidden":
            parts.append(f"{loc[0]}: not a setting (see the settings table in the README)")
        else:
            parts.append(f"{name}: {msg}")
    return "; ".join(parts)


def default_data_dir() -> Path:
    """The data directory when ``TRIAGE_DATA_DIR`` is not set."""
    return state_dir("worker-triage")

def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
