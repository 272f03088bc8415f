"""Kafka goes away and comes back: the feed says so, recovers by itself, and deletion of a
Delete-policy feed never hangs on the dead Kafka (its own 3-broker cluster, stopped and restarted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from coinfeed.versions import REPO_ROOT
from localnode import operator_harness as harness
from localnode.operator_harness import condition, get_json, kubectl, wait_for
from tests.integration.operator.conftest import OperatorFactory


def _apply(admin: Path, ns: str, name: str, coin: str, policy: str) -> None:
    doc = yaml.safe_load((REPO_ROOT / "manifests" / "coinfeed-btc.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"].update(coin=coin, deletionPolicy=policy)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=yaml.safe_dump(doc))


def _cond(admin: Path, ns: str, name: str, ctype: str) -> dict[str, Any] | None:
    return condition(get_json(admin, "cf", name, "-n", ns), ctype)


def test_kafka_down_then_back(
    admin: Path,
    kube_namespace: str,
    kafka_cluster_factory: Any,
    start_operator: OperatorFactory,
    coin: str,
) -> None:
    cluster = kafka_cluster_factory()
    ns = kube_namespace
    op = start_operator(ns, cluster.bootstrap, drift_interval=1.0, delete_timeout=10.0)
    _apply(admin, ns, "keep", coin + "k", "Retain")
    _apply(admin, ns, "drop", coin + "d", "Delete")
    for name in ("keep", "drop"):
        wait_for(
            f"{name} topics",
            lambda n=name: (c := _cond(admin, ns, n, "TopicsReady")) and c["status"] == "True",
        )
    deps = [d["metadata"]["name"] for d in get_json(admin, "deployments", "-n", ns)["items"]]
    harness.mark_deployments_available(admin, ns, deps)
    wait_for(
        "keep Ready", lambda: (c := _cond(admin, ns, "keep", "Ready")) and c["status"] == "True"
    )

    cluster.stop_broker(1)  # broker ids start at 1
    cluster.stop_broker(2)
    cluster.kill_broker(3, wait=False)  # nobody is left to see the last one leave
    down = wait_for(
        "TopicsReady=False KafkaUnavailable",
        lambda: (
            (c := _cond(admin, ns, "keep", "TopicsReady"))
            and c["reason"] == "KafkaUnavailable"
            and c
        ),
        timeout=90,
    )
    assert down["status"] == "False" and cluster.bootstrap.split(",")[0] in down["message"]
    assert _cond(admin, ns, "keep", "Ready")["status"] == "False"  # type: ignore[index]
    assert 'coinfeed_operator_reconcile_errors_total{reason="KafkaUnavailable"}' in op.metrics()
    # The feeds gauge is recomputed after the status patch the test just saw: wait for it.
    wait_for(
        "feeds gauge: 2 not ready",
        lambda: 'coinfeed_operator_feeds{ready="false"} 2.0' in op.metrics(),
        timeout=30,
    )

    # Delete policy with Kafka gone: retried for --delete-timeout, then the finalizer is released.
    kubectl(admin, "delete", "cf", "drop", "-n", ns, "--wait=false")
    wait_for(
        "drop gone despite Kafka down",
        lambda: get_json(admin, "cf", "drop", "-n", ns) is None,
        timeout=90,
    )

    for broker in (1, 2, 3):  # broker ids start at 1
        cluster.start_broker(broker)
    wait_for(
        "Ready again",
        lambda: (c := _cond(admin, ns, "keep", "Ready")) and c["status"] == "True",
        timeout=120,
    )
    assert _cond(admin, ns, "keep", "TopicsReady")["reason"] == "TopicsInSync"  # type: ignore[index]
