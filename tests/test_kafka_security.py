"""The ``TRIAGE_KAFKA_*`` settings become the arguments real aiokafka and faust clients take."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import ValidationError

from triage.stream.kafka_security import faust_broker_credentials, kafka_client_kwargs
from triage.stream.settings import ConfigError, WorkerSettings, describe_settings_error

TLS = Path(__file__).parent / "fixtures" / "tls"


def settings(tmp_path: Path, **kafka: object) -> WorkerSettings:
    return WorkerSettings(persons=tmp_path / "p.jsonl", cases=tmp_path / "c.jsonl",
                          data_dir=tmp_path, **kafka)  # type: ignore[arg-type]


def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text("s3cret\n")
    return path


def test_plaintext_adds_nothing(tmp_path):
    s = settings(tmp_path)
    assert kafka_client_kwargs(s) == {"security_protocol": "PLAINTEXT"}
    assert faust_broker_credentials(s) is None


async def test_ssl_with_a_ca_file_and_a_client_certificate(tmp_path):
    s = settings(tmp_path, kafka_security_protocol="SSL", kafka_ca_file=TLS / "test-ca.pem",
                 kafka_cert_file=TLS / "test-client.pem", kafka_key_file=TLS / "test-client.key")
    kwargs = kafka_client_kwargs(s)
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert any("triage-test-only" in str(c["subject"]) for c in context.get_ca_certs())
    AIOKafkaProducer(bootstrap_servers="kafka:9093", **kwargs)  # the real client accepts them
    assert isinstance(faust_broker_credentials(s), faust.SSLCredentials)


async def test_sasl_ssl_reads_the_password_from_its_file(tmp_path):
    s = settings(tmp_path, kafka_security_protocol="SASL_SSL",
                 kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="triage",
                 kafka_sasl_password_file=password_file(tmp_path),
                 kafka_ca_file=TLS / "test-ca.pem")
    kwargs = kafka_client_kwargs(s)
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "triage"
    assert kwargs["sasl_plain_password"] == "s3cret"  # the trailing newline of the file dropped
    consumer = AIOKafkaConsumer(bootstrap_servers="kafka:9093", **kwargs)
    assert consumer._client._security_protocol == "SASL_SSL"
    credentials = faust_broker_credentials(s)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "triage" and credentials.ssl_context is not None


def test_sasl_plaintext_has_no_tls(tmp_path):
    s = settings(tmp_path, kafka_security_protocol="SASL_PLAINTEXT",
                 kafka_sasl_mechanism="PLAIN", kafka_sasl_username="triage",
                 kafka_sasl_password_file=password_file(tmp_path))
    assert "ssl_context" not in kafka_client_kwargs(s)


def test_incomplete_security_settings_name_what_is_missing(tmp_path):
    with pytest.raises(ValidationError) as sasl:
        settings(tmp_path, kafka_security_protocol="SASL_SSL", kafka_sasl_username="u")
    assert describe_settings_error(sasl.value) == (
        "TRIAGE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs TRIAGE_KAFKA_SASL_MECHANISM, "
        "TRIAGE_KAFKA_SASL_PASSWORD_FILE")
    with pytest.raises(ValidationError) as half_cert:
        settings(tmp_path, kafka_security_protocol="SSL", kafka_cert_file=TLS / "test-client.pem")
    assert "TRIAGE_KAFKA_CERT_FILE and TRIAGE_KAFKA_KEY_FILE" in describe_settings_error(
        half_cert.value)
    with pytest.raises(ValidationError) as protocol:
        settings(tmp_path, kafka_security_protocol="TLS")
    assert describe_settings_error(protocol.value).startswith("TRIAGE_KAFKA_SECURITY_PROTOCOL: ")


def test_a_ca_file_that_is_not_a_certificate(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"^TRIAGE_KAFKA_CA_FILE: cannot use "):
        kafka_client_kwargs(settings(tmp_path, kafka_security_protocol="SSL", kafka_ca_file=bad))
