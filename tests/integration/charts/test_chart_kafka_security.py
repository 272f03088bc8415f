"""charts/kafka with security on (helm template, the real helm; the users script run for real with
a recording java): no PLAINTEXT listener left, brokers authenticate each other by certificate,
ACLs with no allow-by-default, SCRAM users created through the authenticated internal listener
with no password in any command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.charts.helmtools import Helm, find
from tests.integration.charts.test_chart_render import _start_env, broker_config, properties

SECURE = ["ci/sasl-ssl-values.yaml"]


@pytest.mark.parametrize("values", [SECURE, [*SECURE, "ci/kraft-values.yaml"]])
def test_no_plaintext_listener_when_security_is_on(helm: Helm, values: list[str]) -> None:
    cfg = broker_config(helm.template("kafka", values=values))
    protocols = dict(p.split(":") for p in cfg["listener.security.protocol.map"].split(","))
    assert "PLAINTEXT" not in protocols.values(), protocols
    assert protocols["INTERNAL"] == "SSL"
    assert cfg["listener.name.internal.ssl.client.auth"] == "required"
    if "CONTROLLER" in protocols:
        assert protocols["CONTROLLER"] == "SSL"
        assert cfg["listener.name.controller.ssl.client.auth"] == "required"
    assert cfg["inter.broker.listener.name"] == "INTERNAL"
    assert cfg["allow.everyone.if.no.acl.found"] == "false"
    assert cfg["super.users"] == "User:CN=coinfeed-kafka-broker"
    assert cfg["authorizer.class.name"]
    assert not [k for k in cfg if "password" in k or "jaas" in k]


def test_sasl_plaintext_still_needs_mtls_between_brokers(helm: Helm) -> None:
    proc = helm.template_text(
        "kafka",
        sets=["listeners.client.protocol=SASL_PLAINTEXT", "sasl.existingSecret=jaas"],
        check=False,
    )
    assert proc.returncode != 0
    assert "/tls/existingSecret" in proc.stderr, proc.stderr
    proc = helm.template_text("kafka", sets=["authorization.enabled=true"], check=False)
    assert proc.returncode != 0
    assert "authorization.enabled needs a secured client listener" in proc.stderr


def test_users_secret_only_in_the_brokers(helm: Helm) -> None:
    objs = helm.template("kafka", values=SECURE)
    for o in objs:
        if o["kind"] in ("StatefulSet", "Deployment", "Job", "Pod"):
            spec = o["spec"].get("template", {}).get("spec") or o["spec"]
            names = {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
            if o["metadata"]["name"] == "coinfeed-kafka":
                assert "coinfeed-kafka-users" in names
            else:
                assert "coinfeed-kafka-users" not in names, o["metadata"]["name"]


@pytest.fixture
def recording_kafka(tmp_path: Path) -> tuple[Path, Path]:
    """A Kafka home whose java records each command line and the files it names, then exits 0."""
    home = tmp_path / "kafka-home"
    (home / "libs").mkdir(parents=True)
    java = tmp_path / "java-home" / "bin" / "java"
    java.parent.mkdir(parents=True)
    record = tmp_path / "record"
    record.mkdir()
    java.write_text(
        "#!/bin/bash\n"
        f'n=$(ls {record} | wc -l); printf "%s\\n" "$@" > {record}/$n.argv\n'
        'prev=""; for a in "$@"; do\n'
        '  case "$prev" in --command-config|--add-config-file) '
        f'cp "$a" {record}/$n.$(basename "$a");; esac; prev="$a"\n'
        "done\n"
    )
    java.chmod(0o755)
    return home, record


def test_users_script_creates_users_over_mtls_without_argv_secrets(
    helm: Helm, tmp_path: Path, recording_kafka: tuple[Path, Path]
) -> None:
    home, record = recording_kafka
    objs = helm.template("kafka", values=SECURE, namespace="data")
    script = tmp_path / "kafka-users.sh"
    script.write_text(find(objs, "ConfigMap", "coinfeed-kafka-config")["data"]["kafka-users.sh"])
    secrets = tmp_path / "secrets"
    (secrets / "tls").mkdir(parents=True)
    (secrets / "tls" / "password").write_text("store-pw-123")
    users = {"coinfeed-producer-btc": "btc-pw-456", "coinfeed-spark": "spark-pw-789"}
    (secrets / "users").mkdir()
    for user, pw in users.items():
        (secrets / "users" / user).write_text(pw)
    env = {
        **os.environ,
        **_start_env(objs, "data"),
        "HOSTNAME": "coinfeed-kafka-0",
        "KAFKA_HOME": str(home),
        "JAVA_HOME": str(home.parent / "java-home"),
        "SECRETS_DIR": str(secrets),
        "WORK_DIR": str(tmp_path / "work"),
    }
    proc = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    argvs = {p.name: p.read_text() for p in record.glob("*.argv")}
    assert len(argvs) == 2 + 1 + 2  # 2 users, 1 producer ACL call, 2 reader ACL calls
    for text in argvs.values():
        for secret in ("store-pw-123", *users.values()):
            assert secret not in text
        # the internal listener at the pod's own name (its certificate names it), over mTLS
        assert "coinfeed-kafka-0.coinfeed-kafka-headless.data.svc.cluster.local:9094" in text
    client = properties(next(record.glob("*.client.properties")).read_text())
    assert client["security.protocol"] == "SSL"
    assert client["ssl.keystore.location"].endswith("/tls/keystore.p12")
    scram = {p.name: p.read_text() for p in record.glob("*.coinfeed-*.properties")}
    assert sorted(scram.values()) == sorted(
        f"SCRAM-SHA-512=iterations=8192,password={pw}\n" for pw in users.values()
    )
    producer_acl = next(t for t in argvs.values() if "User:coinfeed-producer-btc" in t)
    topics = [line for line in producer_acl.splitlines() if line.startswith("coinfeed.")]
    assert topics == ["coinfeed.btc.prices", "coinfeed.btc.tweets"]
    assert "Write" in producer_acl and "prefixed" not in producer_acl
    assert not (tmp_path / "work").exists(), "the password files must not outlive the script"
