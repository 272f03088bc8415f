"""Operator settings: what the cluster admin decides (images, Kafka address, lake), not the feed.

Read once at start from ``COINFEED_OPERATOR_*`` environment variables (the chart sets them from
its values); :func:`settings_from_env` is pure over the mapping it is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from coinfeed import hourly_status

ENV_PREFIX: Final = "COINFEED_OPERATOR_"


class SettingsError(ValueError):
    """An operator setting with a value that cannot work; the message names the variable."""


@dataclass(frozen=True)
class Resources:
    cpu_request: str = "50m"
    memory_request: str = "96Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"

    def as_k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


@dataclass(frozen=True)
class OperatorSettings:
    kafka_bootstrap: str = "coinfeed-kafka:9092"
    producer_image: str = "coinfeed-producer:0.1.0"
    spark_image: str = "coinfeed-spark:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    hourly_command: tuple[str, ...] = ("coinfeed", "hourly")
    pushgateway: str = ""
    lake: str = "/lake"
    lake_pvc: str = ""  # a PersistentVolumeClaim mounted at ``lake`` in the CronJob, if set
    producer_metrics_port: int = 9400
    producer_resources: Resources = field(default_factory=Resources)
    spark_resources: Resources = field(default_factory=lambda: Resources("500m", "1Gi", "2", "2Gi"))
    service_account: str = ""  # ServiceAccount of the producer pods ("" = namespace default)
    spark_service_account: str = ""  # ServiceAccount of the hourly job's pods ("" = default)
    # UID/GID of the hourly job's pods (and executors): the Spark image's user, apache/spark's
    # `spark` (185). The pod's fsGroup is the GID, so the lake volume is writable by it.
    spark_run_as_user: int = 185
    spark_run_as_group: int = 185
    # "" = Spark in local mode inside the CronJob pod; k8s://https://kubernetes.default.svc =
    # the pod is the driver and starts executor pods (only then is its token mounted).
    spark_master: str = ""
    # Executors (k8s:// master only): how many, and each one's requests/limits. Spark sizes the
    # executor JVM from the memory limit (heap + overhead = the limit).
    spark_executor_instances: int = 2
    spark_executor_resources: Resources = field(
        default_factory=lambda: Resources("500m", "1536Mi", "1", "1536Mi")
    )
    # Coins per shared hourly CronJob (one Spark application per run for all of them): 100 feeds
    # on one schedule make one application per hour. At most MAX_COINS_PER_JOB; 1 gives one
    # CronJob per feed, as before shared jobs.
    hourly_max_coins_per_job: int = 100
    s3_endpoint: str = ""  # S3-compatible endpoint of an s3a:// lake ("" = AWS)
    s3_secret: str = ""  # existing Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY keys
    drift_interval_seconds: float = 30.0
    kafka_timeout_seconds: float = 10.0
    x_api_base_url: str = ""  # producers' X API base URL override (tests, proxies)
    # Kafka client security of the children (names of Secrets, never their contents):
    # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; a Secret with key ca.crt (the brokers' CA);
    # a Secret with keys username and password for the hourly job (producers: per CoinFeed).
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_ca_secret: str = ""
    hourly_kafka_secret: str = ""
    # Secret (key ``secret``) with the key of Spark's RPC authentication and encryption between
    # driver and executor pods (k8s:// master only); its name only. "" = RPC in clear text.
    spark_rpc_secret: str = ""


_INT_FIELDS = {"producer_metrics_port"}
_ID_FIELDS = {"spark_run_as_user", "spark_run_as_group"}
_FLOAT_FIELDS = {"drift_interval_seconds", "kafka_timeout_seconds"}
_STR_FIELDS = {
    "kafka_bootstrap",
    "producer_image",
    "spark_image",
    "image_pull_policy",
    "pushgateway",
    "lake",
    "lake_pvc",
    "service_account",
    "spark_service_account",
    "spark_master",
    "s3_endpoint",
    "s3_secret",
    "x_api_base_url",
    "kafka_security_protocol",
    "kafka_ca_secret",
    "hourly_kafka_secret",
    "spark_rpc_secret",
}

# Spark names the executors' volume of a Secret ``<name>-volume``, which must be a DNS label.
MAX_RPC_SECRET_NAME = 63 - len("-volume")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def settings_from_env(env: Mapping[str, str]) -> OperatorSettings:
    """Settings from ``COINFEED_OPERATOR_<FIELD>`` variables; unset ones keep their defaults."""
    values: dict[str, object] = {}
    for name in _STR_FIELDS:
        if env_name(name) in env:
            values[name] = env[env_name(name)]
    for name in _INT_FIELDS:
        if env_name(name) in env:
            raw = env[env_name(name)]
            if not raw.isdigit() or not 1 <= int(raw) <= 65535:
                raise SettingsError(f"{env_name(name)}={raw!r}: expected a port 1-65535")
            values[name] = int(raw)
    for name in _ID_FIELDS:
        if env_name(name) in env:
            raw = env[env_name(name)]
            # runAsNonRoot refuses UID 0; GID 0 (root group) would weaken fsGroup.
            if not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
                raise SettingsError(
                    f"{env_name(name)}={raw!r}: expected a non-root id 1-2147483647"
                )
            values[name] = int(raw)
    for name in _FLOAT_FIELDS:
        if env_name(name) in env:
            raw = env[env_name(name)]
            try:
                number = float(raw)
            except ValueError:
                number = -1.0
            if number <= 0:
                raise SettingsError(f"{env_name(name)}={raw!r}: expected a positive number")
            values[name] = number
    if env_name("hourly_command") in env:
        values["hourly_command"] = _json_str_list(env, env_name("hourly_command"))
    if env_name("spark_executor_instances") in env:
        raw = env[env_name("spark_executor_instances")]
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise SettingsError(
                f"{env_name('spark_executor_instances')}={raw!r}: expected 1-100 executors"
            )
        values["spark_executor_instances"] = int(raw)
    if env_name("hourly_max_coins_per_job") in env:
        raw = env[env_name("hourly_max_coins_per_job")]
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_COINS_PER_JOB:
            raise SettingsError(
                f"{env_name('hourly_max_coins_per_job')}={raw!r}: expected 1-{MAX_COINS_PER_JOB} "
                "coins (more and the job's per-coin outcome no longer fits its 4 KiB summary)"
            )
        values["hourly_max_coins_per_job"] = int(raw)
    for name in ("producer_resources", "spark_resources", "spark_executor_resources"):
        if env_name(name) in env:
            values[name] = _resources(env, env_name(name))
    if values.get("image_pull_policy", "IfNotPresent") not in ("Always", "IfNotPresent", "Never"):
        raise SettingsError(
            f"{env_name('image_pull_policy')}={values['image_pull_policy']!r}: "
            "expected Always, IfNotPresent or Never"
        )
    master = str(values.get("spark_master", ""))
    if master and not master.startswith(("local", "k8s://")):
        raise SettingsError(
            f"{env_name('spark_master')}={master!r}: expected empty (local mode), local[N] "
            "or k8s://https://<api-server>"
        )
    settings = OperatorSettings(**values)  # type: ignore[arg-type]
    executor = settings.spark_executor_resources
    try:
        mib = memory_mib(executor.memory_limit)
    except ValueError as exc:
        raise SettingsError(
            f"{env_name('spark_executor_resources')}: limits.memory: {exc}"
        ) from None
    if mib < MIN_EXECUTOR_MIB:
        raise SettingsError(
            f"{env_name('spark_executor_resources')}: limits.memory {executor.memory_limit} is "
            f"below the {MIN_EXECUTOR_MIB}Mi a Spark executor needs"
        )
    if settings.kafka_security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise SettingsError(
            f"{env_name('kafka_security_protocol')}={settings.kafka_security_protocol!r}: "
            "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
        )
    rpc = settings.spark_rpc_secret
    if rpc and (len(rpc) > MAX_RPC_SECRET_NAME or not _DNS_LABEL.match(rpc)):
        raise SettingsError(
            f"{env_name('spark_rpc_secret')}={rpc!r}: expected a Secret name of lower-case "
            f"letters, digits and '-', at most {MAX_RPC_SECRET_NAME} characters (Spark names "
            "the executors' volume <name>-volume)"
        )
    if not settings.kafka_bootstrap.strip():
        raise SettingsError(f"{env_name('kafka_bootstrap')} must not be empty")
    return settings


_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")


def memory_mib(quantity: str) -> int:
    """A Kubernetes memory quantity (``1536Mi``, ``2Gi``, ``1.5G``) in whole MiB."""
    m = _QUANTITY.match(quantity.strip())
    if not m:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2) or ""]) // 2**20


# The job's termination message (4 KiB) keeps every coin's ok-state and newest hour for at most
# this many coins, whatever their names and errors (derived from the encoding; tests/unit/
# operator/test_operator_groups.py checks the worst case).
MAX_COINS_PER_JOB = hourly_status.MAX_COINS

# Spark needs room for its JVM heap plus at least 384 MiB of overhead in an executor.
MIN_EXECUTOR_MIB = 768


def _json_str_list(env: Mapping[str, str], var: str) -> tuple[str, ...]:
    try:
        parsed = json.loads(env[var])
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{var}: expected a JSON list of strings ({exc})") from None
    if not isinstance(parsed, list) or not parsed or not all(isinstance(x, str) for x in parsed):
        raise SettingsError(f"{var}: expected a non-empty JSON list of strings, got {env[var]!r}")
    return tuple(parsed)


def _resources(env: Mapping[str, str], var: str) -> Resources:
    try:
        parsed = json.loads(env[var])
        return Resources(
            cpu_request=str(parsed["requests"]["cpu"]),
            memory_request=str(parsed["requests"]["memory"]),
            cpu_limit=str(parsed["limits"]["cpu"]),
            memory_limit=str(parsed["limits"]["memory"]),
        )
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SettingsError(
            f"{var}: expected JSON {{requests: {{cpu, memory}}, limits: {{cpu, memory}}}} ({exc!r})"
        ) from None
