"""What the charts render (helm template, the real helm): the Kafka settings the design promises,
both metadata modes, schema errors for bad values, security contexts and resources on every pod,
labels from one helper, optional monitoring objects, dashboards, NetworkPolicies and the lake."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from coinfeed import versions
from tests.integration.charts.helmtools import (
    CHARTS,
    Helm,
    Obj,
    by_kind,
    find,
    lint_matrix,
    pod_spec,
)


def properties(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def broker_config(objs: Sequence[Obj], prefix: str = "coinfeed-kafka") -> dict[str, str]:
    return properties(find(objs, "ConfigMap", f"{prefix}-config")["data"]["server.properties"])


# --- Kafka settings and topology -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("chart", "values", "prefix"),
    [
        ("kafka", [], "coinfeed-kafka"),
        ("kafka", ["ci/kraft-values.yaml"], "coinfeed-kafka"),
        ("coinfeed", [], "coinfeed-kafka"),
        ("coinfeed", ["values-kind.yaml"], "coinfeed-kafka"),
        ("coinfeed", ["ci/kraft-s3-values.yaml"], "coinfeed-kafka"),
    ],
)
def test_broker_settings_retention_isr_rf_no_auto_create(
    helm: Helm, chart: str, values: list[str], prefix: str
) -> None:
    config = broker_config(helm.template(chart, values=values), prefix)
    assert config["log.retention.hours"] == "24"
    assert config["min.insync.replicas"] == "2"
    assert config["default.replication.factor"] == "3"
    assert config["offsets.topic.replication.factor"] == "3"
    assert config["auto.create.topics.enable"] == "false"
    assert config["unclean.leader.election.enable"] == "false"


def test_zookeeper_mode_three_brokers_three_zookeepers_pinned_official_images(helm: Helm) -> None:
    objs = helm.template("kafka", namespace="data")
    brokers = find(objs, "StatefulSet", "coinfeed-kafka")
    zookeeper = find(objs, "StatefulSet", "coinfeed-kafka-zookeeper")
    assert brokers["spec"]["replicas"] == 3 and zookeeper["spec"]["replicas"] == 3
    assert brokers["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"apache/kafka:{versions.get('KAFKA_VERSION')}"
    )
    assert zookeeper["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"zookeeper:{versions.get('ZOOKEEPER_IMAGE_VERSION')}"
    )
    config = broker_config(objs)
    assert config["zookeeper.connect"] == "coinfeed-kafka-zookeeper.data.svc:2181"
    assert "process.roles" not in config
    zoo_cfg = find(objs, "ConfigMap", "coinfeed-kafka-zookeeper-config")["data"]["zoo.cfg"]
    servers = re.findall(r"^server\.(\d)=(\S+)$", zoo_cfg, re.M)
    assert [s[0] for s in servers] == ["1", "2", "3"]
    assert servers[0][1].startswith(
        "coinfeed-kafka-zookeeper-0.coinfeed-kafka-zookeeper-headless.data.svc.cluster.local:2888:3888"
    )


def test_kraft_mode_three_combined_nodes_and_no_zookeeper(helm: Helm) -> None:
    objs = helm.template("kafka", values=["ci/kraft-values.yaml"], namespace="data")
    assert not [o for o in objs if "zookeeper" in o["metadata"]["name"]]
    config = broker_config(objs)
    assert config["process.roles"] == "broker,controller"
    assert "zookeeper.connect" not in config
    voters = config["controller.quorum.voters"].split(",")
    assert [v.split("@")[0] for v in voters] == ["0", "1", "2"]
    assert voters[2] == "2@coinfeed-kafka-2.coinfeed-kafka-headless.data.svc.cluster.local:9093"
    assert find(objs, "StatefulSet", "coinfeed-kafka")["spec"]["replicas"] == 3


def _cluster_id(objs: Sequence[Obj]) -> str:
    (sts,) = by_kind(objs, "StatefulSet")
    env = {
        e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    return str(env["KRAFT_CLUSTER_ID"])


def test_kraft_cluster_id_derived_is_a_stable_16_byte_uuid(helm: Helm) -> None:
    first = _cluster_id(helm.template("kafka", sets=["metadataMode=kraft"]))
    again = _cluster_id(helm.template("kafka", sets=["metadataMode=kraft"]))
    other = _cluster_id(helm.template("kafka", sets=["metadataMode=kraft"], release="other"))
    assert first == again != other
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", first)
    assert len(base64.urlsafe_b64decode(first + "==")) == 16


def test_topology_pdbs_headless_services_pvcs_soft_anti_affinity(helm: Helm) -> None:
    objs = helm.template("kafka")
    for name, component in [
        ("coinfeed-kafka", "broker"),
        ("coinfeed-kafka-zookeeper", "zookeeper"),
    ]:
        sts = find(objs, "StatefulSet", name)
        pdb = find(objs, "PodDisruptionBudget", name)
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
        headless = find(objs, "Service", sts["spec"]["serviceName"])
        assert headless["spec"]["clusterIP"] == "None"
        assert headless["spec"]["publishNotReadyAddresses"] is True
        claims = sts["spec"]["volumeClaimTemplates"]
        assert claims[0]["metadata"]["name"] == "data"
        assert claims[0]["spec"]["accessModes"] == ["ReadWriteOnce"]
        anti = sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert "preferredDuringSchedulingIgnoredDuringExecution" in anti
    hard = helm.template("kafka", sets=["podAntiAffinity=hard"])
    anti = find(hard, "StatefulSet", "coinfeed-kafka")["spec"]["template"]["spec"]["affinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in anti["podAntiAffinity"]
    no_pvc = helm.template("kafka", sets=["persistence.enabled=false"])
    assert "volumeClaimTemplates" not in find(no_pvc, "StatefulSet", "coinfeed-kafka")["spec"]


def test_checksum_annotation_follows_the_config(helm: Helm) -> None:
    def checksums(objs: Sequence[Obj]) -> dict[str, str]:
        return {
            o["metadata"]["name"]: o["spec"]["template"]["metadata"]["annotations"][
                "checksum/config"
            ]
            for o in by_kind(objs, "StatefulSet")
        }

    before = checksums(helm.template("kafka"))
    after = checksums(helm.template("kafka", sets=["config.logRetentionHours=48"]))
    assert before["coinfeed-kafka"] != after["coinfeed-kafka"]
    assert before["coinfeed-kafka-zookeeper"] == after["coinfeed-kafka-zookeeper"]


def test_client_listener_plaintext_by_default_sasl_ssl_as_option(helm: Helm) -> None:
    plain = broker_config(helm.template("kafka"))
    assert plain["listener.security.protocol.map"].startswith("CLIENT:PLAINTEXT,")
    objs = helm.template("kafka", values=["ci/sasl-ssl-values.yaml"])
    secure = broker_config(objs)
    assert secure["listener.security.protocol.map"].startswith("CLIENT:SASL_SSL,")
    assert secure["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    # Passwords and JAAS lines come from Secret files at start, never from the ConfigMap.
    assert not [k for k in secure if "password" in k or "jaas" in k]
    volumes = find(objs, "StatefulSet", "coinfeed-kafka")["spec"]["template"]["spec"]["volumes"]
    secrets = {v["secret"]["secretName"] for v in volumes if "secret" in v}
    assert secrets == {"kafka-client-tls", "kafka-client-jaas", "coinfeed-kafka-users"}
    # The produce/consume test pod speaks PLAINTEXT only.
    assert not list(by_kind(objs, "Pod"))


# --- the start script, run for real ----------------------------------------------------------------


def _start_env(objs: Sequence[Obj], namespace: str) -> dict[str, str]:
    sts = find(objs, "StatefulSet", "coinfeed-kafka")
    env: dict[str, str] = {}
    for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]:
        env[e["name"]] = e.get("value", namespace)  # the one fieldRef is metadata.namespace
    return env


def _run_start_script(
    objs: Sequence[Obj], tmp: Path, hostname: str, kafka_home: Path, secrets: Path | None = None
) -> Path:
    import os
    import subprocess

    data = find(objs, "ConfigMap", "coinfeed-kafka-config")["data"]
    config_dir = tmp / "config"
    config_dir.mkdir()
    # The one path the chart fixes inside server.properties: point it at the test's folder.
    server = data["server.properties"].replace("/var/lib/kafka/data/logs", str(tmp / "data/logs"))
    (config_dir / "server.properties").write_text(server)
    (config_dir / "kafka-start.sh").write_text(data["kafka-start.sh"])
    env = {
        **os.environ,
        **_start_env(objs, "data"),
        "HOSTNAME": hostname,
        "KAFKA_HOME": str(kafka_home),
        "JAVA_HOME": str(kafka_home.parent / "java-home"),
        "CONFIG_DIR": str(config_dir),
        "WORK_DIR": str(tmp / "work"),
        "SECRETS_DIR": str(secrets or tmp / "no-secrets"),
        "RECORD": str(tmp / "started-with.properties"),
    }
    proc = subprocess.run(
        ["bash", str(config_dir / "kafka-start.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp / "started-with.properties"


@pytest.fixture
def kafka_home(tmp_path: Path) -> Path:
    """A Kafka home laid out like the images' (/opt/kafka/libs: the Maven Central jars of
    versions.env's Kafka) and a JAVA_HOME whose java runs everything for real (StorageTool
    formats for real) except the broker itself, whose command line's properties file it records."""
    import shutil

    from coinfeed.paths import kafka_jars_dir

    jars = kafka_jars_dir()
    if not list(jars.glob("kafka_*.jar")):
        pytest.skip(f"no Kafka jars in {jars}: run `make setup`")
    home = tmp_path / "kafka-home"
    home.mkdir()
    (home / "libs").symlink_to(jars)
    real_java = shutil.which("java")
    assert real_java, "java is needed (make setup checks it)"
    java = tmp_path / "java-home" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(
        "#!/bin/bash\n"
        'for a in "$@"; do [ "$a" = kafka.Kafka ] && { cp "${@: -1}" "$RECORD"; exit 0; }; done\n'
        f'exec {real_java} -Xmx128m "$@"\n'
    )
    java.chmod(0o755)
    return home


def test_start_script_broker_id_from_pod_ordinal_zookeeper_mode(
    helm: Helm, tmp_path: Path, kafka_home: Path
) -> None:
    objs = helm.template("kafka", namespace="data")
    started = properties(
        _run_start_script(objs, tmp_path, "coinfeed-kafka-2", kafka_home).read_text()
    )
    assert started["broker.id"] == "2"
    assert "node.id" not in started
    fqdn = "coinfeed-kafka-2.coinfeed-kafka-headless.data.svc.cluster.local"
    assert started["advertised.listeners"] == f"CLIENT://{fqdn}:9092,INTERNAL://{fqdn}:9094"
    assert started["log.retention.hours"] == "24"


def test_start_script_kraft_formats_storage_with_real_kafka(
    helm: Helm, tmp_path: Path, kafka_home: Path
) -> None:
    objs = helm.template("kafka", values=["ci/kraft-values.yaml"], namespace="data")
    started = properties(
        _run_start_script(objs, tmp_path, "coinfeed-kafka-1", kafka_home).read_text()
    )
    assert started["node.id"] == "1"
    # Kafka's own StorageTool accepted the rendered KRaft config and formatted the log dir.
    meta = properties((tmp_path / "data/logs/meta.properties").read_text())
    assert meta["cluster.id"] == "MkU3OEVBNTcwNTJENDM2Qg"
    assert meta["node.id"] == "1"


def test_start_script_reads_secrets_from_files(
    helm: Helm, tmp_path: Path, kafka_home: Path
) -> None:
    objs = helm.template("kafka", values=["ci/sasl-ssl-values.yaml"])
    secrets = tmp_path / "secrets"
    (secrets / "tls").mkdir(parents=True)
    (secrets / "sasl").mkdir()
    (secrets / "tls" / "password").write_text("s3cret-store-pw")
    (secrets / "sasl" / "jaas-config").write_text(
        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    )
    started = _run_start_script(objs, tmp_path, "coinfeed-kafka-0", kafka_home, secrets)
    props = properties(started.read_text())
    assert props["listener.name.client.ssl.keystore.password"] == "s3cret-store-pw"
    assert props["listener.name.client.scram-sha-512.sasl.jaas.config"].startswith(
        "org.apache.kafka.common.security.scram.ScramLoginModule"
    )
    rendered = helm.template_text("kafka", values=["ci/sasl-ssl-values.yaml"]).stdout
    assert "s3cret" not in rendered


def test_start_script_refuses_a_hostname_without_ordinal(helm: Helm, tmp_path: Path) -> None:
    import os
    import subprocess

    objs = helm.template("kafka")
    script = tmp_path / "kafka-start.sh"
    script.write_text(find(objs, "ConfigMap", "coinfeed-kafka-config")["data"]["kafka-start.sh"])
    env = {**os.environ, **_start_env(objs, "data"), "HOSTNAME": "kafka-broker"}
    proc = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0
    assert "cannot take a broker id from hostname 'kafka-broker'" in proc.stderr


# --- bad values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chart", "sets", "fragments"),
    [
        ("kafka", ["replicas=0"], ["/replicas", "minimum"]),
        ("kafka", ["metadataMode=etcd"], ["/metadataMode", "zookeeper", "kraft"]),
        ("kafka", ["zookeeper.replicas=2"], ["/zookeeper/replicas"]),
        ("kafka", ["brokers=3"], ["additional properties 'brokers' not allowed"]),
        ("kafka", ["listeners.client.protocol=TLS"], ["/listeners/client/protocol"]),
        ("kafka", ["listeners.client.protocol=SASL_PLAINTEXT"], ["/sasl/existingSecret"]),
        ("kafka", ["image.tag=latest"], ["/image/tag"]),
        ("kafka", ["config.extra.ssl\\.keystore\\.password=x"], ["'ssl.keystore.password'"]),
        (
            "kafka",
            ["config.defaultReplicationFactor=4"],
            ["config.defaultReplicationFactor (4) must not exceed replicas (3)"],
        ),
        (
            "kafka",
            ["config.minInsyncReplicas=3", "config.defaultReplicationFactor=2"],
            ["config.minInsyncReplicas (3) must not exceed config.defaultReplicationFactor (2)"],
        ),
        ("coinfeed", ["kafka.replicas=0"], ["kafka:", "/replicas", "minimum"]),
        ("coinfeed", ["kafka.metadataMode=raft"], ["/metadataMode"]),
        ("coinfeed", ["lake.mode=nfs"], ["/lake/mode"]),
        ("coinfeed", ["lake.mode=s3"], ["/lake/s3"]),
        ("coinfeed", ["pushgateway.port=80"], ["/pushgateway/port"]),
        (
            "coinfeed",
            ["dashbords.enabled=false"],
            ["additional properties 'dashbords' not allowed"],
        ),
        (
            "coinfeed",
            ["operator.kafka.bootstrap=elsewhere:9092"],
            ["set operator.kafka.bootstrap=coinfeed-kafka:9092"],
        ),
        (
            "coinfeed",
            ["operator.lake.persistentVolumeClaim=other"],
            ["set operator.lake.persistentVolumeClaim=coinfeed-lake"],
        ),
        (
            "coinfeed",
            ["operator.spark.serviceAccountName=default"],
            ["set operator.spark.serviceAccountName=coinfeed-spark"],
        ),
        (
            "coinfeed",
            [
                "lake.mode=s3",
                "lake.s3.uri=s3a://bkt/lake",
                "lake.s3.existingSecret=lake-keys",
                "operator.lake.path=s3a://bkt/lake",
                "operator.lake.persistentVolumeClaim=",
            ],
            ["set operator.lake.s3.existingSecret=lake-keys"],
        ),
        ("coinfeed", ["operator.spark.master=yarn"], ["/spark/master"]),
        (
            "coinfeed",
            [
                "operator.spark.master=k8s://https://kubernetes.default.svc",
                "lake.pvc.accessMode=ReadWriteOncePod",
            ],
            ["executor pods mount the lake too; use ReadWriteMany"],
        ),
    ],
)
def test_bad_values_fail_with_a_message_naming_the_value(
    helm: Helm, chart: str, sets: list[str], fragments: list[str]
) -> None:
    proc = helm.template_text(chart, sets=sets, check=False)
    assert proc.returncode != 0, f"{sets} rendered:\n{proc.stdout[:500]}"
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


# --- security, resources, probes, labels on everything rendered ------------------------------------


def _is_test_hook(obj: Obj) -> bool:
    return bool(obj["metadata"].get("annotations", {}).get("helm.sh/hook") == "test")


@pytest.mark.parametrize(("chart", "values"), lint_matrix(), ids=lambda x: x or "defaults")
def test_every_pod_is_restricted_with_resources_and_probes(
    helm: Helm, chart: str, values: str | None
) -> None:
    objs = helm.template(chart, values=[values] if values else [])
    pods = [(o, pod_spec(o)) for o in objs if pod_spec(o) is not None]
    assert pods
    problems: list[str] = []
    for obj, spec in pods:
        assert spec is not None
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problems.append(f"{where}: pod runAsNonRoot is not true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cw}: allowPrivilegeEscalation is not false")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{cw}: capabilities do not drop ALL")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cw}: root filesystem is writable")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(kind, {}):
                        problems.append(f"{cw}: no {r} {kind[:-1]}")
            tag = c["image"].rpartition(":")[2]
            if ":" not in c["image"] or tag == "latest" or "/" in tag:
                problems.append(f"{cw}: image {c['image']} is not pinned")
            if not _is_test_hook(obj) and obj["kind"] != "Job":
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe not in c:
                        problems.append(f"{cw}: no {probe}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("chart", ["kafka", "coinfeed"])
def test_app_kubernetes_io_labels_on_every_object(helm: Helm, chart: str) -> None:
    text = helm.template_text(
        chart, values=["ci/monitoring-values.yaml"] if chart == "coinfeed" else []
    ).stdout
    # Only this chart's own templates (the operator sub-chart has its own helper).
    own = [
        doc
        for src, doc in zip(
            re.findall(r"^# Source: (\S+)", text, re.M), text.split("\n---\n")[1:], strict=False
        )
        if not src.startswith("coinfeed/charts/operator/")
    ]
    objs = [o for d in own for o in yaml.safe_load_all(d) if isinstance(o, dict)]
    assert objs
    for obj in objs:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/version",
            "helm.sh/chart",
        ):
            assert key in labels, f"{where} lacks {key}"
        assert labels["app.kubernetes.io/part-of"] == "coinfeed", where


# --- umbrella: optional parts ------------------------------------------------------------------------


def test_monitoring_objects_only_when_enabled(helm: Helm) -> None:
    default = helm.template("coinfeed")
    assert not [o for o in default if o["apiVersion"].startswith("monitoring.coreos.com/")]
    objs = helm.template("coinfeed", values=["ci/monitoring-values.yaml"])
    kinds = sorted(o["kind"] for o in objs if o["apiVersion"] == "monitoring.coreos.com/v1")
    rule_files = sorted((CHARTS / "coinfeed" / "rules").glob("*.yaml"))
    assert kinds == sorted(
        ["PodMonitor", "ServiceMonitor", "ServiceMonitor"] + ["PrometheusRule"] * len(rule_files)
    )
    for o in objs:
        if o["apiVersion"] == "monitoring.coreos.com/v1":
            assert o["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = list(by_kind(objs, "PrometheusRule"))
    for rule_file, rule in zip(
        rule_files, sorted(rules, key=lambda r: r["metadata"]["name"]), strict=True
    ):
        assert rule["spec"] == yaml.safe_load(rule_file.read_text())
    pushgateway = find(objs, "ServiceMonitor", "coinfeed-pushgateway")
    assert pushgateway["spec"]["endpoints"][0]["honorLabels"] is True
    producers = find(objs, "PodMonitor", "coinfeed-producers")
    assert producers["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "coinfeed-producer"
    }


@pytest.mark.parametrize(
    ("sets", "name"),
    [([], "coinfeed-operator"), (["operator.nameOverride=feeds-operator"], "feeds-operator")],
)
def test_operator_servicemonitor_selects_the_operator_pods(
    helm: Helm, sets: list[str], name: str
) -> None:
    """The sub-chart is aliased `operator`: its pods, its metrics Service and the umbrella's
    ServiceMonitor must still agree on app.kubernetes.io/name."""
    objs = helm.template("coinfeed", values=["ci/monitoring-values.yaml"], sets=sets)
    dep = find(objs, "Deployment", "coinfeed-operator")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/name"] == name
    svc = find(objs, "Service", "coinfeed-operator-metrics")
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    monitor = find(objs, "ServiceMonitor", "coinfeed-operator")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/name"] == name
    assert selector.items() <= svc["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]


def test_dashboards_as_configmaps_with_the_sidecar_label(helm: Helm) -> None:
    files = sorted((CHARTS / "coinfeed" / "dashboards").glob("*.json"))
    # The dashboards exist now: losing them must fail here, not skip.
    assert [f.name for f in files] == ["market-sentiment.json", "pipeline-health.json"]
    maps = [
        o
        for o in helm.template("coinfeed")
        if o["kind"] == "ConfigMap" and "grafana_dashboard" in o["metadata"]["labels"]
    ]
    assert len(maps) == len(files)
    by_file = {name: cm for cm in maps for name in cm["data"]}
    for f in files:
        cm = by_file[f.name]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"][f.name]) == json.loads(f.read_text())
    off = helm.template("coinfeed", sets=["dashboards.enabled=false"])
    assert not [o for o in off if "grafana_dashboard" in o["metadata"].get("labels", {})]


def test_spark_serviceaccount_has_no_rights_in_local_mode(helm: Helm) -> None:
    objs = helm.template("coinfeed", namespace="feeds")
    sa = find(objs, "ServiceAccount", "coinfeed-spark")
    assert sa["automountServiceAccountToken"] is False
    assert not [
        o for o in objs if o["kind"] in ("Role", "RoleBinding") and "spark" in o["metadata"]["name"]
    ]
    assert not list(by_kind(objs, "ValidatingAdmissionPolicy"))


def test_spark_driver_may_run_executor_pods_only_in_k8s_mode(helm: Helm) -> None:
    objs = helm.template("coinfeed", values=["ci/spark-k8s-values.yaml"], namespace="feeds")
    sa = find(objs, "ServiceAccount", "coinfeed-spark")
    role = find(objs, "Role", "coinfeed-spark")
    binding = find(objs, "RoleBinding", "coinfeed-spark")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "feeds"}
    ]
    # Exactly what Spark's client-mode driver does with the job's settings: nothing but pods.
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["get", "list", "watch", "create", "delete", "deletecollection"],
        }
    ]
    policy = find(objs, "ValidatingAdmissionPolicy", "coinfeed-spark-executors.feeds")
    assert policy["spec"]["matchConditions"][0]["expression"] == (
        'request.userInfo.username == "system:serviceaccount:feeds:coinfeed-spark"'
    )
    policy_binding = find(
        objs, "ValidatingAdmissionPolicyBinding", "coinfeed-spark-executors.feeds"
    )
    assert policy_binding["spec"]["validationActions"] == ["Deny"]
    assert policy_binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "feeds"
    }
    off = helm.template(
        "coinfeed",
        values=["ci/spark-k8s-values.yaml"],
        sets=["spark.admissionPolicy.enabled=false"],
    )
    assert not list(by_kind(off, "ValidatingAdmissionPolicy"))


def test_network_policies(helm: Helm) -> None:
    objs = helm.template("coinfeed")
    policies = {o["metadata"]["name"]: o for o in by_kind(objs, "NetworkPolicy")}
    brokers = policies["coinfeed-kafka-brokers"]
    assert brokers["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "broker"
    client_rule, peer_rule = brokers["spec"]["ingress"]
    assert client_rule["ports"] == [{"port": 9092}]
    assert "ports" not in peer_rule  # brokers reach each other on every port
    assert (
        peer_rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        == "broker"
    )
    assert {"coinfeed-kafka-zookeeper", "coinfeed-producers", "coinfeed-pushgateway"} <= set(
        policies
    )
    # Spark in k8s mode: executors reach the driver's RPC and block-manager ports, and the
    # driver and executors reach the executors' block managers: the ports the job fixes.
    from coinfeed import job_env as jenv
    from coinfeed.operator.desired import EXECUTOR_COMPONENT

    driver, executors = policies["coinfeed-hourly"], policies["coinfeed-hourly-executors"]
    assert driver["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "coinfeed-hourly",
        "app.kubernetes.io/component": "hourly",
    }
    (rule,) = driver["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        EXECUTOR_COMPONENT
    )
    assert rule["ports"] == [{"port": jenv.DRIVER_PORT}, {"port": jenv.BLOCK_MANAGER_PORT}]
    assert executors["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        EXECUTOR_COMPONENT
    )
    (rule,) = executors["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "coinfeed-hourly"}}}
    ]
    assert rule["ports"] == [{"port": jenv.BLOCK_MANAGER_PORT}]
    assert not list(
        by_kind(helm.template("coinfeed", sets=["networkPolicy.enabled=false"]), "NetworkPolicy")
    )


def test_lake_pvc_or_s3(helm: Helm) -> None:
    pvc = find(helm.template("coinfeed"), "PersistentVolumeClaim", "coinfeed-lake")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    s3 = helm.template("coinfeed", values=["ci/kraft-s3-values.yaml"])
    assert not list(by_kind(s3, "PersistentVolumeClaim"))


def test_default_install_runs_the_hourly_job_as_the_spark_account(helm: Helm) -> None:
    """Umbrella values -> operator settings ConfigMap -> the CronJob the operator builds."""
    from coinfeed import job_env as jenv
    from coinfeed.operator.desired import hourly_cronjob
    from coinfeed.operator.settings import settings_from_env
    from coinfeed.operator.spec import parse_spec

    spec = parse_spec({"coin": "btc", "prices": {"source": "binance", "pair": "BTC/USDT"}})

    def job_pod(objs: Sequence[Obj]) -> Obj:
        (cm,) = [
            c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"].endswith("-settings")
        ]
        settings = settings_from_env(cm["data"])
        cron = hourly_cronjob("btc", "feeds", "uid", spec, settings)
        pod: Obj = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return pod

    objs = helm.template("coinfeed", namespace="feeds")
    find(objs, "ServiceAccount", "coinfeed-spark")
    pod = job_pod(objs)
    assert pod["serviceAccountName"] == "coinfeed-spark"
    assert pod["automountServiceAccountToken"] is False  # local mode by default

    k8s = job_pod(helm.template("coinfeed", values=["ci/spark-k8s-values.yaml"]))
    assert k8s["automountServiceAccountToken"] is True
    assert k8s["securityContext"]["runAsUser"] == 185
    assert any(v["name"] == "executor-template" for v in k8s["volumes"])
    k8s_env = {e["name"]: e for e in k8s["containers"][0]["env"]}
    assert k8s_env[jenv.EXECUTOR_INSTANCES]["value"] == "2"
    # Spark RPC authentication on by default: the driver mounts the chart's Secret by name.
    (rpc,) = [v for v in k8s["volumes"] if v["name"] == "spark-rpc"]
    assert rpc["secret"]["secretName"] == "coinfeed-operator-spark-rpc"
    assert k8s_env[jenv.RPC_SECRET_NAME]["value"] == "coinfeed-operator-spark-rpc"
    assert not [v for v in pod["volumes"] if v["name"] == "spark-rpc"]  # local mode

    s3 = job_pod(helm.template("coinfeed", values=["ci/kraft-s3-values.yaml"]))
    env = {e["name"]: e for e in s3["containers"][0]["env"]}
    assert env[jenv.S3_ENDPOINT]["value"] == "http://minio.storage.svc:9000"
    assert env[jenv.AWS_ACCESS_KEY_ID]["valueFrom"]["secretKeyRef"] == {
        "name": "coinfeed-lake-s3",
        "key": jenv.AWS_ACCESS_KEY_ID,
    }


def _operator_environment(objs: Sequence[Obj], deployment: str) -> dict[str, str]:
    """The operator container's environment as the kubelet builds it: its ConfigMap envFrom,
    then its own env values."""
    dep = find(objs, "Deployment", deployment)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= find(objs, "ConfigMap", source["configMapRef"]["name"])["data"]
    env |= {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return env


@pytest.mark.parametrize(
    ("chart", "release", "secret", "deployment"),
    [
        ("coinfeed-operator", "rel", "rel-coinfeed-operator-spark-rpc", "rel-coinfeed-operator"),
        ("coinfeed", "coinfeed", "coinfeed-operator-spark-rpc", "coinfeed-operator"),
    ],
)
def test_spark_rpc_secret_generated_and_only_its_name_reaches_the_operator(
    helm: Helm, chart: str, release: str, secret: str, deployment: str
) -> None:
    objs = helm.template(chart, release=release, namespace="feeds")
    obj = find(objs, "Secret", secret)
    assert obj["metadata"]["namespace"] == "feeds"
    assert list(obj["data"]) == ["secret"]
    key = base64.b64decode(obj["data"]["secret"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{64}", key), "a random 64-character key"
    # Random per render here (no cluster to look up); an installed key is kept on upgrade.
    again = find(helm.template(chart, release=release, namespace="feeds"), "Secret", secret)
    assert base64.b64decode(again["data"]["secret"]).decode() != key
    env = _operator_environment(objs, deployment)
    assert env["COINFEED_OPERATOR_SPARK_RPC_SECRET"] == secret
    rendered = yaml.safe_dump_all([o for o in objs if o["kind"] != "Secret"])
    assert key not in rendered and obj["data"]["secret"] not in rendered

    sets = ["spark.rpcAuthentication=false"]
    off = helm.template(
        chart,
        release=release,
        namespace="feeds",
        sets=sets if chart != "coinfeed" else [f"operator.{s}" for s in sets],
    )
    assert not [o for o in by_kind(off, "Secret") if o["metadata"]["name"] == secret]
    assert _operator_environment(off, deployment)["COINFEED_OPERATOR_SPARK_RPC_SECRET"] == ""


def test_spark_rpc_stays_on_when_the_value_is_absent(helm: Helm) -> None:
    """`helm upgrade --reuse-values` from a chart without the value renders without it: the
    secure default must hold then too."""
    objs = helm.template("coinfeed-operator", release="rel", sets=["spark.rpcAuthentication=null"])
    find(objs, "Secret", "rel-coinfeed-operator-spark-rpc")
    env = _operator_environment(objs, "rel-coinfeed-operator")
    assert env["COINFEED_OPERATOR_SPARK_RPC_SECRET"] == "rel-coinfeed-operator-spark-rpc"


def test_spark_rpc_secret_name_leaves_room_for_sparks_volume_name(helm: Helm) -> None:
    from coinfeed.operator.settings import MAX_RPC_SECRET_NAME, settings_from_env

    objs = helm.template("coinfeed-operator", sets=["fullnameOverride=" + "x" * 52])
    (secret,) = by_kind(objs, "Secret")
    name = secret["metadata"]["name"]
    assert len(name) <= MAX_RPC_SECRET_NAME and name.endswith("-spark-rpc")
    env = _operator_environment(objs, "x" * 52)
    assert settings_from_env(env).spark_rpc_secret == name


# --- values.yaml documented, schema strict -------------------------------------------------------


@pytest.mark.parametrize("chart", ["kafka", "coinfeed"])
def test_every_value_is_documented(chart: str) -> None:
    """Each value (a key with a value on its line) has a comment right above it, or sits under a
    documented parent (e.g. `resources:` documents its requests and limits)."""
    lines = (CHARTS / chart / "values.yaml").read_text().splitlines()
    documented: dict[int, bool] = {}  # indentation -> the enclosing key at that level is documented
    undocumented: list[str] = []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z0-9_.-]+):(.*)$", line)
        if not m:
            continue
        indent = len(m.group(1))
        documented = {k: v for k, v in documented.items() if k < indent}
        has_comment = i > 0 and lines[i - 1].strip().startswith("#")
        covered = has_comment or any(documented.values())
        is_leaf = m.group(3).split("#")[0].strip() != ""
        if is_leaf and not covered:
            undocumented.append(m.group(2))
        documented[indent] = covered
    assert not undocumented, f"{chart}/values.yaml: undocumented values {undocumented}"


def _objects_without_additional_false(schema: object, path: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and schema.get("type") == "object"
            and "description" not in schema
            and schema.get("additionalProperties") is not False
        ):
            out.append(path or "/")
        for key, value in schema.items():
            out += _objects_without_additional_false(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            out += _objects_without_additional_false(value, f"{path}/{i}")
    return out


@pytest.mark.parametrize("chart", ["kafka", "coinfeed"])
def test_schema_rejects_unknown_keys_everywhere(chart: str) -> None:
    schema = json.loads((CHARTS / chart / "values.schema.json").read_text())
    # Objects with a description are pass-throughs validated elsewhere (sub-chart values, globals).
    assert _objects_without_additional_false(schema) == []
