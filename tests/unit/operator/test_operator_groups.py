"""Shared hourly CronJobs (pure): which feeds share one, what it looks like, how the reconcile
keeps it in place, and how each feed reads its own outcome from a shared run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coinfeed.operator import lastrun
from coinfeed.operator.desired import group_children, group_cronjob
from coinfeed.operator.groups import GROUP_LABEL, cronjob_of, plan_groups
from coinfeed.operator.reconcile import reconcile_hourly
from coinfeed.operator.settings import (
    MAX_COINS_PER_JOB,
    OperatorSettings,
    SettingsError,
    settings_from_env,
)

SETTINGS = OperatorSettings(kafka_bootstrap="kafka:9092", spark_image="s:1")


def feed(
    name: str,
    coin: str,
    *,
    ns: str = "feeds",
    created: str = "2026-01-01T00:00:00Z",
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{ns}-{name}",
            "creationTimestamp": created,
        },
        "spec": {"coin": coin, "prices": {"source": "binance", "pair": "X/USDT"}, **spec},
    }


def test_feeds_on_one_schedule_share_one_group_others_get_their_own() -> None:
    feeds = [
        feed("a", "btc"),
        feed("b", "eth", created="2026-01-01T00:00:01Z"),
        feed("c", "sol", aggregation={"schedule": "20 * * * *"}),
        feed("d", "ada", aggregation={"lookbackHours": 6}),
        feed("e", "dot", topics={"retentionHours": 72}),
        feed("f", "xrp", ns="other"),
    ]
    groups = plan_groups(feeds, 30)
    by_coins = {tuple(g.coins): g for g in groups}
    assert set(by_coins) == {("btc", "eth"), ("sol",), ("ada",), ("dot",), ("xrp",)}
    shared = by_coins[("btc", "eth")]
    assert shared.key.schedule == "5 * * * *" and shared.namespace == "feeds"
    assert by_coins[("xrp",)].namespace == "other"
    assert len({g.name for g in groups if g.namespace == "feeds"}) == 4
    # Names are stable DNS labels short enough for a CronJob (52).
    assert all(g.name.startswith("coinfeed-hourly-") and len(g.name) <= 52 for g in groups)
    assert plan_groups(feeds, 30, namespace="other") == [by_coins[("xrp",)]]


def test_suspended_deleting_invalid_and_conflicting_feeds_are_left_out() -> None:
    deleting = feed("gone", "ltc")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T01:00:00Z"
    feeds = [
        feed("a", "btc"),
        feed("s", "eth", suspend=True),
        deleting,
        feed("bad", "BTC!"),
        # Same coin, created later: owns nothing (claims), so its coin is not run twice.
        feed("z", "btc", created="2026-01-02T00:00:00Z"),
    ]
    (group,) = plan_groups(feeds, 30)
    assert [m.name for m in group.members] == ["a"]
    assert plan_groups([feed("s", "eth", suspend=True)], 30) == []


def test_shards_fill_in_creation_order_and_a_new_feed_joins_the_last() -> None:
    feeds = [
        feed(f"f{i:03d}", f"c{i:03d}", created=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z")
        for i in range(65)
    ]
    groups = plan_groups(feeds, 30)
    assert [len(g.members) for g in groups] == [30, 30, 5]
    assert [g.shard for g in groups] == [0, 1, 2]
    assert groups[0].members[0].name == "f000" and groups[2].members[-1].name == "f064"
    later = [*feeds, feed("new", "zzz", created="2026-02-01T00:00:00Z")]
    after = plan_groups(later, 30)
    assert after[:2] == groups[:2]  # the full shards do not change
    assert [m.name for m in after[2].members][-1] == "new"
    # One coin per job: one CronJob per feed, as before shared jobs.
    assert len(plan_groups(feeds, 1)) == 65


def test_shared_cronjob_runs_every_coin_and_is_owned_by_every_member() -> None:
    from coinfeed.spark.hourly import _coins, build_parser

    (group,) = plan_groups([feed("b", "eth"), feed("a", "btc")], 30)
    cron = group_cronjob(group, SETTINGS)
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(container["command"][2:])
    assert _coins(args.coin) == ["btc", "eth"]  # the job's own parser reads both coins
    refs = cron["metadata"]["ownerReferences"]
    assert [(r["kind"], r["name"], r["uid"]) for r in refs] == [
        ("CoinFeed", "a", "uid-feeds-a"),
        ("CoinFeed", "b", "uid-feeds-b"),
    ]
    # Several owners: none may be the controller, and no feed waits for the shared job.
    assert not any(r["controller"] or r["blockOwnerDeletion"] for r in refs)
    labels = cron["metadata"]["labels"]
    assert labels[GROUP_LABEL] == group.key.id()
    assert "coinfeed.io/feed" not in labels and "coinfeed.io/coin" not in labels
    job_labels = cron["spec"]["jobTemplate"]["metadata"]["labels"]
    assert job_labels["coinfeed.io/hourly-job"] == cron["metadata"]["name"]
    assert job_labels["app.kubernetes.io/component"] == "hourly"  # the operator's Job watch
    assert cron["spec"]["suspend"] is False
    # One coin's failure (exit 1) fails the Job without rerunning every other coin.
    rules = cron["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob" and 1 in rules[0]["onExitCodes"]["values"]
    assert cronjob_of([cron], "uid-feeds-b") is cron and cronjob_of([cron], "uid-x") is None


def test_the_cap_keeps_every_coins_outcome_in_the_jobs_4k_summary() -> None:
    """Contract with coinfeed.hourly_status: at MAX_COINS_PER_JOB coins of the longest symbol,
    each failed after writing a different hour, with long distinct errors, the message fits the
    kubelet's 4096 bytes and every coin's ok-state and newest hour reads back."""
    from coinfeed.spark.summary import CoinRun, LatestHour, termination_message
    from coinfeed.topics import COIN_MAX_LENGTH, normalize_coin

    assert MAX_COINS_PER_JOB >= 150  # 100 feeds on one schedule: one Spark application
    assert SETTINGS.hourly_max_coins_per_job <= MAX_COINS_PER_JOB
    coins = [normalize_coin(f"c{i:0{COIN_MAX_LENGTH - 1}d}") for i in range(MAX_COINS_PER_JOB)]
    hours = {
        c: datetime(2026, 12, 31, 23, tzinfo=UTC) - i * timedelta(hours=1)
        for i, c in enumerate(coins)
    }
    runs = [
        CoinRun(
            coin=c,
            hours=[hours[c]] * 10_000,
            amended_hours=[hours[c]] * 10_000,
            late_records=10**9,
            latest=LatestHour(hours[c], 1.0, 1.0, 1.0, 1, 1.0),
        )
        for c in coins
    ]
    errors = {c: f"KafkaException: {c} says " + '"é\\' * 2000 for c in coins}
    message = termination_message(runs, errors, fatal="cannot push: " + "x" * 5000)
    assert len(message.encode()) <= 4096
    summary = lastrun.parse_summary(message)
    assert summary is not None and summary["ok"] is False
    assert {c: (e["ok"], e["newest_hour"]) for c, e in summary["coins"].items()} == {
        c: (False, f"{hours[c]:%Y-%m-%dT%H:00:00Z}") for c in coins
    }
    job = {
        "metadata": {"name": "j"},
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "X"}]},
    }
    run = lastrun.last_run(job, [_pod(message)], coins[-1])
    assert run is not None and not run.succeeded
    assert run.newest_hour == f"{hours[coins[-1]]:%Y-%m-%dT%H:00:00Z}"
    # One coin more can no longer be promised its entry: the operator refuses such a cap.
    assert settings_from_env({"COINFEED_OPERATOR_HOURLY_MAX_COINS_PER_JOB": "1"})
    with pytest.raises(SettingsError, match="HOURLY_MAX_COINS_PER_JOB"):
        settings_from_env(
            {"COINFEED_OPERATOR_HOURLY_MAX_COINS_PER_JOB": str(MAX_COINS_PER_JOB + 1)}
        )


# --- the reconcile of a namespace's shared CronJobs --------------------------------------------


class FakeKube:
    """Objects by (kind, name), created/replaced/deleted as the API server would (uids kept)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.uids = 0

    def ensure(self, desired: Mapping[str, Any]) -> tuple[str, list[str]]:
        key = (str(desired["kind"]), str(desired["metadata"]["name"]))
        body = json.loads(json.dumps(desired))
        old = self.objects.get(key)
        if old is None:
            self.uids += 1
            body["metadata"]["uid"] = f"u{self.uids}"
            self.objects[key] = body
            return "created", []
        body["metadata"]["uid"] = old["metadata"]["uid"]
        if body == old:
            return "unchanged", []
        self.objects[key] = body
        return "updated", [".spec"]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        return self.objects.pop((kind, name), None) is not None

    def list_hourly_cronjobs(self, namespace: str) -> list[dict[str, Any]]:
        return [o for (k, _), o in self.objects.items() if k == "CronJob"]

    def list_jobs(self, namespace: str, cronjob: str) -> list[dict[str, Any]]:
        return []

    def list_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        return []


def _crons(kube: FakeKube) -> list[dict[str, Any]]:
    return kube.list_hourly_cronjobs("feeds")


def _coins(cron: Mapping[str, Any]) -> str:
    cmd = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    return str(cmd[cmd.index("--coin") + 1])


def test_reconcile_creates_updates_in_place_and_deletes_the_shared_cronjob() -> None:
    kube = FakeKube()
    feeds = [feed("a", "btc"), feed("b", "eth")]
    out = reconcile_hourly("feeds", feeds, SETTINGS, kube)
    (cron,) = _crons(kube)
    uid = cron["metadata"]["uid"]
    assert _coins(cron) == "btc,eth" and not out.errors
    assert {f for f, ev in out.events if ev.reason == "Created"} == {"a", "b"}

    feeds.append(feed("c", "sol", created="2026-01-01T00:00:09Z"))
    reconcile_hourly("feeds", feeds, SETTINGS, kube)
    (cron,) = _crons(kube)
    assert (cron["metadata"]["uid"], _coins(cron)) == (uid, "btc,eth,sol")  # same object

    del feeds[1]
    reconcile_hourly("feeds", feeds, SETTINGS, kube)
    (cron,) = _crons(kube)
    assert (cron["metadata"]["uid"], _coins(cron)) == (uid, "btc,sol")
    assert [r["name"] for r in cron["metadata"]["ownerReferences"]] == ["a", "c"]

    assert reconcile_hourly("feeds", feeds, SETTINGS, kube).events == []  # settled: no writes
    reconcile_hourly("feeds", [], SETTINGS, kube)
    assert _crons(kube) == []


def test_reconcile_removes_the_per_feed_cronjobs_of_earlier_versions() -> None:
    kube = FakeKube()
    legacy_labels = {
        "app.kubernetes.io/managed-by": "coinfeed-operator",
        "app.kubernetes.io/component": "hourly",
        "coinfeed.io/feed": "a",
    }
    kube.objects[("CronJob", "a-hourly")] = {
        "metadata": {"name": "a-hourly", "labels": legacy_labels}
    }
    kube.objects[("ConfigMap", "a-hourly-executor")] = {"metadata": {"name": "a-hourly-executor"}}
    # Not the operator's naming: left alone.
    other = {**legacy_labels, "coinfeed.io/feed": "b"}
    kube.objects[("CronJob", "nightly")] = {"metadata": {"name": "nightly", "labels": other}}
    reconcile_hourly("feeds", [feed("a", "btc")], SETTINGS, kube)
    names = {name for _, name in kube.objects}
    assert "a-hourly" not in names and "a-hourly-executor" not in names
    assert "nightly" in names
    (shared,) = [c for c in _crons(kube) if GROUP_LABEL in c["metadata"]["labels"]]
    assert _coins(shared) == "btc"


def test_k8s_master_keeps_one_executor_template_per_shared_cronjob() -> None:
    kube = FakeKube()
    k8s = OperatorSettings(spark_master="k8s://https://kubernetes.default.svc")
    feeds = [feed("a", "btc"), feed("b", "eth")]
    reconcile_hourly("feeds", feeds, k8s, kube)
    (group,) = plan_groups(feeds, 30)
    template, _cron = group_children(group, k8s)
    assert kube.get("ConfigMap", "feeds", template["metadata"]["name"]) is not None
    # Back to local mode: the template goes; the last feed gone: the CronJob and template go.
    reconcile_hourly("feeds", feeds, SETTINGS, kube)
    assert kube.get("ConfigMap", "feeds", template["metadata"]["name"]) is None
    reconcile_hourly("feeds", feeds, k8s, kube)
    reconcile_hourly("feeds", [], k8s, kube)
    assert kube.objects == {}


# --- each feed's own outcome from a shared run -------------------------------------------------


def _job(name: str, state: str, at: str, coins: str) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": state, "status": "True", "lastTransitionTime": at}
    if state == "Failed":
        cond["reason"] = "PodFailurePolicy"
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": at,
            "ownerReferences": [{"kind": "CronJob", "uid": "cron"}],
        },
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "hourly", "command": ["coinfeed", "hourly", "--coin", coins]}
                    ]
                }
            }
        },
        "status": {"conditions": [cond], **({"completionTime": at} if state == "Complete" else {})},
    }


def _pod(message: str) -> dict[str, Any]:
    term = {"exitCode": 1, "finishedAt": "2026-01-01T13:09:00Z", "message": message}
    return {"status": {"containerStatuses": [{"name": "hourly", "state": {"terminated": term}}]}}


def test_one_coins_failure_in_a_shared_run_fails_only_its_feed() -> None:
    summary = json.dumps(
        {
            "summary": "hourly",
            "ok": False,
            "coins": {
                "btc": {"ok": True, "hours": 2, "newest_hour": "2026-01-01T12:00:00Z"},
                "eth": {"ok": False, "error": "UnknownTopicOrPartitionException: coinfeed.eth"},
            },
        }
    )
    job = _job("coinfeed-hourly-x-0-1", "Failed", "2026-01-01T13:09:00Z", "btc,eth")
    btc = lastrun.last_run(job, [_pod(summary)], "btc")
    eth = lastrun.last_run(job, [_pod(summary)], "eth")
    assert btc is not None and eth is not None
    assert (btc.succeeded, btc.reason, btc.newest_hour) == (
        True,
        "Completed",
        "2026-01-01T12:00:00Z",
    )
    assert "UnknownTopic" not in btc.message
    assert (eth.succeeded, eth.reason) == (False, "PodFailurePolicy")
    assert "UnknownTopicOrPartitionException: coinfeed.eth" in eth.message
    # A run the whole job could not start is every coin's failure.
    fatal = json.dumps({"summary": "hourly", "ok": False, "coins": {}, "error": "cannot start"})
    run = lastrun.last_run(job, [_pod(fatal)], "btc")
    assert run is not None and not run.succeeded and "cannot start" in run.message


def test_a_format_2_summary_without_counts_or_texts_still_decides_each_feed() -> None:
    """The core the job always keeps (ok-state, newest hour) is enough for each feed's status."""
    core = '{"summary":"hourly","v":2,"ok":false,"coins":"btc:2026010112,eth!:2026010111"}'
    job = _job("coinfeed-hourly-x-0-1", "Failed", "2026-01-01T13:09:00Z", "btc,eth")
    btc = lastrun.last_run(job, [_pod(core)], "btc")
    eth = lastrun.last_run(job, [_pod(core)], "eth")
    assert btc is not None and eth is not None
    assert (btc.succeeded, btc.newest_hour) == (True, "2026-01-01T12:00:00Z")
    assert "hour(s) processed" not in btc.message  # not "0 hours": the count was left out
    assert (eth.succeeded, eth.newest_hour) == (False, "2026-01-01T11:00:00Z")


def test_runs_from_before_a_feed_joined_are_not_its_runs() -> None:
    jobs = [
        _job("j1", "Complete", "2026-01-01T12:07:00Z", "btc,eth"),
        _job("j2", "Complete", "2026-01-01T13:07:00Z", "btc"),
    ]
    assert lastrun.newest_finished_job(jobs, "cron", "btc")["metadata"]["name"] == "j2"  # type: ignore[index]
    assert lastrun.newest_finished_job(jobs, "cron", "eth")["metadata"]["name"] == "j1"  # type: ignore[index]
    assert lastrun.newest_finished_job(jobs, "cron", "sol") is None
    assert lastrun.job_coins(jobs[0]) == {"btc", "eth"}


def test_a_burst_of_feed_events_costs_few_passes_and_misses_no_feed() -> None:
    import threading
    import time
    from typing import cast

    from coinfeed.operator.handlers import Context, reconcile_namespace_hourly

    class SlowKube(FakeKube):
        def __init__(self) -> None:
            super().__init__()
            self.feeds = [feed("a", "btc")]
            self.passes = 0

        def list_feeds(self, namespace: str | None) -> list[dict[str, Any]]:
            self.passes += 1
            time.sleep(0.2)  # a pass takes a while: the others queue up meanwhile
            return list(self.feeds)

        def post_event(self, *_: Any) -> None:
            return None

    kube = SlowKube()
    ctx = Context(
        settings=SETTINGS, kafka=cast(Any, None), kube=cast(Any, kube), metrics=cast(Any, None)
    )
    threads = [
        threading.Thread(target=reconcile_namespace_hourly, args=(ctx, "feeds")) for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= kube.passes <= 2, kube.passes
    # A feed that appears after those passes is picked up by the next request.
    kube.feeds.append(feed("b", "eth", created="2026-01-01T00:00:05Z"))
    reconcile_namespace_hourly(ctx, "feeds")
    (cron,) = _crons(kube)
    assert _coins(cron) == "btc,eth"
