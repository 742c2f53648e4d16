"""The municipal case system: what the service calls on it, a client, and a reference server.

* ``openapi.yaml`` — the OpenAPI 3.1 description (:func:`spec_path`, :func:`load_spec`).
* :class:`~connectors.casesystem.client.CaseSystemClient` — the client: timeout, retries with
  backoff and jitter, circuit breaker, per-person cache; :class:`LookupUnavailable` when the case
  system cannot answer (the service then raises "could not be checked", DOMAIN.md).
* :class:`~connectors.casesystem.server.ReferenceCaseSystem` — a reference server over JSON Lines
  files, with failure simulation for resilience tests; :func:`run_reference_server` for the CLI.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from connectors.casesystem.client import (
    CaseSystemClient,
    CaseSystemError,
    LookupUnavailable,
    TaskConflict,
    TaskRejected,
)
from connectors.casesystem.resilience import CircuitBreaker, CircuitOpen, TTLCache, retry
from connectors.casesystem.server import ReferenceCaseSystem, run_reference_server, serve_forever

__all__ = [
    "CaseSystemClient",
    "CaseSystemError",
    "CircuitBreaker",
    "CircuitOpen",
    "LookupUnavailable",
    "ReferenceCaseSystem",
    "TTLCache",
    "TaskConflict",
    "TaskRejected",
    "load_spec",
    "retry",
    "run_reference_server",
    "serve_forever",
    "spec_path",
]


def spec_path() -> Path:
    """Where ``openapi.yaml`` lives (inside this package)."""
    return Path(str(resources.files(__name__).joinpath("openapi.yaml")))


def load_spec() -> dict[str, Any]:
    import yaml

    with spec_path().open(encoding="utf-8") as fh:
        spec: dict[str, Any] = yaml.safe_load(fh)
    return spec
