"""The charts as real pods on the local single-node cluster (issue: a real Kubernetes node).

One node for the session (``local_node``), the umbrella chart installed once by
`scripts/deploy-local.sh` (``coinfeed_release``): 3 ZooKeeper + 3 brokers, the operator and the
Pushgateway, in a namespace that enforces the restricted Pod Security level. Tests that break
something restore it before they end, in the order this file lists them; the KRaft variant and
the uninstall come last.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from localnode import config as cfg
from localnode import node
from tests.support.e2e_body import (
    assert_no_admission_warnings,
    assert_release_ready,
    helm_test,
    release_pods,
)
from tests.support.localnode import NAMESPACE, RELEASE, REPO, Kube, LocalNode, deploy, pod_ready

Release = tuple[LocalNode, str]

PRODUCER_IMAGE = "coinfeed-producer:dev"

# A client inside the cluster: RF 3 / min ISR 2 topic, numbered records with acks=all and
# idempotence, slowly enough that a broker can be deleted mid-stream; then everything is read
# back and counted. Prints one JSON line per phase.
DURABILITY_SCRIPT = r"""
import json, sys, time
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
try:
    admin.create_topics([NewTopic(topic, 3, 3, topic_configs={"min.insync.replicas": "2"})])
except TopicAlreadyExistsError:
    pass
for _ in range(60):  # metadata reaches every broker a moment after the create
    meta = admin.describe_topics([topic])[0]
    if len(meta["partitions"]) == 3:
        break
    time.sleep(0.5)
print(json.dumps({"phase": "topic", "partitions": len(meta["partitions"]),
                  "replicas": sorted(len(p.get("replicas", p.get("replica_nodes", []))) for p in meta["partitions"])}), flush=True)
producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                         retries=2147483647, delivery_timeout_ms=120000, linger_ms=5)
acked, failed = [], []
for i in range(n):
    fut = producer.send(topic, key=str(i).encode(), value=str(i).encode())
    fut.add_callback(lambda _m, i=i: acked.append(i))
    fut.add_errback(lambda e, i=i: failed.append((i, repr(e))))
    if i % 100 == 0:
        print(json.dumps({"phase": "progress", "sent": i, "acked": len(acked)}), flush=True)
    time.sleep(0.01)
producer.flush(180)
producer.close()
consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                         enable_auto_commit=False, consumer_timeout_ms=15000)
seen = [int(r.value) for r in consumer]
print(json.dumps({"phase": "done", "acked": len(acked), "failed": len(failed),
                  "acked_set": len(set(acked)), "consumed": len(seen), "unique": len(set(seen)),
                  "lost": len(set(acked) - set(seen))}), flush=True)
"""


def restricted_pod(name: str, image: str, command: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "coinfeed-tests"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": command,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "readOnlyRootFilesystem": True,
                    },
                    "resources": {
                        "limits": {"memory": "256Mi"},
                        "requests": {"cpu": "50m", "memory": "128Mi"},
                    },
                }
            ],
        },
    }


def json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


# --- the node itself --------------------------------------------------------------------------


def test_node_ready_dns_and_no_route_out(local_node: LocalNode) -> None:
    kube = local_node.kube
    nodes = kube.get("nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == [cfg.NODE_NAME]
    assert node.resolve(f"kubernetes.default.svc.{cfg.CLUSTER_DOMAIN}") == [
        cfg.KUBERNETES_SERVICE_IP
    ]
    # The cluster zone only: a name outside it is not forwarded anywhere.
    assert node.resolve("pypi.org") == []
    default_class = [
        sc["metadata"]["name"]
        for sc in kube.get("storageclass")["items"]
        if sc["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    assert default_class == [cfg.STORAGE_CLASS]
    # Pods get routes to the pod and service ranges only: no default route out of the node.
    conflist = json.loads((local_node.layout.cni_conf_dir / "10-coinfeed.conflist").read_text())
    routes = [r["dst"] for r in conflist["plugins"][0]["ipam"]["routes"]]
    assert "0.0.0.0/0" not in routes and not conflist["plugins"][0]["isDefaultGateway"]
    forward = node.run(["iptables", "-w", "-S", cfg.ISOLATION_CHAIN]).stdout
    assert f"-s {cfg.POD_CIDR} ! -d {cfg.POD_CIDR} -j DROP" in forward


def test_provisioner_binds_and_releases_a_volume(local_node: LocalNode) -> None:
    kube = local_node.kube
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "provisioner-check", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
    }
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(claim))
    bound = kube.wait_until(
        "the claim Bound by the provisioner",
        lambda: (
            kube.get("-n", "default", "pvc", "provisioner-check")["status"].get("phase") == "Bound"
        ),
        timeout=60,
    )
    assert bound
    pv_name = kube.get("-n", "default", "pvc", "provisioner-check")["spec"]["volumeName"]
    path = kube.get("pv", pv_name)["spec"]["hostPath"]["path"]
    assert path.startswith(str(local_node.layout.volumes))
    kube.kubectl("-n", "default", "delete", "pvc", "provisioner-check")
    kube.wait_until(
        "the released volume and its directory removed",
        lambda: (
            kube.kubectl("get", "pv", pv_name, check=False).returncode != 0
            and not Path(path).exists()
        ),
        timeout=60,
    )


# --- the umbrella chart ----------------------------------------------------------------------


def test_umbrella_chart_all_pods_ready_under_restricted(coinfeed_release: Release) -> None:
    local, helm_output = coinfeed_release
    assert_release_ready(local.kube, NAMESPACE, "zookeeper")
    assert_no_admission_warnings(helm_output)
    # Every pod of the release runs as non-root under the restricted level (admission enforced it).
    for pod in local.kube.pods(NAMESPACE):
        sc = pod["spec"].get("securityContext", {})
        assert sc.get("runAsNonRoot") is True, pod["metadata"]["name"]


def test_kafka_and_operator_helm_tests_pass_and_fail_when_broken(coinfeed_release: Release) -> None:
    local, _ = coinfeed_release
    kube = local.kube
    ok, out = helm_test(kube, RELEASE, NAMESPACE)
    assert ok, out
    assert "test-produce-consume" in out and "test-metrics" in out
    # Broken on purpose: no operator answering → the operator's test fails; then restored.
    kube.kubectl(
        "-n",
        NAMESPACE,
        "scale",
        "deployment",
        "-l",
        "app.kubernetes.io/component=operator",
        "--replicas=0",
    )
    try:
        kube.wait_until(
            "operator pods gone",
            lambda: release_pods(kube, NAMESPACE)["operator"] == 0 or None,
            120,
        )
        ok, out = helm_test(kube, RELEASE, NAMESPACE, only="coinfeed-operator-test-metrics")
        assert not ok and "test-metrics" in out and "failed" in out.lower(), out
    finally:
        kube.kubectl(
            "-n",
            NAMESPACE,
            "scale",
            "deployment",
            "-l",
            "app.kubernetes.io/component=operator",
            "--replicas=1",
        )
    # Broken on purpose: no brokers behind the bootstrap Service → the Kafka test fails.
    svc = kube.get("-n", NAMESPACE, "service", "coinfeed-kafka")
    selector = svc["spec"]["selector"]
    kube.kubectl(
        "-n",
        NAMESPACE,
        "patch",
        "service",
        "coinfeed-kafka",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"selector": {"app.kubernetes.io/component": "nothing"}}}),
    )
    try:
        ok, out = helm_test(kube, RELEASE, NAMESPACE, only="coinfeed-kafka-test-produce-consume")
        assert not ok and "test-produce-consume" in out, out
    finally:
        kube.kubectl(
            "-n",
            NAMESPACE,
            "patch",
            "service",
            "coinfeed-kafka",
            "--type=json",
            "-p",
            json.dumps([{"op": "replace", "path": "/spec/selector", "value": selector}]),
        )
    assert_release_ready(kube, NAMESPACE, "zookeeper")
    # Restored: both pass again (and helm removes the failed runs' test pods on success).
    ok, out = helm_test(kube, RELEASE, NAMESPACE)
    assert ok, out


def test_broker_deleted_mid_produce_loses_and_duplicates_nothing(coinfeed_release: Release) -> None:
    local, _ = coinfeed_release
    kube = local.kube
    pvc_before = kube.get("-n", NAMESPACE, "pvc", "data-coinfeed-kafka-1")["metadata"]["uid"]
    pod = restricted_pod(
        "durability-client",
        PRODUCER_IMAGE,
        ["python", "-c", DURABILITY_SCRIPT, "coinfeed-kafka:9092", "node-durability", "3000"],
    )
    kube.kubectl("-n", NAMESPACE, "delete", "pod", "durability-client", "--ignore-not-found")
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    try:

        def progressed() -> bool:
            logs = kube.kubectl("-n", NAMESPACE, "logs", "durability-client", check=False).stdout
            return any(
                line.get("phase") == "progress" and line["acked"] >= 500
                for line in json_lines(logs)
            )

        kube.wait_until("the client to have 500 records acknowledged", progressed, timeout=300)
        kube.kubectl("-n", NAMESPACE, "delete", "pod", "coinfeed-kafka-1", "--wait=false")
        phase = kube.wait_until(
            "the client to finish",
            lambda: (
                kube.get("-n", NAMESPACE, "pod", "durability-client")["status"]["phase"]
                in ("Succeeded", "Failed")
                and kube.get("-n", NAMESPACE, "pod", "durability-client")["status"]["phase"]
            ),
            timeout=600,
            interval=5,
        )
        logs = kube.kubectl("-n", NAMESPACE, "logs", "durability-client").stdout
        assert phase == "Succeeded", logs[-3000:]
        lines = json_lines(logs)
        topic = next(line for line in lines if line["phase"] == "topic")
        assert topic["partitions"] == 3 and topic["replicas"] == [3, 3, 3]
        done = next(line for line in lines if line["phase"] == "done")
        assert done["failed"] == 0 and done["acked"] == 3000 and done["acked_set"] == 3000, done
        assert done["lost"] == 0, done
        assert done["consumed"] == done["unique"] == 3000, done  # no duplicate
    finally:
        kube.kubectl(
            "-n",
            NAMESPACE,
            "delete",
            "pod",
            "durability-client",
            "--ignore-not-found",
            "--wait=false",
        )
    # The broker comes back as broker 1 on the same claim, with its data.
    kube.wait_until(
        "coinfeed-kafka-1 Ready again",
        lambda: pod_ready(kube.get("-n", NAMESPACE, "pod", "coinfeed-kafka-1")),
        timeout=300,
    )
    assert (
        kube.get("-n", NAMESPACE, "pvc", "data-coinfeed-kafka-1")["metadata"]["uid"] == pvc_before
    )
    log = kube.kubectl("-n", NAMESPACE, "logs", "coinfeed-kafka-1").stdout
    assert "[KafkaServer id=1] started" in log
    listing = kube.kubectl(
        "-n", NAMESPACE, "exec", "coinfeed-kafka-1", "--", "ls", "/var/lib/kafka/data/logs"
    ).stdout
    assert any(name.startswith("node-durability-") for name in listing.split()), listing


def _operator_pod(kube: Kube) -> dict[str, Any]:
    pods = [p for p in kube.pods(NAMESPACE, "app.kubernetes.io/component=operator") if pod_ready(p)]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def test_operator_pod_rbac_metrics_and_takeover(coinfeed_release: Release) -> None:
    local, _ = coinfeed_release
    kube = local.kube
    kube.wait_until(
        "one Ready operator pod", lambda: release_pods(kube, NAMESPACE)["operator"] == 1, 180
    )
    pod = _operator_pod(kube)
    sa = pod["spec"]["serviceAccountName"]
    assert sa != "default"
    as_sa = f"system:serviceaccount:{NAMESPACE}:{sa}"
    can = kube.kubectl(
        "auth", "can-i", "create", "deployments", "-n", NAMESPACE, "--as", as_sa, check=False
    )
    assert can.stdout.strip() == "yes"
    for verb, what in (("delete", "nodes"), ("create", "clusterroles"), ("get", "secrets")):
        cannot = kube.kubectl(
            "auth", "can-i", verb, what, "-n", "kube-system", "--as", as_sa, check=False
        )
        assert cannot.stdout.strip() == "no", (verb, what)
    # /metrics answers on the pod's address (the node reaches pod IPs directly).
    ip = pod["status"]["podIP"]
    port = next(
        p["containerPort"]
        for c in pod["spec"]["containers"]
        for p in c.get("ports", [])
        if p.get("name") == "metrics"
    )
    body = urllib.request.urlopen(f"http://{ip}:{port}/metrics", timeout=10).read().decode()
    assert "coinfeed_operator_reconciles_total" in body
    # Deleted: a new pod takes over.
    kube.kubectl("-n", NAMESPACE, "delete", "pod", pod["metadata"]["name"], "--wait=false")
    new = kube.wait_until(
        "a new Ready operator pod",
        lambda: [
            p
            for p in kube.pods(NAMESPACE, "app.kubernetes.io/component=operator")
            if pod_ready(p)
            and p["metadata"]["name"] != pod["metadata"]["name"]
            and not p["metadata"].get("deletionTimestamp")
        ],
        timeout=240,
    )
    assert len(new) == 1


def test_pods_have_no_route_out(coinfeed_release: Release) -> None:
    """A pod's routing table holds the pod and service ranges only (read from inside a pod; no
    packet is sent anywhere): nothing it does can leave the node."""
    local, _ = coinfeed_release
    kube = local.kube
    pod = restricted_pod("route-check", PRODUCER_IMAGE, ["cat", "/proc/net/route"])
    kube.kubectl("-n", NAMESPACE, "delete", "pod", "route-check", "--ignore-not-found")
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    try:
        kube.wait_until(
            "the route-check pod to finish",
            lambda: (
                kube.get("-n", NAMESPACE, "pod", "route-check")["status"]["phase"] == "Succeeded"
            ),
            timeout=120,
        )
        table = kube.kubectl("-n", NAMESPACE, "logs", "route-check").stdout.splitlines()[1:]
    finally:
        kube.kubectl(
            "-n", NAMESPACE, "delete", "pod", "route-check", "--ignore-not-found", "--wait=false"
        )
    destinations = {socket.inet_ntoa(bytes.fromhex(r.split()[1])[::-1]) for r in table if r.strip()}
    assert destinations, table
    assert "0.0.0.0" not in destinations, table  # no default route
    assert destinations <= {"10.244.0.0", "10.96.0.0"}, destinations


SPARK_IMAGE = "coinfeed-spark:dev"


@pytest.mark.parametrize("uid", [185, 10001])
def test_hourly_job_starts_in_its_image_under_any_uid(coinfeed_release: Release, uid: int) -> None:
    """The hourly job in its own image, as the image's user (185) and as a UID the image does
    not know (10001): it reads the in-cluster Kafka and writes the lake (no repository files,
    no passwd entry needed). The second takes a big run's path (full JVM profile, native checks,
    Kafka read in several tasks per core): no estimate is made when both are forced."""
    big = ["--jvm-profile", "full", "--validation", "native"] if uid == 10001 else []
    local, _ = coinfeed_release
    kube = local.kube
    for kind in ("prices", "tweets"):
        kube.kubectl(
            "-n",
            NAMESPACE,
            "exec",
            "coinfeed-kafka-0",
            "--",
            "bash",
            "-c",
            "java -Xmx96m -cp '/opt/kafka/libs/*' org.apache.kafka.tools.TopicCommand "
            f"--bootstrap-server localhost:9092 --create --if-not-exists --topic coinfeed.btc.{kind} "
            "--partitions 3 --replication-factor 3 2>/dev/null",
            timeout=180,
        )
    name = f"hourly-uid-{uid}"
    pod = restricted_pod(
        name,
        SPARK_IMAGE,
        [
            "/opt/coinfeed/entrypoint.sh",
            "coinfeed",
            "hourly",
            "--coin",
            "btc",
            "--lake",
            "/lake",
            "--bootstrap",
            "coinfeed-kafka:9092",
            "--from",
            "2026-01-01T00",
            "--to",
            "2026-01-01T00",
            "--no-gaps",
            "--driver-memory",
            "640m",
            *big,
        ],
    )
    spec = pod["spec"]
    spec["securityContext"]["runAsUser"] = uid
    spec["securityContext"]["runAsGroup"] = uid
    container = spec["containers"][0]
    container["resources"] = {
        "limits": {"memory": "1536Mi"},
        "requests": {"cpu": "100m", "memory": "512Mi"},
    }
    container["volumeMounts"] = [
        {"name": "lake", "mountPath": "/lake"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    spec["volumes"] = [{"name": "lake", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    kube.kubectl("-n", NAMESPACE, "delete", "pod", name, "--ignore-not-found")
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    try:
        phase = kube.wait_until(
            f"the hourly job pod (UID {uid}) to finish",
            lambda: (
                (p := kube.get("-n", NAMESPACE, "pod", name)["status"].get("phase"))
                in ("Succeeded", "Failed")
                and p
            ),
            timeout=600,
            interval=5,
        )
        logs = kube.kubectl("-n", NAMESPACE, "logs", name).stdout
    finally:
        kube.kubectl("-n", NAMESPACE, "delete", "pod", name, "--ignore-not-found", "--wait=false")
    assert phase == "Succeeded", logs[-4000:]
    summaries = [line for line in json_lines(logs) if line.get("summary") == "hourly"]
    assert summaries and summaries[0]["coin"] == "btc", logs[-2000:]
    assert summaries[0]["hours"] == ["2026-01-01T00"]
    chosen = [line for line in json_lines(logs) if line.get("msg") == "driver JVM profile"]
    assert len(chosen) == 1, logs[-2000:]
    want = ("full", "native", True) if big else ("quick", "pydantic", False)
    assert (chosen[0]["profile"], chosen[0]["validation"], chosen[0]["split_reads"]) == want


def test_uninstall_leaves_nothing_then_a_kraft_namespace_with_a_feed_can_be_deleted(
    coinfeed_release: Release,
) -> None:
    local, _ = coinfeed_release
    kube = local.kube
    # A feed whose deletion waits for its topics (finalizer): uninstalling the operator must let
    # it go (the chart's pre-delete hook), topics kept, so it can still be deleted afterwards.
    doc = _replay_feed()
    doc["metadata"]["namespace"] = NAMESPACE
    doc["spec"]["deletionPolicy"] = "Delete"
    feed_name = doc["metadata"]["name"]
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    kube.wait_until(
        "the feed holding its finalizer",
        lambda: kube.get("-n", NAMESPACE, "coinfeed", feed_name)["metadata"].get("finalizers"),
        120,
    )
    kube.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "5m", timeout=400)
    kept = kube.get("-n", NAMESPACE, "coinfeed", feed_name)
    assert not kept["metadata"].get("finalizers"), kept["metadata"]
    events = kube.get("-n", NAMESPACE, "events", "--field-selector", "reason=TopicsKept")
    assert [e for e in events["items"] if e["involvedObject"]["name"] == feed_name], events
    kube.kubectl("-n", NAMESPACE, "delete", "coinfeed", feed_name, "--timeout=30s")
    kube.wait_until(
        "no pods left after helm uninstall", lambda: not kube.pods(NAMESPACE) or None, 300
    )
    stuck = [
        f"{kind}/{o['metadata']['name']}"
        for kind in ("pods", "pvc", "coinfeeds")
        for o in kube.get("-n", NAMESPACE, kind)["items"]
        if o["metadata"].get("finalizers") and o["metadata"].get("deletionTimestamp")
    ]
    assert not stuck
    kube.kubectl("-n", NAMESPACE, "delete", "pvc", "--all", "--wait=true", timeout=300)
    output = deploy(local, KRAFT_NS, kafka_mode="kraft")
    assert_release_ready(kube, KRAFT_NS, "kraft")
    assert_no_admission_warnings(output)
    ok, out = helm_test(kube, RELEASE, KRAFT_NS)
    assert ok, out
    # A feed whose deletion waits for its topics (finalizer), served by the operator that lives in
    # the same namespace: deleting the namespace must still finish. Since Kubernetes 1.34 its pods
    # go first (ordered namespace deletion), so the operator stops before the feed is even marked.
    doc = json.loads(json.dumps(_replay_feed()))
    doc["metadata"]["namespace"] = KRAFT_NS
    doc["spec"]["deletionPolicy"] = "Delete"
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(doc))

    def ready_with_finalizer() -> bool:
        f = kube.get("-n", KRAFT_NS, "coinfeed", doc["metadata"]["name"])
        ready = [c for c in f.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        return (
            bool(f["metadata"].get("finalizers")) and bool(ready) and ready[0]["status"] == "True"
        )

    kube.wait_until("the feed Ready on KRaft, holding its finalizer", ready_with_finalizer, 300)
    kube.delete_namespace(KRAFT_NS)


KRAFT_NS = "coinfeed-kraft"


def _replay_feed() -> dict[str, Any]:
    import yaml

    doc: dict[str, Any] = yaml.safe_load(
        (REPO / "manifests" / "examples" / "coinfeed-btc-replay.yaml").read_text()
    )
    doc["spec"]["aggregation"]["schedule"] = "0 0 30 2 *"  # never: no job runs here
    return doc
