"""The hourly CronJob's ServiceAccount, Spark master and S3 lake settings (pure builder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from coinfeed import job_env as jenv
from coinfeed.operator.desired import hourly_cronjob
from coinfeed.operator.settings import OperatorSettings, SettingsError, settings_from_env
from coinfeed.operator.spec import parse_spec
from coinfeed.spark.session import env_conf

ROOT = Path(__file__).resolve().parents[3]
BTC = parse_spec(yaml.safe_load((ROOT / "manifests" / "coinfeed-btc.yaml").read_text()))
K8S = "k8s://https://kubernetes.default.svc"
BASE: dict[str, Any] = {
    "kafka_bootstrap": "kafka:9092",
    "producer_image": "p:1",
    "spark_image": "s:1",
    "service_account": "producers",
    "spark_service_account": "coinfeed-spark",
}


def _job(**overrides: Any) -> dict[str, Any]:
    cron = hourly_cronjob("btc", "feeds", "uid-1", BTC, OperatorSettings(**{**BASE, **overrides}))
    pod: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in pod["containers"][0]["env"]}


def test_cronjob_runs_as_the_spark_account_not_the_producers() -> None:
    pod = _job()
    assert pod["serviceAccountName"] == "coinfeed-spark"
    assert "serviceAccountName" not in _job(spark_service_account="")


def test_local_master_keeps_the_token_unmounted_and_passes_no_master() -> None:
    pod = _job()
    assert pod["automountServiceAccountToken"] is False
    assert "--master" not in pod["containers"][0]["command"]
    assert not {jenv.K8S_IMAGE, jenv.POD_IP, jenv.POD_NAMESPACE} & set(_env(pod))


def test_k8s_master_mounts_the_token_and_tells_spark_where_it_runs() -> None:
    pod = _job(spark_master=K8S, lake_pvc="coinfeed-lake")
    assert pod["automountServiceAccountToken"] is True
    cmd = pod["containers"][0]["command"]
    assert cmd[cmd.index("--master") + 1] == K8S
    env = _env(pod)
    assert env[jenv.K8S_IMAGE]["value"] == "s:1"
    assert env[jenv.POD_IP]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env[jenv.POD_NAMESPACE]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env[jenv.POD_NAME]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert (env[jenv.LAKE_PVC]["value"], env[jenv.LAKE_PATH]["value"]) == ("coinfeed-lake", "/lake")


def test_s3_keys_come_from_the_secret_by_reference_only() -> None:
    pod = _job(lake="s3a://b/lake", s3_endpoint="http://minio:9000", s3_secret="lake-keys")
    env = _env(pod)
    assert env[jenv.S3_ENDPOINT]["value"] == "http://minio:9000"
    for var in (jenv.AWS_ACCESS_KEY_ID, jenv.AWS_SECRET_ACCESS_KEY):
        assert env[var] == {
            "name": var,
            "valueFrom": {"secretKeyRef": {"name": "lake-keys", "key": var}},
        }
        assert "value" not in env[var]
    assert not pod["volumes"][1:]  # no lake PVC in S3 mode


def test_no_s3_env_without_s3_settings() -> None:
    env = _env(_job())
    assert not {jenv.S3_ENDPOINT, jenv.AWS_ACCESS_KEY_ID, jenv.AWS_SECRET_ACCESS_KEY} & set(env)


def _strings(obj: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _strings(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [x for i, v in enumerate(obj) for x in _strings(v, f"{path}[{i}]")]
    return [(path, obj)] if isinstance(obj, str) else []


def test_no_secret_value_anywhere_in_the_object() -> None:
    """The Secret appears only by name (secretKeyRef, and the name for executors); no AWS
    variable has a literal value."""
    cron = hourly_cronjob(
        "btc",
        "feeds",
        "uid-1",
        BTC,
        OperatorSettings(**{**BASE, "spark_master": K8S, "s3_secret": "lake-keys"}),
    )
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = pod["containers"][0]["env"]
    literal = {e["name"] for e in env if "value" in e}
    assert not literal & {jenv.AWS_ACCESS_KEY_ID, jenv.AWS_SECRET_ACCESS_KEY}
    mentions = sorted(p for p, v in _strings(cron) if "lake-keys" in v)
    names = {e["name"]: i for i, e in enumerate(env)}
    prefix = ".spec.jobTemplate.spec.template.spec.containers[0].env"
    assert mentions == sorted(
        [
            f"{prefix}[{names[jenv.S3_SECRET]}].value",
            f"{prefix}[{names[jenv.AWS_ACCESS_KEY_ID]}].valueFrom.secretKeyRef.name",
            f"{prefix}[{names[jenv.AWS_SECRET_ACCESS_KEY]}].valueFrom.secretKeyRef.name",
        ]
    )


def test_settings_from_env_reads_the_new_settings_and_refuses_a_bad_master() -> None:
    s = settings_from_env(
        {
            "COINFEED_OPERATOR_SPARK_SERVICE_ACCOUNT": "coinfeed-spark",
            "COINFEED_OPERATOR_SPARK_MASTER": K8S,
            "COINFEED_OPERATOR_S3_ENDPOINT": "http://minio:9000",
            "COINFEED_OPERATOR_S3_SECRET": "lake-keys",
        }
    )
    assert (s.spark_service_account, s.spark_master) == ("coinfeed-spark", K8S)
    assert (s.s3_endpoint, s.s3_secret) == ("http://minio:9000", "lake-keys")
    assert settings_from_env({}).spark_master == ""
    with pytest.raises(SettingsError, match="COINFEED_OPERATOR_SPARK_MASTER"):
        settings_from_env({"COINFEED_OPERATOR_SPARK_MASTER": "yarn"})


def test_job_env_becomes_spark_settings() -> None:
    """The other side of the contract: what the CronJob sets is what Spark needs."""
    env = {
        jenv.S3_ENDPOINT: "http://minio:9000",
        jenv.S3_SECRET: "lake-keys",
        jenv.K8S_IMAGE: "s:1",
        jenv.POD_IP: "10.0.0.7",
        jenv.POD_NAMESPACE: "feeds",
        jenv.POD_NAME: "btc-hourly-1-x",
        jenv.LAKE_PVC: "coinfeed-lake",
        jenv.LAKE_PATH: "/lake",
    }
    local = env_conf(env, "local[*]")
    assert local == {
        "spark.hadoop.fs.s3a.endpoint": "http://minio:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
    }
    k8s = env_conf(env, K8S)
    assert k8s["spark.kubernetes.container.image"] == "s:1"
    assert k8s["spark.kubernetes.namespace"] == "feeds"
    assert k8s["spark.kubernetes.driver.pod.name"] == "btc-hourly-1-x"
    assert k8s["spark.driver.host"] == "10.0.0.7"
    assert k8s["spark.kubernetes.executor.secretKeyRef.AWS_SECRET_ACCESS_KEY"] == (
        "lake-keys:AWS_SECRET_ACCESS_KEY"
    )
    prefix = "spark.kubernetes.executor.volumes.persistentVolumeClaim.lake"
    assert k8s[f"{prefix}.options.claimName"] == "coinfeed-lake"
    assert k8s[f"{prefix}.mount.path"] == "/lake"
    assert env_conf({}, None) == {}


def test_job_pods_run_as_the_spark_image_user_restricted() -> None:
    """The Spark image's user is apache/spark's `spark` (185); the producers' 10001 is not it."""
    pod = _job()
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 185,
        "runAsGroup": 185,
        "fsGroup": 185,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    sc = pod["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
    custom = _job(spark_run_as_user=2000, spark_run_as_group=3000)["securityContext"]
    assert (custom["runAsUser"], custom["runAsGroup"], custom["fsGroup"]) == (2000, 3000, 3000)


def test_run_as_settings_are_read_and_root_is_refused() -> None:
    s = settings_from_env(
        {"COINFEED_OPERATOR_SPARK_RUN_AS_USER": "1000", "COINFEED_OPERATOR_SPARK_RUN_AS_GROUP": "7"}
    )
    assert (s.spark_run_as_user, s.spark_run_as_group) == (1000, 7)
    assert (settings_from_env({}).spark_run_as_user, settings_from_env({}).spark_run_as_group) == (
        185,
        185,
    )
    for bad in ("0", "-1", "spark"):
        with pytest.raises(SettingsError, match="COINFEED_OPERATOR_SPARK_RUN_AS_USER"):
            settings_from_env({"COINFEED_OPERATOR_SPARK_RUN_AS_USER": bad})


def test_job_reports_its_summary_as_the_termination_message() -> None:
    c = _job()["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert _env(_job())[jenv.TERMINATION_LOG]["value"] == "/dev/termination-log"
    # The container is the one the operator reads the message of.
    from coinfeed.operator.lastrun import CONTAINER

    assert c["name"] == CONTAINER
