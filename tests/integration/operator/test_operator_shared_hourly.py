"""Feeds on one schedule share one hourly CronJob (one Spark application per run), managed by the
operator under its chart's RBAC against a real API server: created with the first feed, updated in
place (same object) as feeds come and go, gone with the last; each feed reads its own outcome from
the shared run; per-feed CronJobs of the previous version are removed on upgrade."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from coinfeed.hourly_status import CoinOutcome, encode
from localnode.operator_harness import condition, get_json, kubectl, wait_for
from tests.integration.operator.conftest import OperatorFactory
from tests.integration.operator.test_operator_feed import (
    _coins_of,
    _cronjob_of,
    _feed,
    _hourly_cronjobs,
    _manifest,
    _ready,
    _status_is,
)
from tests.integration.operator.test_operator_last_run import _run_job


def _one_cronjob_with(admin: Path, ns: str, coins: list[str]) -> Any:
    def check() -> Any:
        crons = _hourly_cronjobs(admin, ns)
        return crons[0] if len(crons) == 1 and _coins_of(crons[0]) == sorted(coins) else None

    return wait_for(f"one shared CronJob running {coins}", check)


def test_feeds_join_and_leave_one_shared_cronjob_in_place(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    start_operator(ns, kafka_cluster.bootstrap, drift_interval=600.0)  # events, not the timer
    a, b, c = coin + "a", coin + "b", coin + "c"
    for name, sym in (("fa", a), ("fb", b)):
        kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(sym, name=name))
    cron = _one_cronjob_with(admin, ns, [a, b])
    uid = cron["metadata"]["uid"]
    owners = {r["name"] for r in cron["metadata"]["ownerReferences"]}
    assert owners == {"fa", "fb"}
    feed = wait_for("fa scheduled", _status_is(admin, ns, "AggregationScheduled", "True", "fa"))
    assert cron["metadata"]["name"] in condition(feed, "AggregationScheduled")["message"]  # type: ignore[index]

    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(c, name="fc"))
    cron = _one_cronjob_with(admin, ns, [a, b, c])
    assert cron["metadata"]["uid"] == uid  # updated in place: its schedule and history stay

    kubectl(admin, "delete", "cf", "fb", "-n", ns)
    cron = _one_cronjob_with(admin, ns, [a, c])
    assert cron["metadata"]["uid"] == uid
    assert {r["name"] for r in cron["metadata"]["ownerReferences"]} == {"fa", "fc"}

    # A feed on another schedule gets its own CronJob; the shared one is untouched.
    kubectl(
        admin,
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=_manifest(coin + "d", name="fd", aggregation={"schedule": "35 * * * *"}),
    )
    other = wait_for("fd's own CronJob", lambda: _cronjob_of(admin, ns, "fd"))
    assert other["metadata"]["uid"] != uid and other["spec"]["schedule"] == "35 * * * *"
    assert _cronjob_of(admin, ns, "fa")["metadata"]["uid"] == uid

    kubectl(admin, "delete", "cf", "fa", "fc", "fd", "-n", ns)
    wait_for("every hourly CronJob gone", lambda: _hourly_cronjobs(admin, ns) == [])


def _shared_summary(entries: dict[str, dict[str, Any]]) -> str:
    """What the job writes (format 2, the real encoder; test_operator_last_run.py keeps
    format 1, which the previous version's pods may still hold)."""
    outcomes = {
        coin: CoinOutcome(
            ok=e["ok"],
            newest_hour=datetime.fromisoformat(e["newest_hour"]) if "newest_hour" in e else None,
            hours=e.get("hours", 0),
            error=e.get("error", ""),
        )
        for coin, e in entries.items()
    }
    return encode(outcomes)


def test_each_feed_reports_its_own_part_of_a_shared_run(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    start_operator(ns, kafka_cluster.bootstrap, drift_interval=600.0)
    good, bad = coin + "g", coin + "b"
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(good, name="good"))
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(bad, name="bad"))
    cron = _one_cronjob_with(admin, ns, [good, bad])
    _ready(admin, ns, "good")
    _ready(admin, ns, "bad")

    # One run for both coins: bad's topic is missing, good's hours were written. The Job fails.
    error = f"UnknownTopicOrPartitionException: coinfeed.{bad}.prices"
    _run_job(
        admin,
        ns,
        cron,
        f"{cron['metadata']['name']}-29000000",
        succeeded=False,
        message=_shared_summary(
            {
                good: {"ok": True, "hours": 2, "newest_hour": "2026-01-01T12:00:00Z"},
                bad: {"ok": False, "error": error},
            }
        ),
        at="2026-01-01T13:09:00Z",
    )
    bad_feed = wait_for(
        "bad: LastRunSucceeded=False",
        _status_is(admin, ns, "LastRunSucceeded", "False", "bad", reason="BackoffLimitExceeded"),
    )
    assert error in condition(bad_feed, "LastRunSucceeded")["message"]  # type: ignore[index]
    assert condition(bad_feed, "Ready")["status"] == "False"  # type: ignore[index]
    good_feed = wait_for(
        "good: LastRunSucceeded=True", _status_is(admin, ns, "LastRunSucceeded", "True", "good")
    )
    assert good_feed["status"]["lastHour"] == "2026-01-01T12:00:00Z"
    assert good_feed["status"]["lastRun"]["result"] == "Succeeded"
    assert error not in json.dumps(good_feed["status"])
    assert condition(good_feed, "Ready")["status"] == "True"  # type: ignore[index]
    assert "lastHour" not in _feed(admin, ns, "bad")["status"]


def test_upgrade_removes_the_per_feed_cronjob_of_the_previous_version(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin))  # no operator yet
    uid = _feed(admin, ns)["metadata"]["uid"]
    labels = {
        "app.kubernetes.io/name": "coinfeed-hourly",
        "app.kubernetes.io/instance": "btc",
        "app.kubernetes.io/component": "hourly",
        "app.kubernetes.io/part-of": "coinfeed",
        "app.kubernetes.io/managed-by": "coinfeed-operator",
        "coinfeed.io/feed": "btc",
        "coinfeed.io/coin": coin,
    }
    owner = {
        "apiVersion": "coinfeed.io/v1alpha1",
        "kind": "CoinFeed",
        "name": "btc",
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    meta = {"namespace": ns, "labels": labels, "ownerReferences": [owner]}
    # What the previous version wrote: btc-hourly and (k8s:// master) its executor template.
    legacy = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "btc-hourly", **meta},
        "spec": {
            "schedule": "5 * * * *",
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "hourly",
                                    "image": "coinfeed-spark:0.1.0",
                                    "command": ["coinfeed", "hourly", "--coin", coin],
                                }
                            ],
                        },
                    }
                },
            },
        },
    }
    template = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "btc-hourly-executor", **meta},
        "data": {"executor-pod.yaml": "kind: Pod\n"},
    }
    for obj in (legacy, template):
        kubectl(admin, "create", "-f", "-", input=json.dumps(obj))

    start_operator(ns, kafka_cluster.bootstrap)
    wait_for(
        "the per-feed CronJob and its template removed",
        lambda: (
            get_json(admin, "cronjob", "btc-hourly", "-n", ns) is None
            and get_json(admin, "configmap", "btc-hourly-executor", "-n", ns) is None
        ),
    )
    cron = wait_for("the shared CronJob", lambda: _cronjob_of(admin, ns))
    assert _coins_of(cron) == [coin]
    feed = _ready(admin, ns)
    assert condition(feed, "AggregationScheduled")["status"] == "True"  # type: ignore[index]
