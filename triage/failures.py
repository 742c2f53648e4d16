"""Operator mistakes found before anything starts, each as one line naming what to fix.

The command line (:mod:`triage.cli`) prints an :class:`OperatorError` as ``triage: <message>``
and exits with status 2. The checks here run *before* a command starts processes or binds
ports, so a mistake leaves nothing half-started behind; a check cannot rule out a race (another
process taking the port a moment later), which the command then reports the same way.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from pathlib import Path


class OperatorError(Exception):
    """Something the operator can fix; ``str()`` is one line saying what and how."""


def check_port_free(host: str, port: int, setting: str) -> None:
    """Raise :class:`OperatorError` when ``host:port`` cannot be listened on; ``setting`` is
    the option or variable that chooses it (``--web-port``, ``TRIAGE_WEB_PORT``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OperatorError(f"port {port} on {host} is already in use: stop what "
                                    f"listens there or choose another with {setting}") from None
            raise OperatorError(f"cannot listen on {host}:{port} ({exc.strerror}): "
                                f"choose another host or port with {setting}") from None
        except (TypeError, ValueError, OverflowError) as exc:  # a NUL in the host, a port > 65535
            raise OperatorError(f"cannot listen on {host!r}:{port} ({exc}): choose another "
                                f"host or port with {setting}") from None


_NOISE = ("Traceback", "  File ", "    ", "During handling", "The above exception")


def last_error_line(log: Path, *, markers: Iterable[str] = ("Error", "error", "triage:")) -> str:
    """The line of a process's log most likely to say why it stopped: the last one naming an
    error (a traceback's final line, or our own ``triage: …`` message), else the last line."""
    try:
        lines = [line.rstrip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line.strip() and not line.startswith(_NOISE)]
    for line in reversed(lines):
        if any(marker in line for marker in markers):
            return line.strip()
    return lines[-1].strip() if lines else ""


def check_kafka_reachable(bootstrap: str, setting: str, **client_kwargs: object) -> None:
    """Raise :class:`OperatorError` unless a Kafka broker answers a metadata request at
    ``bootstrap`` (with the TLS/SASL ``client_kwargs`` the real clients will use)."""
    import asyncio
    import logging

    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError, KafkaError

    async def probe() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10_000,
                                    **client_kwargs)
        try:
            await producer.start()
        finally:
            await producer.stop()

    quiet = logging.getLogger("aiokafka")  # its own error lines would repeat ours, less clearly
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        asyncio.run(probe())
    except KafkaConnectionError:
        raise OperatorError(f"{setting} {bootstrap}: no Kafka broker answers there; check the "
                            "address and that the broker runs") from None
    except (KafkaError, OSError) as exc:
        raise OperatorError(f"{setting} {bootstrap}: the broker cannot be used "
                            f"({type(exc).__name__}: {exc}); check the address and the "
                            "TRIAGE_KAFKA_* security settings") from None
    finally:
        quiet.setLevel(level)
