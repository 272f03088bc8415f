"""The operator with a SASL_SSL Kafka (real brokers, real API server, the chart's RBAC): its own
admin client logs in as coinfeed-operator with only the operator's ACLs, and the children it
creates reach Kafka credentials by Secret reference only; no password in any object, Event,
status, log line or metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from coinfeed.devcluster import LocalKafkaCluster
from coinfeed.kafka_acls import operator_grants
from coinfeed.versions import REPO_ROOT
from localnode.operator_harness import condition, get_json, kubectl, wait_for
from tests.integration.operator.conftest import OperatorFactory
from tests.integration.operator.test_operator_feed import _cronjob_of
from tests.support.kafka import KafkaClusterFactory

OPERATOR_USER = "coinfeed-operator"
PRODUCER_SECRET = "kafka-producer"
HOURLY_SECRET = "kafka-spark"
CA_SECRET = "kafka-ca"


@pytest.fixture(scope="module")
def secured(kafka_cluster_factory: KafkaClusterFactory) -> LocalKafkaCluster:
    cluster = kafka_cluster_factory("zookeeper", security="sasl_ssl")
    cluster.add_user(OPERATOR_USER, operator_grants())
    return cluster


def test_children_reference_kafka_secrets_and_hold_no_secret(
    admin: Path,
    kube_namespace: str,
    secured: LocalKafkaCluster,
    start_operator: OperatorFactory,
    coin: str,
) -> None:
    ns = kube_namespace
    op = start_operator(
        ns,
        secured.bootstrap,
        extra_env={
            **secured.client_env(OPERATOR_USER),
            "COINFEED_OPERATOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "COINFEED_OPERATOR_KAFKA_CA_SECRET": CA_SECRET,
            "COINFEED_OPERATOR_HOURLY_KAFKA_SECRET": HOURLY_SECRET,
        },
    )
    doc = yaml.safe_load((REPO_ROOT / "manifests" / "coinfeed-btc.yaml").read_text())
    doc["spec"]["coin"] = coin
    doc["spec"]["kafka"] = {"credentialsSecretRef": {"name": PRODUCER_SECRET}}
    name = doc["metadata"]["name"]
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))

    # The operator's admin client got in over SASL_SSL and could create the topics with its ACLs.
    def topics_ready() -> Any:
        feed = get_json(admin, "coinfeed", name, "-n", ns)
        c = condition(feed, "TopicsReady")
        return feed if c and c["status"] == "True" else None

    wait_for("TopicsReady=True", topics_ready, timeout=120)

    def pod_spec(kind: str, child: str) -> Any:
        if kind == "cronjob":  # the feed's shared hourly CronJob (owned by its member feeds)
            obj = wait_for("the feed's hourly CronJob", lambda: _cronjob_of(admin, ns, name))
        else:
            obj = wait_for(f"{kind} {child}", lambda: get_json(admin, kind, child, "-n", ns))
        spec = obj["spec"]
        if kind == "cronjob":
            spec = spec["jobTemplate"]["spec"]
        return spec["template"]["spec"]

    for kind, child, secret in (
        ("deployment", f"{name}-prices", PRODUCER_SECRET),
        ("deployment", f"{name}-tweets", PRODUCER_SECRET),
        ("cronjob", "", HOURLY_SECRET),
    ):
        pod = pod_spec(kind, child)
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["COINFEED_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert env["COINFEED_KAFKA_SASL_USERNAME"]["valueFrom"]["secretKeyRef"] == {
            "name": secret,
            "key": "username",
        }
        assert "COINFEED_KAFKA_SASL_PASSWORD" not in env  # the value form: never
        password_file = Path(env["COINFEED_KAFKA_SASL_PASSWORD_FILE"]["value"])
        ca_file = Path(env["COINFEED_KAFKA_SSL_CAFILE"]["value"])
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        creds = volumes[mounts[str(password_file.parent)]]["secret"]
        assert creds["secretName"] == secret
        assert creds["items"] == [{"key": "password", "path": password_file.name}]
        assert volumes[mounts[str(ca_file.parent)]]["secret"]["secretName"] == CA_SECRET

    # Least privilege: passing Secret references needs no right to read Secrets, and the
    # operator's identity has none (the real API server refuses it).
    for verb in ("get", "list"):
        args = ("secrets", PRODUCER_SECRET) if verb == "get" else ("secrets",)
        refused = kubectl(op.kubeconfig, "get", *args, "-n", ns, check=False)
        assert refused.returncode != 0
        assert "forbidden" in refused.stderr.lower(), refused.stderr

    # No password anywhere the operator writes or says something.
    passwords = [secured.password(u) for u in (OPERATOR_USER, "admin")]
    written = json.dumps(
        [
            get_json(admin, kind, "-n", ns)
            for kind in ("coinfeeds", "deployments", "cronjobs", "services", "events", "configmaps")
        ]
    )
    said = op.log_tail(100_000) + op.metrics()
    for pw in passwords:
        assert pw not in written
        assert pw not in said
