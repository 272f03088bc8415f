"""The operator against a real API server and real Kafka, running under its chart's RBAC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from coinfeed.kafka import make_admin
from coinfeed.versions import REPO_ROOT
from localnode import operator_harness as harness
from localnode.operator_harness import condition, get_json, kubectl, wait_for
from tests.integration.operator.conftest import OperatorFactory

BTC = (REPO_ROOT / "manifests" / "coinfeed-btc.yaml").read_text()


def _manifest(coin: str, name: str = "btc", **spec: Any) -> str:
    doc = yaml.safe_load(BTC)
    doc["metadata"]["name"] = name
    doc["spec"]["coin"] = coin
    doc["spec"].update(spec)
    return yaml.safe_dump(doc)


def _topic_state(bootstrap: str, names: list[str]) -> dict[str, tuple[int, int, str, str]]:
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = make_admin(bootstrap)
    try:
        meta = {t["name"]: t for t in admin.describe_topics(names) if t.get("error_code", 0) == 0}
        cfgs = (
            admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, n) for n in meta], config_filter="all"
            ).get("topic", {})
            if meta
            else {}
        )
        # A topic being deleted may still show in metadata but no longer have configs: gone.
        return {
            n: (
                len(t["partitions"]),
                len(t["partitions"][0]["replica_nodes"]),
                cfgs[n]["retention.ms"]["value"],
                cfgs[n]["min.insync.replicas"]["value"],
            )
            for n, t in meta.items()
            if t["partitions"] and "retention.ms" in cfgs.get(n, {})
        }
    finally:
        admin.close()


def _topic_id(bootstrap: str, name: str) -> Any:
    """The topic's id (KIP-516), None while it does not exist: a recreated topic has a new one."""
    admin = make_admin(bootstrap)
    try:
        for t in admin.describe_topics([name]):
            if t.get("error_code", 0) == 0:
                return t["topic_id"]
        return None
    finally:
        admin.close()


def _feed(admin: Path, ns: str, name: str = "btc") -> Any:
    return get_json(admin, "coinfeed", name, "-n", ns)


def _status_is(
    admin: Path, ns: str, ctype: str, status: str, name: str = "btc", reason: str | None = None
) -> Any:
    def check() -> Any:
        feed = _feed(admin, ns, name)
        c = condition(feed, ctype)
        if c and c["status"] == status and (reason is None or c["reason"] == reason):
            return feed
        return None

    return check


def _hourly_cronjobs(admin: Path, ns: str) -> list[Any]:
    """The shared hourly CronJobs of the namespace."""
    found = get_json(admin, "cronjobs", "-n", ns, "-l", "coinfeed.io/hourly-group")
    return list((found or {}).get("items") or [])


def _cronjob_of(admin: Path, ns: str, name: str = "btc") -> Any:
    """The shared hourly CronJob that lists feed ``name`` among its owners (None if none)."""
    feed = _feed(admin, ns, name)
    if feed is None:
        return None
    uid = feed["metadata"]["uid"]
    for cron in _hourly_cronjobs(admin, ns):
        if any(r["uid"] == uid for r in cron["metadata"].get("ownerReferences") or []):
            return cron
    return None


def _coins_of(cron: Any) -> list[str]:
    cmd = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    return sorted(str(cmd[cmd.index("--coin") + 1]).split(","))


def _ready(admin: Path, ns: str, name: str = "btc") -> Any:
    """Mark producers available as the kubelet would, then wait for Ready=True."""
    wait_for(
        "the producer Deployments",
        lambda: get_json(admin, "deployment", f"{name}-prices", "-n", ns),
    )
    deps = [d["metadata"]["name"] for d in get_json(admin, "deployments", "-n", ns)["items"]]
    harness.mark_deployments_available(admin, ns, deps)
    return wait_for("Ready=True", _status_is(admin, ns, "Ready", "True", name), timeout=60)


def test_apply_btc_creates_topics_children_and_status(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    op = start_operator(ns, kafka_cluster.bootstrap)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin))

    feed = wait_for("TopicsReady=True", _status_is(admin, ns, "TopicsReady", "True"))
    topics = [f"coinfeed.{coin}.prices", f"coinfeed.{coin}.tweets"]
    state = _topic_state(kafka_cluster.bootstrap, topics)
    assert state == {t: (3, 3, "86400000", "2") for t in topics}

    uid = feed["metadata"]["uid"]
    children = [
        ("deployment", "btc-prices"),
        ("deployment", "btc-tweets"),
        ("service", "btc-metrics"),
    ]
    for kind, name in children:
        obj = wait_for(f"{kind} {name}", lambda k=kind, n=name: get_json(admin, k, n, "-n", ns))
        (ref,) = obj["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            "CoinFeed",
            "btc",
            uid,
            True,
        )
    # The hourly CronJob is shared by the feeds of a schedule: each one is an owner, none the
    # controller.
    cron = wait_for("the shared hourly CronJob", lambda: _cronjob_of(admin, ns))
    assert _coins_of(cron) == [coin]
    assert [
        (r["kind"], r["name"], r["uid"], r["controller"])
        for r in cron["metadata"]["ownerReferences"]
    ] == [("CoinFeed", "btc", uid, False)]
    dep = get_json(admin, "deployment", "btc-tweets", "-n", ns)
    assert dep["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "coinfeed",
        "producer",
        "tweets",
    ]
    # the example feed reads Bluesky: no credentials, so no Secret volume (X: see the unit tests)
    pod = dep["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["COINFEED_TWEET_SOURCE"] == "bluesky"

    # Not yet available: no kubelet runs the pods.
    feed = _feed(admin, ns)
    assert condition(feed, "ProducersReady")["status"] == "False"  # type: ignore[index]
    assert condition(feed, "AggregationScheduled")["status"] == "True"  # type: ignore[index]
    assert condition(feed, "Ready")["status"] == "False"  # type: ignore[index]

    feed = _ready(admin, ns)
    assert feed["status"]["observedGeneration"] == feed["metadata"]["generation"]
    assert feed["status"]["topicSummary"] == "2/2"
    for c in feed["status"]["conditions"]:
        assert (
            c["reason"]
            and c["lastTransitionTime"]
            and c["observedGeneration"] == feed["metadata"]["generation"]
        )
    events = get_json(admin, "events", "-n", ns, "--field-selector", "involvedObject.name=btc")[
        "items"
    ]
    reasons = {e["reason"] for e in events}
    assert {"TopicChanged", "Created", "Ready"} <= reasons, reasons
    printed = kubectl(admin, "get", "cf", "-n", ns).stdout
    assert "True" in printed.splitlines()[1] and "2/2" in printed
    assert 'coinfeed_operator_reconciles_total{result="ok"}' in op.metrics()


def test_partitions_grow_and_never_shrink(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    start_operator(ns, kafka_cluster.bootstrap)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin))
    wait_for("TopicsReady=True", _status_is(admin, ns, "TopicsReady", "True"))

    kubectl(
        admin,
        "patch",
        "cf",
        "btc",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"topics":{"partitions":6}}}',
    )
    topic = f"coinfeed.{coin}.prices"
    wait_for(
        "6 partitions",
        lambda: _topic_state(kafka_cluster.bootstrap, [topic]).get(topic, (0,))[0] == 6,
    )
    feed = wait_for(
        "observedGeneration 2",
        lambda: (f := _feed(admin, ns)) and f["status"].get("observedGeneration") == 2 and f,
    )
    assert condition(feed, "TopicsReady")["status"] == "True"  # type: ignore[index]

    refused = kubectl(
        admin,
        "patch",
        "cf",
        "btc",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"topics":{"partitions":3}}}',
        check=False,
    )
    assert refused.returncode != 0
    assert "spec.topics.partitions" in refused.stderr and "can only grow" in refused.stderr
    assert _feed(admin, ns)["spec"]["topics"]["partitions"] == 6


INVALID = [
    ("bad coin symbol", {"coin": "BTC!"}, "spec.coin"),
    (
        "negative interval",
        {"prices": {"source": "binance", "pair": "BTC/USDT", "pollIntervalSeconds": -5}},
        "spec.prices.pollIntervalSeconds",
    ),
    ("unknown source", {"prices": {"source": "mtgox", "pair": "BTC/USDT"}}, "spec.prices.source"),
    ("rf above bound", {"topics": {"replicationFactor": 9}}, "spec.topics.replicationFactor"),
    (
        "inline token",
        {
            "tweets": {
                "enabled": True,
                "keywords": ["btc"],
                "bearerToken": "AAAA-secret",
                "bearerTokenSecretRef": {"name": "x"},
            }
        },
        "spec.tweets.bearerToken",
    ),
    (
        "x-api without secret ref",
        {"tweets": {"enabled": True, "keywords": ["btc"]}},
        "spec.tweets.bearerTokenSecretRef",
    ),
]


@pytest.mark.parametrize(("case", "spec", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_coinfeeds_refused_naming_the_field(
    admin: Path, kube_namespace: str, case: str, spec: dict[str, Any], field: str
) -> None:
    doc = yaml.safe_load(BTC)
    doc["spec"].update(spec)
    proc = kubectl(
        admin,
        "apply",
        "--validate=strict",
        "-n",
        kube_namespace,
        "-f",
        "-",
        input=yaml.safe_dump(doc),
        check=False,
    )
    assert proc.returncode != 0, f"{case} was accepted"
    assert field in proc.stderr, proc.stderr
    assert "AAAA-secret" not in proc.stderr
    assert get_json(admin, "coinfeed", "btc", "-n", kube_namespace) is None


def test_deletion_policy_retain_keeps_topics_delete_removes_them(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    start_operator(ns, kafka_cluster.bootstrap)
    kept, gone = coin + "r", coin + "d"
    kubectl(
        admin,
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=_manifest(kept, name="keep", deletionPolicy="Retain"),
    )
    kubectl(
        admin,
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=_manifest(gone, name="drop", deletionPolicy="Delete"),
    )
    for name in ("keep", "drop"):
        wait_for(f"{name} TopicsReady", _status_is(admin, ns, "TopicsReady", "True", name))
    assert _feed(admin, ns, "keep")["metadata"].get("finalizers") in (None, [])
    assert wait_for(
        "finalizer on drop", lambda: _feed(admin, ns, "drop")["metadata"].get("finalizers")
    )

    kubectl(admin, "delete", "cf", "keep", "drop", "-n", ns, "--wait=false")
    wait_for(
        "both CoinFeeds gone",
        lambda: _feed(admin, ns, "keep") is None and _feed(admin, ns, "drop") is None,
    )
    kept_topics = [f"coinfeed.{kept}.prices", f"coinfeed.{kept}.tweets"]
    gone_topics = [f"coinfeed.{gone}.prices", f"coinfeed.{gone}.tweets"]
    assert set(_topic_state(kafka_cluster.bootstrap, kept_topics)) == set(kept_topics)
    wait_for(
        "deleted topics",
        lambda: _topic_state(kafka_cluster.bootstrap, gone_topics) == {} or None,
        timeout=30,
    )


def _versions(admin: Path, ns: str) -> dict[str, str]:
    out = {}
    for kind in ("coinfeeds", "deployments", "services", "cronjobs", "configmaps"):
        for item in get_json(admin, kind, "-n", ns)["items"]:
            out[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return out


def test_restart_creates_no_duplicates_and_changes_nothing(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    op = start_operator(ns, kafka_cluster.bootstrap, drift_interval=1.0)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin))
    _ready(admin, ns)
    # Let the drift timer run a few times: a settled feed must produce no writes at all.
    wait_for("a few drift rounds", lambda: _ok_count(op.metrics()) >= 4 or None, timeout=30)
    before = _versions(admin, ns)
    topics_before = _topic_state(
        kafka_cluster.bootstrap, [f"coinfeed.{coin}.prices", f"coinfeed.{coin}.tweets"]
    )
    op.stop()
    op2 = start_operator(ns, kafka_cluster.bootstrap, drift_interval=1.0)
    wait_for(
        "resume + drift rounds after restart",
        lambda: _ok_count(op2.metrics()) >= 3 or None,
        timeout=30,
    )
    assert _versions(admin, ns) == before
    assert _topic_state(kafka_cluster.bootstrap, list(topics_before)) == topics_before
    assert len(get_json(admin, "deployments", "-n", ns)["items"]) == 2


def _ok_count(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('coinfeed_operator_reconciles_total{result="ok"}'):
            return float(line.split()[-1])
    return 0.0


def test_drift_recreates_children_and_topics_and_reverts_settings(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    start_operator(ns, kafka_cluster.bootstrap, drift_interval=1.0)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin))
    _ready(admin, ns)
    cron = _cronjob_of(admin, ns)
    old_uid = cron["metadata"]["uid"]

    def image() -> str:
        dep = get_json(admin, "deployment", "btc-prices", "-n", ns)
        return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])

    original_image = image()
    topic = f"coinfeed.{coin}.tweets"
    original_topic = _topic_state(kafka_cluster.bootstrap, [topic])
    assert original_topic == {topic: (3, 3, "86400000", "2")}
    original_topic_id = _topic_id(kafka_cluster.bootstrap, topic)
    assert original_topic_id is not None

    kubectl(admin, "delete", "cronjob", cron["metadata"]["name"], "-n", ns)
    kubectl(admin, "set", "image", "deployment/btc-prices", "producer=evil:latest", "-n", ns)
    admin_client = make_admin(kafka_cluster.bootstrap)
    admin_client.delete_topics([topic])
    admin_client.close()

    wait_for(
        "CronJob recreated",
        lambda: (c := _cronjob_of(admin, ns)) and c["metadata"]["uid"] != old_uid,
    )
    # Reverted to what the operator wrote, not merely changed again.
    wait_for("image reverted", lambda: image() == original_image)
    # Recreated with the spec's partitions, replication and settings, not broker defaults.
    wait_for(
        "topic recreated",
        lambda: _topic_id(kafka_cluster.bootstrap, topic) not in (None, original_topic_id),
        timeout=60,
    )
    assert _topic_state(kafka_cluster.bootstrap, [topic]) == original_topic


def test_replication_factor_above_live_brokers_is_not_supported(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    start_operator(ns, kafka_cluster.bootstrap)
    doc = yaml.safe_load(_manifest(coin))
    doc["spec"]["topics"] = {"partitions": 3, "replicationFactor": 5, "minInSyncReplicas": 2}
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))
    feed = wait_for(
        "Ready=False NotSupported", _status_is(admin, ns, "Ready", "False", reason="NotSupported")
    )
    assert (
        "replication factor 5 exceeds the 3 live broker"
        in condition(feed, "TopicsReady")["message"]
    )  # type: ignore[index]
    assert _topic_state(kafka_cluster.bootstrap, [f"coinfeed.{coin}.prices"]) == {}
    assert json.dumps(feed).count("NotSupported") >= 2


def test_kubectl_explain_reads_well(admin: Path) -> None:
    # The CRD's OpenAPI document is published a few seconds after the CRD is established.
    spec = wait_for(
        "kubectl explain",
        lambda: (
            (p := kubectl(admin, "explain", "coinfeed.spec", check=False)).returncode == 0
            and p.stdout
        ),
        timeout=60,
    )
    for field in ("coin", "prices", "tweets", "topics", "aggregation", "deletionPolicy", "suspend"):
        assert f"\n  {field}\t" in spec, spec
    assert "Retain keeps them" in " ".join(spec.split())
    partitions = kubectl(admin, "explain", "cf.spec.topics.partitions").stdout
    assert "Can only grow" in " ".join(partitions.split())


def test_suspend_and_disabling_tweets_follow_the_spec(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    start_operator(ns, kafka_cluster.bootstrap)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin))
    _ready(admin, ns)

    kubectl(
        admin, "patch", "cf", "btc", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    feed = wait_for(
        "Ready=False Suspended", _status_is(admin, ns, "Ready", "False", reason="Suspended")
    )
    assert feed["status"]["observedGeneration"] == feed["metadata"]["generation"]
    assert get_json(admin, "deployment", "btc-prices", "-n", ns)["spec"]["replicas"] == 0
    # A suspended feed leaves its shared job; the only feed gone, the CronJob goes.
    wait_for("hourly CronJob removed", lambda: _hourly_cronjobs(admin, ns) == [])
    aggregation = condition(feed, "AggregationScheduled")
    assert aggregation is not None and aggregation["reason"] == "Suspended"

    kubectl(
        admin,
        "patch",
        "cf",
        "btc",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":false,"tweets":{"enabled":false}}}',
    )
    wait_for(
        "tweets Deployment removed",
        lambda: get_json(admin, "deployment", "btc-tweets", "-n", ns) is None,
    )
    assert _coins_of(wait_for("back in a shared job", lambda: _cronjob_of(admin, ns))) == [coin]
    _ready(admin, ns)


def test_operator_shutdown_never_leaves_a_deleting_feed_stuck(
    admin: Path, kube_namespace: str, start_operator: OperatorFactory, coin: str
) -> None:
    from tests.support.ports import free_port

    ns = kube_namespace
    dead_kafka = f"127.0.0.1:{free_port()}"  # nothing listens: topic deletion can only retry
    op = start_operator(ns, dead_kafka, delete_timeout=600.0)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin, deletionPolicy="Delete"))
    wait_for("finalizer", lambda: (f := _feed(admin, ns)) and f["metadata"].get("finalizers"))
    kubectl(admin, "delete", "cf", "btc", "-n", ns, "--wait=false")
    wait_for(
        "deletion pending on Kafka",
        lambda: get_json(
            admin, "events", "-n", ns, "--field-selector", "reason=TopicDeletionPending"
        )["items"],
        timeout=60,
    )
    assert _feed(admin, ns) is not None  # still held: Kafka cannot be asked
    op.stop()
    wait_for("feed released when the operator stops", lambda: _feed(admin, ns) is None, timeout=30)


def test_operator_stopping_in_a_terminating_namespace_releases_every_feed(
    admin: Path,
    kube_namespace: str,
    start_operator: OperatorFactory,
    kafka_cluster: Any,
    coin: str,
) -> None:
    """Kubernetes 1.34 deletes a namespace's pods before anything else, so an operator living
    there stops before its feeds are even marked for deletion. It must let go of all of them
    (topics kept), or the namespace stays Terminating for good."""
    ns = kube_namespace
    op = start_operator(ns, kafka_cluster.bootstrap)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin, deletionPolicy="Delete"))
    kubectl(
        admin, "apply", "-n", ns, "-f", "-",
        input=_manifest(coin + "x", name="eth", deletionPolicy="Delete"),
    )  # fmt: skip
    for name in ("btc", "eth"):
        wait_for(
            f"{name}'s finalizer",
            lambda name=name: (f := _feed(admin, ns, name)) and f["metadata"].get("finalizers"),
        )
    op.stop()  # a restart in a live namespace keeps them (the next operator deletes the topics)
    assert all(_feed(admin, ns, n)["metadata"].get("finalizers") for n in ("btc", "eth"))
    op = start_operator(ns, kafka_cluster.bootstrap)
    # This API server runs no namespace controller: the namespace stays Terminating with its
    # content, which is exactly the moment the operator's pod would get its SIGTERM.
    kubectl(admin, "delete", "namespace", ns, "--wait=false")
    op.stop()
    for name in ("btc", "eth"):
        assert not _feed(admin, ns, name)["metadata"].get("finalizers"), name


def test_uninstall_hook_stops_the_operator_then_releases_every_feed(
    admin: Path,
    kube_namespace: str,
    start_operator: OperatorFactory,
    kafka_cluster: Any,
    kube_apiserver: Any,
    coin: str,
) -> None:
    """The chart's pre-delete hook, with the operator's own rights (the chart's rules) on a real
    API server: the operator's Deployment goes to 0 replicas and every feed loses the finalizer
    (and keeps its topics), so neither feeds nor namespace wait for an operator that is gone."""
    ns = kube_namespace
    op = start_operator(ns, kafka_cluster.bootstrap)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin, deletionPolicy="Delete"))
    wait_for("finalizer", lambda: (f := _feed(admin, ns)) and f["metadata"].get("finalizers"))
    op.stop()
    kubectl(
        admin, "create", "deployment", "coinfeed-operator", "-n", ns,
        "--image=coinfeed-operator:local", "--replicas=1",
    )  # fmt: skip
    env = {
        **os.environ,
        "KUBECONFIG": str(kube_apiserver.kubeconfig_for_service_account(ns, harness.SA_NAME)),
        "POD_NAMESPACE": ns,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "coinfeed", "operator", f"--namespace={ns}",
         "--release-on-uninstall=coinfeed-operator"],
        env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    deployment = get_json(admin, "deployment", "coinfeed-operator", "-n", ns)
    assert deployment["spec"]["replicas"] == 0
    assert not _feed(admin, ns)["metadata"].get("finalizers")
    events = get_json(admin, "events", "-n", ns, "--field-selector", "reason=TopicsKept")
    assert events["items"], "no TopicsKept event"
    assert "released CoinFeeds for uninstall" in proc.stdout + proc.stderr
