"""The shared Kafka security configuration: env/file parsing and both clients' settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from coinfeed.devcluster.config import ClusterSpec, broker_properties
from coinfeed.kafka import admin_config, consumer_config, producer_config
from coinfeed.kafka_acls import operator_grants, producer_grants, reader_grants
from coinfeed.kafka_security import (
    KafkaSecurity,
    KafkaSecurityError,
    jaas_config,
    kafka_python_settings,
    security_from_env,
    spark_kafka_options,
)

SECRET = 's3cr3t-"quoted"-\\back'


def sasl_env(tmp_path: Path) -> dict[str, str]:
    pw = tmp_path / "password"
    pw.write_text(SECRET + "\n", encoding="utf-8")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    return {
        "COINFEED_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "COINFEED_KAFKA_SASL_USERNAME": "producer-btc",
        "COINFEED_KAFKA_SASL_PASSWORD_FILE": str(pw),
        "COINFEED_KAFKA_SSL_CAFILE": str(ca),
    }


def test_plaintext_by_default_changes_no_client_setting() -> None:
    sec = security_from_env({})
    assert sec.protocol == "PLAINTEXT"
    assert kafka_python_settings(sec) == {}
    assert spark_kafka_options(sec) == {}
    assert "security_protocol" not in producer_config("h:1", security=sec)


def test_sasl_ssl_from_env_and_mounted_file(tmp_path: Path) -> None:
    sec = security_from_env(sasl_env(tmp_path))
    # The trailing newline of a mounted Secret is not part of the password.
    assert sec.password == SECRET
    assert SECRET not in repr(sec)
    kp = kafka_python_settings(sec)
    assert kp == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "producer-btc",
        "sasl_plain_password": SECRET,
        "ssl_check_hostname": True,
        "ssl_cafile": str(tmp_path / "ca.pem"),
    }
    for cfg in (
        producer_config("h:1", security=sec),
        consumer_config("h:1", security=sec),
        admin_config("h:1", security=sec),
    ):
        assert cfg["security_protocol"] == "SASL_SSL"
        assert cfg["sasl_plain_password"] == SECRET


def test_spark_options_use_jaas_and_a_pem_truststore(tmp_path: Path) -> None:
    sec = security_from_env(sasl_env(tmp_path))
    opts = spark_kafka_options(sec)
    assert opts["kafka.security.protocol"] == "SASL_SSL"
    assert opts["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert opts["kafka.ssl.truststore.type"] == "PEM"
    assert opts["kafka.ssl.truststore.location"] == str(tmp_path / "ca.pem")
    assert opts["kafka.ssl.endpoint.identification.algorithm"] == "https"
    assert all(k.startswith("kafka.") for k in opts)
    # Quotes and backslashes in the password are escaped inside the JAAS string.
    assert opts["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="producer-btc" password="s3cr3t-\\"quoted\\"-\\\\back";'
    )


def test_client_certificate_is_passed_inline_to_java(tmp_path: Path) -> None:
    env = sasl_env(tmp_path)
    (tmp_path / "c.pem").write_text("CERT", encoding="utf-8")
    (tmp_path / "k.pem").write_text("KEY", encoding="utf-8")
    env |= {
        "COINFEED_KAFKA_SSL_CERTFILE": str(tmp_path / "c.pem"),
        "COINFEED_KAFKA_SSL_KEYFILE": str(tmp_path / "k.pem"),
    }
    sec = security_from_env(env)
    assert kafka_python_settings(sec)["ssl_certfile"] == str(tmp_path / "c.pem")
    opts = spark_kafka_options(sec)
    assert opts["kafka.ssl.keystore.type"] == "PEM"
    assert opts["kafka.ssl.keystore.certificate.chain"] == "CERT"
    assert opts["kafka.ssl.keystore.key"] == "KEY"


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"COINFEED_KAFKA_SECURITY_PROTOCOL": "TLS"}, "COINFEED_KAFKA_SECURITY_PROTOCOL"),
        ({"COINFEED_KAFKA_SASL_USERNAME": ""}, "COINFEED_KAFKA_SASL_USERNAME"),
        ({"COINFEED_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"}, "/nonexistent/pw"),
        ({"COINFEED_KAFKA_SASL_MECHANISM": "PLAIN"}, "COINFEED_KAFKA_SASL_MECHANISM"),
        ({"COINFEED_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "COINFEED_KAFKA_SSL_CAFILE"),
        ({"COINFEED_KAFKA_SSL_CERTFILE": "/etc/hostname"}, "COINFEED_KAFKA_SSL_KEYFILE"),
    ],
)
def test_incomplete_settings_name_the_variable(
    tmp_path: Path, change: dict[str, str], names: str
) -> None:
    with pytest.raises(KafkaSecurityError, match=names) as err:
        security_from_env(sasl_env(tmp_path) | change)
    assert SECRET not in str(err.value)


def test_password_needed_and_jaas_only_for_sasl() -> None:
    with pytest.raises(KafkaSecurityError, match="password"):
        KafkaSecurity(protocol="SASL_SSL", username="u")
    with pytest.raises(KafkaSecurityError):
        jaas_config(KafkaSecurity(protocol="SSL"))


def test_secured_broker_has_no_plaintext_listener(tmp_path: Path) -> None:
    spec = ClusterSpec(tmp_path, security="sasl_ssl")
    props = broker_properties(spec, 1, admin_password="pw")
    assert props["listeners"] == "SASL_SSL://127.0.0.1:9092"
    assert props["security.inter.broker.protocol"] == "SASL_SSL"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"
    with pytest.raises(ValueError, match="admin password"):
        broker_properties(spec, 1)
    with pytest.raises(ValueError, match="zookeeper"):
        ClusterSpec(tmp_path, mode="kraft", security="sasl_ssl")
    assert "sasl" not in "".join(broker_properties(ClusterSpec(tmp_path), 1))


def test_acl_grants_are_least_privilege() -> None:
    btc = producer_grants("BTC")
    assert {g.name for g in btc} == {"coinfeed.btc.prices", "coinfeed.btc.tweets"}
    assert all(g.pattern == "LITERAL" for g in btc)
    assert {op for g in reader_grants() for op in g.operations} == {"READ", "DESCRIBE"}
    assert "WRITE" not in {op for g in operator_grants() for op in g.operations}
