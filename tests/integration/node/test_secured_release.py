"""The secured release as real pods on the local node (issue #13): the umbrella chart with
charts/coinfeed/ci/sasl-ssl-values.yaml (SASL_SSL with SCRAM-SHA-512 for every client, mutual TLS
between brokers, ACLs), its Secrets from `coinfeed kafka k8s-secrets`, and its users from the one
command the chart documents (kafka-users.sh in a broker pod).

A replay feed then runs end to end (producers -> brokers -> the hourly job's pod -> the lake) and
must write the same hourly rows as the plaintext release: the sample oracle of test_feed_e2e.py,
which the plaintext run is held to as well. Clients inside the cluster are refused with the cause
named, the internal listener takes only the broker certificate, and no password shows up in any
spec, log, Event or status.

Runs after test_local_node.py (file order), which uninstalls the plaintext release, so this one
has the node alone; it deletes its namespace at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from coinfeed.devcluster import k8s_secrets as ks
from coinfeed.devcluster.kafka import new_ca
from coinfeed.topics import feed_topics
from tests.integration.node.test_feed_e2e import (
    HOUR,
    assert_lake_matches_sample,
    condition,
    create_job,
    cronjobs_for,
    feed,
    floor_hour,
    job_outcome,
    job_pods,
    manifest,
    replay_finished,
    status_reports,
)
from tests.integration.node.test_local_node import PRODUCER_IMAGE, restricted_pod
from tests.support.localnode import Kube, LocalNode, deploy

NS = "coinfeed-secure"
VALUES = "-f charts/coinfeed/ci/sasl-ssl-values.yaml"
BOOTSTRAP = "coinfeed-kafka:9092"
BTC = feed_topics("btc")["prices"]
ETH = feed_topics("eth")["prices"]

# In a pod of the producer image, through coinfeed's own client configuration (coinfeed.kafka):
# what each user may do, and how each wrong setting is refused. One JSON line.
PROBE = r"""
import dataclasses, json, sys, time
from kafka import TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError, TopicAuthorizationFailedError
from coinfeed.kafka import make_admin, make_consumer, make_producer
from coinfeed.kafka_security import KafkaSecurity
B, BTC, ETH = sys.argv[1:4]
CA = "/etc/probe/ca/ca.crt"
QUICK = {"bootstrap_timeout_ms": 5000, "max_block_ms": 5000}

def user(d):
    read = lambda k: open(f"/etc/probe/{d}/{k}").read().strip()
    return KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", read("username"), read("password"), cafile=CA)

btc, op, spark = user("btc"), user("operator"), user("spark")

def ends(topic):
    c = make_consumer(bootstrap=B, security=spark)
    try:
        for _ in range(60):
            parts = c.partitions_for_topic(topic)
            if parts:
                break
            time.sleep(0.5)
        return sum(c.end_offsets([TopicPartition(topic, p) for p in sorted(parts)]).values())
    finally:
        c.close()

admin = make_admin(B, security=op)
try:
    admin.create_topics([NewTopic(ETH, 1, 3)])
except TopicAlreadyExistsError:
    pass
admin.close()
before = {t: ends(t) for t in (BTC, ETH)}
out = {}
p = make_producer(B, security=btc, **QUICK)
p.send(BTC, b"{}", key=b"probe").get(30)
out["own_topic"] = "written"
try:
    p.send(ETH, b"{}", key=b"probe").get(30)
    out["other_topic"] = "written"
except TopicAuthorizationFailedError as e:
    out["other_topic"] = type(e).__name__
p.close(5)
r = make_producer(B, security=spark, **QUICK)
try:
    r.send(BTC, b"{}").get(30)
    out["reader_write"] = "written"
except KafkaError as e:
    out["reader_write"] = f"{type(e).__name__}: {e}"
r.close(5)

def refused(sec):
    try:
        p = make_producer(B, security=sec, **QUICK)
        p.send(BTC, b"{}").get(10)
        p.close(5)
        return "connected"
    except Exception as e:
        return f"{type(e).__name__}: {e}"

out["wrong_password"] = refused(dataclasses.replace(btc, password="not-the-password"))
out["unknown_user"] = refused(dataclasses.replace(btc, username="nobody"))
out["wrong_ca"] = refused(dataclasses.replace(btc, cafile="/etc/probe/wrong-ca/ca.crt"))
out["plaintext"] = refused(KafkaSecurity())
after = {t: ends(t) for t in (BTC, ETH)}
out["written"] = {t: after[t] - before[t] for t in after}
# Metrics (their labels included) of the producers, the operator and the Pushgateway (the job's).
import urllib.request
passwords = [open(f"/etc/probe/{d}/password").read().strip() for d in ("btc", "operator", "spark")]
out["metrics"] = {}
for url in sys.argv[4:]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out["metrics"][url] = {"coinfeed": "coinfeed_" in text, "leaks": sum(p in text for p in passwords)}
print(json.dumps(out), flush=True)
"""

# In a broker pod: the internal listener with the broker's own certificate (what kafka-users.sh
# and the other brokers use), with the CA but no certificate, and in plaintext.
INTERNAL = r"""
set -u
pw="$(cat /etc/kafka/secrets/tls/password)"
d="$(mktemp -d)"
trap 'rm -rf "$d"' EXIT
common="ssl.truststore.type=PKCS12
ssl.truststore.location=/etc/kafka/secrets/tls/truststore.p12
ssl.truststore.password=$pw
request.timeout.ms=5000
default.api.timeout.ms=12000"
printf 'security.protocol=SSL\n%s\nssl.keystore.type=PKCS12\nssl.keystore.location=/etc/kafka/secrets/tls/keystore.p12\nssl.keystore.password=%s\n' "$common" "$pw" > "$d/withcert"
printf 'security.protocol=SSL\n%s\n' "$common" > "$d/nocert"
printf 'security.protocol=PLAINTEXT\nrequest.timeout.ms=5000\ndefault.api.timeout.ms=12000\n' > "$d/plaintext"
server="$HOSTNAME.$HEADLESS_SERVICE.$POD_NAMESPACE.svc.$CLUSTER_DOMAIN:$INTERNAL_PORT"
for mode in withcert nocert plaintext; do
  echo "== $mode"
  timeout 90 java -Xmx96m -cp '/opt/kafka/libs/*' org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$server" --command-config "$d/$mode" --list 2>&1 | grep -v '^\s*at ' | tail -8
  echo "rc=${PIPESTATUS[0]}"
done
"""


@dataclass
class Secured:
    kube: Kube
    release: ks.SecuredRelease
    users_log: str
    applied: datetime


@pytest.fixture(scope="module")
def secured(local_node: LocalNode) -> Iterator[Secured]:
    kube = local_node.kube
    kube.kubectl("create", "namespace", NS)
    release, secrets = ks.secured_release(NS, ["btc"])
    secrets["items"].append(ks.secret_object("probe-wrong-ca", NS, {"ca.crt": new_ca()[0]}))
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(secrets))
    try:
        deploy(local_node, NS, extra_values=VALUES)
        users = kube.kubectl(
            "-n", NS, "exec", "coinfeed-kafka-0", "-c", "kafka", "--",
            "bash", "/etc/kafka/coinfeed/kafka-users.sh", timeout=900,
        )  # fmt: skip
        # A producer restarted in another hour would move its replay by one more hour.
        now = datetime.now(UTC)
        if now.minute >= 55:
            time.sleep((floor_hour(now) + HOUR - now).total_seconds() + 5)
        applied = datetime.now(UTC)
        doc = manifest("btc")
        doc["spec"]["kafka"] = {"credentialsSecretRef": {"name": ks.producer_secret("btc")}}
        kube.kubectl("-n", NS, "apply", "-f", "-", stdin=json.dumps(doc))
        yield Secured(kube, release, users.stdout + users.stderr, applied)
    finally:
        kube.kubectl(
            "-n", NS, "delete", "coinfeed", "--all", "--ignore-not-found", "--timeout=180s",
            check=False,
        )  # fmt: skip
        kube.delete_namespace(NS)


def test_users_are_created_by_the_one_documented_command(secured: Secured) -> None:
    """kafka-users.sh in a broker pod, as the broker itself over the mutual-TLS listener."""
    for user in ("coinfeed-operator", "coinfeed-spark", "coinfeed-producer-btc"):
        assert f"SCRAM-SHA-512 credential of {user} stored" in secured.users_log, secured.users_log


def test_the_secured_feed_writes_the_same_hourly_rows_as_plaintext(secured: Secured) -> None:
    kube = secured.kube
    kube.wait_until(
        "btc-replay Ready",
        lambda: condition(feed(kube, "btc-replay", NS), "Ready").get("status") == "True",
        timeout=300,
    )
    # The producers log in as coinfeed-producer-btc from a mounted file, never a plain value.
    for pod in kube.pods(NS, "coinfeed.io/feed=btc-replay"):
        env = {e["name"]: e for e in pod["spec"]["containers"][0].get("env", [])}
        assert env["COINFEED_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert "COINFEED_KAFKA_SASL_PASSWORD_FILE" in env
        assert "COINFEED_KAFKA_SASL_PASSWORD" not in env
    for deployment in ("btc-replay-prices", "btc-replay-tweets"):
        kube.wait_until(
            f"{deployment} to finish its replay",
            lambda d=deployment: replay_finished(kube, d, NS),
            timeout=600,
            interval=5,
        )
    (cronjob,) = {cj["metadata"]["name"] for cj in cronjobs_for(kube, "btc", NS)}
    started = datetime.now(UTC)
    create_job(kube, cronjob, "secure-e2e", ns=NS)
    outcome = job_outcome(kube, "secure-e2e", NS)
    finished = datetime.now(UTC)
    logs = [
        kube.kubectl("-n", NS, "logs", p["metadata"]["name"], check=False).stdout
        for p in job_pods(kube, "secure-e2e", NS)
    ]
    assert outcome == "Complete", logs[-1][-3000:] if logs else "no pod"
    newest = assert_lake_matches_sample(kube, "btc", secured.applied, started, finished, NS)
    f = status_reports(kube, "btc-replay", "True", newest, NS)
    assert f["status"]["lastRun"]["result"] == "Succeeded"


def test_clients_are_refused_with_the_cause_named_and_nothing_written(secured: Secured) -> None:
    kube = secured.kube
    urls = ["http://coinfeed-pushgateway:9091/metrics"]
    for selector in (
        "app.kubernetes.io/name=coinfeed-producer",
        "app.kubernetes.io/name=coinfeed-operator",
    ):
        for p in kube.pods(NS, selector):
            ports = {q.get("name"): q["containerPort"] for q in p["spec"]["containers"][0]["ports"]}
            urls.append(f"http://{p['status']['podIP']}:{ports['metrics']}/metrics")
    assert len(urls) == 4, urls  # the Pushgateway, two producers, the operator
    pod = restricted_pod(
        "probe", PRODUCER_IMAGE, ["python", "-c", PROBE, BOOTSTRAP, BTC, ETH, *urls]
    )
    pod["metadata"]["namespace"] = NS
    mounts = {
        "ca": ks.CA_SECRET,
        "wrong-ca": "probe-wrong-ca",
        "btc": ks.producer_secret("btc"),
        "operator": ks.OPERATOR_SECRET,
        "spark": ks.SPARK_SECRET,
    }
    pod["spec"]["volumes"] = [{"name": n, "secret": {"secretName": s}} for n, s in mounts.items()]
    pod["spec"]["containers"][0]["volumeMounts"] = [
        {"name": n, "mountPath": f"/etc/probe/{n}", "readOnly": True} for n in mounts
    ]
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    try:
        kube.wait_until(
            "the probe to finish",
            lambda: (
                kube.get("-n", NS, "pod", "probe")["status"]["phase"] in ("Succeeded", "Failed")
            ),
            timeout=300,
            interval=3,
        )
        logs = kube.kubectl("-n", NS, "logs", "probe").stdout
    finally:
        kube.kubectl("-n", NS, "delete", "pod", "probe", "--ignore-not-found", "--wait=false")
    assert logs.strip(), "the probe printed nothing"
    out = json.loads(logs.strip().splitlines()[-1])
    assert out["own_topic"] == "written", out
    assert out["other_topic"] == "TopicAuthorizationFailedError", out  # ACLs: own coin only
    assert "AuthorizationFailed" in out["reader_write"], out  # the job's user only reads
    assert "wrong user name or password for user 'coinfeed-producer-btc'" in out["wrong_password"]
    assert "not-the-password" not in out["wrong_password"]
    assert "wrong user name or password for user 'nobody'" in out["unknown_user"], out
    assert "not signed by a trusted CA" in out["wrong_ca"], out
    assert "the broker port expects TLS" in out["plaintext"], out
    assert out["written"] == {BTC: 1, ETH: 0}, out  # the one allowed write, nothing refused
    # No password in any metric or label the pods serve (the job's are on the Pushgateway).
    assert out["metrics"] == {u: {"coinfeed": True, "leaks": 0} for u in urls}, out["metrics"]


def test_the_internal_listener_takes_only_the_broker_certificate(secured: Secured) -> None:
    """Runs after the feed made its topics. The broker certificate (what kafka-users.sh and the
    other brokers use) is a super user there; the CA alone, or plaintext, gets nothing."""
    out = secured.kube.kubectl(
        "-n", NS, "exec", "coinfeed-kafka-1", "-c", "kafka", "--", "bash", "-c", INTERNAL,
        timeout=400,
    ).stdout  # fmt: skip
    runs = {
        part.split("\n", 1)[0].strip(): part for part in out.split("== ")[1:]
    }  # mode -> its output
    assert set(runs) == {"withcert", "nocert", "plaintext"}, out
    assert "rc=0" in runs["withcert"] and BTC in runs["withcert"], runs["withcert"]
    for mode in ("nocert", "plaintext"):
        assert "rc=0" not in runs[mode] and BTC not in runs[mode], (mode, runs[mode])
    # Refused in the TLS handshake: with TLS 1.3 the broker's "certificate required" alert comes
    # after the client's side of it ("Failed to process post-handshake messages").
    assert "handshake" in runs["nocert"].lower(), runs["nocert"]


def test_no_password_in_any_spec_log_event_or_status(secured: Secured) -> None:
    kube = secured.kube
    texts = [
        kube.kubectl("-n", NS, "get", kind, "-o", "json").stdout
        for kind in (
            "pods", "deployments", "statefulsets", "cronjobs", "jobs", "configmaps",
            "coinfeeds", "events", "services",
        )
    ]  # fmt: skip
    pods = [p["metadata"]["name"] for p in kube.pods(NS)]
    for name in pods:
        texts.append(kube.kubectl("-n", NS, "logs", name, "--all-containers", check=False).stdout)
    blob = "\n".join(texts)
    # What was searched: the brokers', operator's, producers' and the job's logs and specs.
    assert "SASL_SSL" in blob and any(n.startswith("coinfeed-kafka-") for n in pods), pods
    assert job_pods(kube, "secure-e2e", NS), "the job's pod is gone: its log was not searched"
    for user, password in secured.release.passwords.items():
        assert password not in blob, f"{user}'s password shows in a spec, log, Event or status"
    assert secured.release.store_password not in blob, "the TLS store password shows"
