"""Kafka security of the operator's children: Secret references only, never a secret value."""

from __future__ import annotations

import json
from typing import Any

import yaml

from coinfeed.operator.desired import (
    executor_pod_template,
    hourly_cronjob,
    producer_deployment,
    single_feed_group,
)
from coinfeed.operator.settings import OperatorSettings, settings_from_env
from coinfeed.operator.spec import parse_spec
from coinfeed.versions import REPO_ROOT

MANIFEST = yaml.safe_load((REPO_ROOT / "manifests" / "coinfeed-btc.yaml").read_text())
SECURED = OperatorSettings(
    kafka_security_protocol="SASL_SSL",
    kafka_ca_secret="kafka-ca",
    hourly_kafka_secret="kafka-spark",
    spark_master="k8s://https://kubernetes.default.svc",
)


def _spec(**kafka: Any) -> Any:
    doc = json.loads(json.dumps(MANIFEST))
    if kafka:
        doc["spec"]["kafka"] = kafka
    return parse_spec(doc)


def _pod(obj: Any) -> Any:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def test_plaintext_children_have_no_kafka_security() -> None:
    settings = OperatorSettings()
    for obj in (
        producer_deployment("btc", "ns", "uid", _spec(), "prices", settings),
        hourly_cronjob("btc", "ns", "uid", _spec(), settings),
    ):
        pod = _pod(obj)
        assert not [e for e in pod["containers"][0]["env"] if "COINFEED_KAFKA_S" in e["name"]]
        assert not [v for v in pod["volumes"] if v["name"].startswith("kafka-")]


def test_secured_children_get_the_user_by_reference_and_files_mounted() -> None:
    spec = _spec(credentialsSecretRef={"name": "kafka-producer-btc"})
    assert spec.kafka_credentials == "kafka-producer-btc"
    for obj, secret in (
        (producer_deployment("btc", "ns", "uid", spec, "tweets", SECURED), "kafka-producer-btc"),
        (hourly_cronjob("btc", "ns", "uid", spec, SECURED), "kafka-spark"),
    ):
        pod = _pod(obj)
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["COINFEED_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert env["COINFEED_KAFKA_SASL_USERNAME"] == {
            "name": "COINFEED_KAFKA_SASL_USERNAME",
            "valueFrom": {"secretKeyRef": {"name": secret, "key": "username"}},
        }
        assert "COINFEED_KAFKA_SASL_PASSWORD" not in env
        volumes = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
        assert volumes["kafka-credentials"]["secretName"] == secret
        assert volumes["kafka-ca"]["secretName"] == "kafka-ca"
        mounted = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        for var in ("COINFEED_KAFKA_SASL_PASSWORD_FILE", "COINFEED_KAFKA_SSL_CAFILE"):
            assert env[var]["value"].rsplit("/", 1)[0] in mounted


def test_executors_mount_only_the_ca() -> None:
    group = single_feed_group("btc", "ns", "uid-1", _spec())
    pod = executor_pod_template(group, SECURED)["spec"]
    assert {v["name"] for v in pod["volumes"]} == {"spark-local-dir-1", "kafka-ca"}
    assert "kafka-credentials" not in json.dumps(pod)


def test_settings_refuse_an_unknown_protocol() -> None:
    env = {"COINFEED_OPERATOR_KAFKA_SECURITY_PROTOCOL": "TLS"}
    try:
        settings_from_env(env)
    except Exception as exc:
        assert "COINFEED_OPERATOR_KAFKA_SECURITY_PROTOCOL" in str(exc)
    else:
        raise AssertionError("an unknown protocol was accepted")
