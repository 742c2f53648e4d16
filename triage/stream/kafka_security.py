"""Kafka over TLS and SASL: the ``TRIAGE_KAFKA_*`` settings as client arguments.

A real deployment talks to its Kafka cluster over TLS, usually authenticated with SASL
(SCRAM or PLAIN). The settings (:class:`~triage.stream.settings.WorkerSettings`) name the
protocol, the mechanism, the user, a file holding the password (a mounted Secret: the password
never sits in the environment or in a config file), the CA bundle and, for mutual TLS, a client
certificate and key. :func:`kafka_client_kwargs` turns them into the keyword arguments every
aiokafka client takes (consumer, producer, admin); :func:`faust_broker_credentials` into the
``broker_credentials`` a faust app takes. Every client the worker makes goes through one of
the two, so one set of settings secures them all.

With the default ``PLAINTEXT`` both return nothing to add: the embedded broker needs no more.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from triage.stream.settings import ConfigError, WorkerSettings


def _read_secret(path: Path, variable: str) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror}") from None


def ssl_context(settings: WorkerSettings) -> ssl.SSLContext:
    """A client TLS context: the system's CAs or ``TRIAGE_KAFKA_CA_FILE``, hostname checked;
    the client certificate when one is configured."""
    try:
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ca_file) if settings.kafka_ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TRIAGE_KAFKA_CA_FILE: cannot use {settings.kafka_ca_file}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    if settings.kafka_cert_file is not None and settings.kafka_key_file is not None:
        try:
            context.load_cert_chain(str(settings.kafka_cert_file), str(settings.kafka_key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("TRIAGE_KAFKA_CERT_FILE / TRIAGE_KAFKA_KEY_FILE: cannot use "
                              f"the client certificate: {exc}") from None
    return context


def kafka_client_kwargs(settings: WorkerSettings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaConsumer``, ``AIOKafkaProducer`` and
    ``AIOKafkaAdminClient``: ``security_protocol`` and, as the protocol needs them,
    ``ssl_context``, ``sasl_mechanism``, ``sasl_plain_username``, ``sasl_plain_password``
    (read from ``TRIAGE_KAFKA_SASL_PASSWORD_FILE`` now, so a rotated Secret is picked up by
    the next client made)."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        assert settings.kafka_sasl_password_file is not None  # checked by the settings
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = _read_secret(settings.kafka_sasl_password_file,
                                                     "TRIAGE_KAFKA_SASL_PASSWORD_FILE")
    return kwargs


def faust_broker_credentials(settings: WorkerSettings) -> Any:
    """The same settings as faust's ``broker_credentials`` (``None`` for ``PLAINTEXT``)."""
    import faust

    kwargs = kafka_client_kwargs(settings)
    protocol = kwargs["security_protocol"]
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(kwargs["ssl_context"])
    return faust.SASLCredentials(
        username=kwargs["sasl_plain_username"], password=kwargs["sasl_plain_password"],
        ssl_context=kwargs.get("ssl_context"), mechanism=kwargs["sasl_mechanism"])
