"""Two CoinFeeds for one coin, against a real API server and real Kafka: the first one created
owns the coin; the second reports a Conflict, creates and owns nothing, never deletes the first's
topics, and takes over cleanly once the first is gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from localnode.operator_harness import condition, get_json, kubectl, wait_for
from tests.integration.operator.conftest import OperatorFactory
from tests.integration.operator.test_operator_feed import (
    _coins_of,
    _cronjob_of,
    _feed,
    _manifest,
    _status_is,
    _topic_id,
    _topic_state,
)


def _second(coin: str) -> str:
    doc = yaml.safe_load(_manifest(coin, name="second", deletionPolicy="Delete"))
    doc["spec"]["topics"]["partitions"] = 6  # would grow the topics if it touched them
    return yaml.safe_dump(doc)


def _children(admin: Path, ns: str, feed: str) -> list[str]:
    out = []
    for kind in ("deployments", "services", "cronjobs"):
        for item in get_json(admin, kind, "-n", ns)["items"]:
            if item["metadata"]["name"].startswith(f"{feed}-"):
                out.append(f"{kind}/{item['metadata']['name']}")
    return sorted(out)


def test_second_feed_for_a_coin_conflicts_then_takes_over(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    bootstrap = kafka_cluster.bootstrap
    topics = [f"coinfeed.{coin}.prices", f"coinfeed.{coin}.tweets"]
    start_operator(ns, bootstrap)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin, name="first"))
    wait_for("first TopicsReady", _status_is(admin, ns, "TopicsReady", "True", "first"))
    ids = {t: _topic_id(bootstrap, t) for t in topics}
    first_conflict = condition(_feed(admin, ns, "first"), "Conflict")
    assert first_conflict is not None
    assert (first_conflict["status"], first_conflict["reason"]) == ("False", "CoinOwned")

    # 1. The second feed for the coin: Conflict, Ready False naming the first, nothing created.
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_second(coin))
    feed = wait_for(
        "second Conflict=True",
        _status_is(admin, ns, "Conflict", "True", "second", reason="CoinConflict"),
    )
    ready = condition(feed, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "CoinConflict")
    assert f"{ns}/first" in ready["message"]
    assert _children(admin, ns, "second") == []
    # The coin runs once, in the owner's shared hourly CronJob; the second feed is no owner of it.
    assert _cronjob_of(admin, ns, "second") is None
    assert _coins_of(_cronjob_of(admin, ns, "first")) == [coin]
    assert _topic_state(bootstrap, topics) == {t: (3, 3, "86400000", "2") for t in topics}
    events = get_json(admin, "events", "-n", ns, "--field-selector", "involvedObject.name=second")
    assert "CoinConflict" in {e["reason"] for e in events["items"]}
    # The owner is unaffected.
    assert condition(_feed(admin, ns, "first"), "TopicsReady")["status"] == "True"  # type: ignore[index]

    # 2. Deleting the second feed (deletionPolicy Delete) leaves the first's topics alone.
    wait_for("second's finalizer", lambda: _feed(admin, ns, "second")["metadata"].get("finalizers"))
    kubectl(admin, "delete", "cf", "second", "-n", ns, "--wait=false")
    wait_for("second gone", lambda: _feed(admin, ns, "second") is None, timeout=60)
    kept = get_json(admin, "events", "-n", ns, "--field-selector", "reason=TopicsKept")["items"]
    assert any(f"{ns}/first" in e["message"] for e in kept), kept
    assert {t: _topic_id(bootstrap, t) for t in topics} == ids  # the very same topics

    # 3. Back again, then the first feed goes: the second takes over cleanly.
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_second(coin))
    wait_for("second Conflict=True", _status_is(admin, ns, "Conflict", "True", "second"))
    kubectl(admin, "delete", "cf", "first", "-n", ns)
    feed = wait_for(
        "second owns the coin",
        _status_is(admin, ns, "TopicsReady", "True", "second"),
        timeout=60,
    )
    owned = condition(feed, "Conflict")
    assert owned is not None and (owned["status"], owned["reason"]) == ("False", "CoinOwned")
    assert _children(admin, ns, "second") == [
        "deployments/second-prices",
        "deployments/second-tweets",
        "services/second-metrics",
    ]
    uid = feed["metadata"]["uid"]
    cron = wait_for("second's shared CronJob", lambda: _cronjob_of(admin, ns, "second"))
    assert [r["uid"] for r in cron["metadata"]["ownerReferences"]] == [uid]
    assert _coins_of(cron) == [coin]
    # Its spec applies now: the retained topics grew to its 6 partitions.
    assert _topic_state(bootstrap, topics) == {t: (6, 3, "86400000", "2") for t in topics}
    assert {t: _topic_id(bootstrap, t) for t in topics} == ids

    # 4. As the owner, its deletionPolicy Delete now does delete the topics.
    kubectl(admin, "delete", "cf", "second", "-n", ns, "--wait=false")
    wait_for(
        "topics deleted by their new owner",
        lambda: _topic_state(bootstrap, topics) == {} or None,
        timeout=60,
    )
