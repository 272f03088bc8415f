"""One Kafka client security configuration for producers, the operator and the Spark job.

Read only from environment variables and mounted files (Kubernetes Secrets reach a pod as either),
never from argv or a resource's spec. Two pure functions turn it into what each client needs:
``kafka_python_settings`` (kafka-python keyword arguments) and ``spark_kafka_options``
(spark-sql-kafka's ``kafka.``-prefixed options). The password never appears in ``repr`` or in an
error message, so logging the configuration or an exception cannot leak it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
PROTOCOLS: Final[tuple[Protocol, ...]] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# SCRAM only: PLAIN would send the password itself to the broker, GSSAPI needs a KDC.
MECHANISMS: Final = ("SCRAM-SHA-512", "SCRAM-SHA-256")
DEFAULT_MECHANISM: Final = "SCRAM-SHA-512"

PROTOCOL_ENV: Final = "COINFEED_KAFKA_SECURITY_PROTOCOL"
MECHANISM_ENV: Final = "COINFEED_KAFKA_SASL_MECHANISM"
USERNAME_ENV: Final = "COINFEED_KAFKA_SASL_USERNAME"
USERNAME_FILE_ENV: Final = "COINFEED_KAFKA_SASL_USERNAME_FILE"
PASSWORD_ENV: Final = "COINFEED_KAFKA_SASL_PASSWORD"
PASSWORD_FILE_ENV: Final = "COINFEED_KAFKA_SASL_PASSWORD_FILE"
CAFILE_ENV: Final = "COINFEED_KAFKA_SSL_CAFILE"
CERTFILE_ENV: Final = "COINFEED_KAFKA_SSL_CERTFILE"
KEYFILE_ENV: Final = "COINFEED_KAFKA_SSL_KEYFILE"
CHECK_HOSTNAME_ENV: Final = "COINFEED_KAFKA_SSL_CHECK_HOSTNAME"

# Every variable this module reads: the operator and charts set exactly these.
ENV_NAMES: Final = (
    PROTOCOL_ENV,
    MECHANISM_ENV,
    USERNAME_ENV,
    USERNAME_FILE_ENV,
    PASSWORD_ENV,
    PASSWORD_FILE_ENV,
    CAFILE_ENV,
    CERTFILE_ENV,
    KEYFILE_ENV,
    CHECK_HOSTNAME_ENV,
)


class KafkaSecurityError(ValueError):
    """The security settings are incomplete or contradictory; the message names the variable."""


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: Protocol = "PLAINTEXT"
    mechanism: str = DEFAULT_MECHANISM
    username: str | None = None
    # Kept out of repr: a logged or printed configuration must not carry the password.
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise KafkaSecurityError(
                f"{PROTOCOL_ENV}={self.protocol!r} is not one of {', '.join(PROTOCOLS)}"
            )
        if self.sasl:
            if self.mechanism not in MECHANISMS:
                raise KafkaSecurityError(
                    f"{MECHANISM_ENV}={self.mechanism!r} is not one of {', '.join(MECHANISMS)}"
                )
            if not self.username:
                raise KafkaSecurityError(
                    f"{self.protocol} needs a user name: set {USERNAME_ENV} or {USERNAME_FILE_ENV}"
                )
            if not self.password:
                raise KafkaSecurityError(
                    f"{self.protocol} needs a password: set {PASSWORD_FILE_ENV} (a mounted "
                    f"Secret) or {PASSWORD_ENV}"
                )
        if (self.certfile is None) != (self.keyfile is None):
            raise KafkaSecurityError(
                f"a client certificate needs both {CERTFILE_ENV} and {KEYFILE_ENV}"
            )
        if not self.tls and (self.cafile or self.certfile):
            raise KafkaSecurityError(
                f"{CAFILE_ENV}/{CERTFILE_ENV} are set but {PROTOCOL_ENV}={self.protocol} "
                "does not use TLS: choose SSL or SASL_SSL"
            )

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def _read_secret_file(var: str, path: str) -> str:
    try:
        # Secrets mounted from files often end with a newline that is not part of the value.
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise KafkaSecurityError(f"{var}: cannot read {path}: {exc.strerror}") from None


def _from_value_or_file(env: Mapping[str, str], var: str, file_var: str) -> str | None:
    path = env.get(file_var)
    if path:
        return _read_secret_file(file_var, path)
    return env.get(var) or None


def _existing_file(env: Mapping[str, str], var: str) -> str | None:
    path = env.get(var)
    if not path:
        return None
    if not Path(path).is_file():
        raise KafkaSecurityError(f"{var}={path}: no such file")
    return path


def security_from_env(env: Mapping[str, str] | None = None) -> KafkaSecurity:
    """The settings the ``COINFEED_KAFKA_*`` variables describe (PLAINTEXT when none is set)."""
    env = os.environ if env is None else env
    protocol = (env.get(PROTOCOL_ENV) or "PLAINTEXT").strip().upper()
    if protocol not in PROTOCOLS:
        raise KafkaSecurityError(
            f"{PROTOCOL_ENV}={protocol!r} is not one of {', '.join(PROTOCOLS)}"
        )
    check = (env.get(CHECK_HOSTNAME_ENV) or "true").strip().lower()
    if check not in ("true", "false"):
        raise KafkaSecurityError(f"{CHECK_HOSTNAME_ENV}={check!r}: expected true or false")
    return KafkaSecurity(
        protocol=protocol,
        mechanism=(env.get(MECHANISM_ENV) or DEFAULT_MECHANISM).strip().upper(),
        username=_from_value_or_file(env, USERNAME_ENV, USERNAME_FILE_ENV),
        password=_from_value_or_file(env, PASSWORD_ENV, PASSWORD_FILE_ENV),
        cafile=_existing_file(env, CAFILE_ENV),
        certfile=_existing_file(env, CERTFILE_ENV),
        keyfile=_existing_file(env, KEYFILE_ENV),
        check_hostname=check == "true",
    )


def kafka_python_settings(sec: KafkaSecurity) -> dict[str, Any]:
    """kafka-python keyword arguments (producer, consumer and admin client take the same ones).

    Empty for PLAINTEXT, so an unsecured setup builds exactly the clients it always did.
    """
    if sec.protocol == "PLAINTEXT":
        return {}
    out: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.sasl:
        out |= {
            "sasl_mechanism": sec.mechanism,
            "sasl_plain_username": sec.username,
            "sasl_plain_password": sec.password,
        }
    if sec.tls:
        out["ssl_check_hostname"] = sec.check_hostname
        if sec.cafile:
            out["ssl_cafile"] = sec.cafile
        if sec.certfile:
            out["ssl_certfile"] = sec.certfile
            out["ssl_keyfile"] = sec.keyfile
    return out


def _jaas_quote(value: str) -> str:
    # JAAS option values are double-quoted strings; backslash escapes '"' and '\'.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jaas_config(sec: KafkaSecurity) -> str:
    """``sasl.jaas.config`` for Kafka's Java client (ScramLoginModule)."""
    if not sec.sasl or sec.username is None or sec.password is None:
        raise KafkaSecurityError(f"{sec.protocol} does not use SASL: no JAAS configuration")
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f"username={_jaas_quote(sec.username)} password={_jaas_quote(sec.password)};"
    )


def java_client_properties(sec: KafkaSecurity) -> dict[str, str]:
    """The Java client's settings (no prefix): spark-sql-kafka and Kafka's own tools use them.

    The CA bundle is read as a PEM truststore, and a client certificate as inline PEM, so no
    JKS/PKCS#12 file (and no store password) has to exist anywhere.
    """
    props: dict[str, str] = {"security.protocol": sec.protocol}
    if sec.sasl:
        props["sasl.mechanism"] = sec.mechanism
        props["sasl.jaas.config"] = jaas_config(sec)
    if sec.tls:
        # Java verifies the broker's host name only with "https"; "" switches that off.
        props["ssl.endpoint.identification.algorithm"] = "https" if sec.check_hostname else ""
        if sec.cafile:
            props["ssl.truststore.type"] = "PEM"
            props["ssl.truststore.location"] = sec.cafile
        if sec.certfile and sec.keyfile:
            props["ssl.keystore.type"] = "PEM"
            props["ssl.keystore.certificate.chain"] = _read_secret_file(CERTFILE_ENV, sec.certfile)
            props["ssl.keystore.key"] = _read_secret_file(KEYFILE_ENV, sec.keyfile)
    return props


def spark_kafka_options(sec: KafkaSecurity) -> dict[str, str]:
    """spark-sql-kafka reader options: the Java client's settings with the ``kafka.`` prefix.

    Empty for PLAINTEXT (the reader's defaults are exactly that).
    """
    if sec.protocol == "PLAINTEXT":
        return {}
    return {f"kafka.{k}": v for k, v in java_client_properties(sec).items()}
