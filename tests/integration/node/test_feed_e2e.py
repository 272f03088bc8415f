"""A CoinFeed end to end on the real node: `kubectl apply` -> producer pods -> Kafka -> the hourly
job's pod -> the lake -> the feed's status (issue: a CoinFeed end to end on the real node).

The replay examples (manifests/examples/coinfeed-{btc,eth}-replay.yaml) replay the synthetic sample
shipped in the producer image, moved by whole hours so its last hour is the newest closed hour.
So the expected hourly rows are known without Spark: this file computes them from samples/ in
plain Python (an independent oracle) and compares them with what the job's pod wrote to the lake
volume, which the test reads on the host through the PersistentVolume's hostPath.

Runs in the session's release (``coinfeed_release``) before tests/integration/node/test_local_node.py
(file order), and deletes every feed it applied.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from coinfeed.topics import feed_topics
from tests.integration.node.test_local_node import PRODUCER_IMAGE, restricted_pod
from tests.support.localnode import NAMESPACE, REPO, Kube, LocalNode, pod_ready

Release = tuple[LocalNode, str]
HOUR = timedelta(hours=1)
EXAMPLES = REPO / "manifests" / "examples"
SAMPLES = REPO / "samples"
# eth replays at 1800x (48 h in 96 s) so a producer pod can be deleted mid-replay; btc as shipped.
ETH_SPEED = 1800
NEVER = "0 0 30 2 *"

# Inside the cluster: read a topic from the beginning to its end offsets; count records and keys
# (tweet id, or the tick's time for prices).
COUNT_SCRIPT = r"""
import json, sys
from kafka import KafkaConsumer, TopicPartition
bootstrap, topics = sys.argv[1], sys.argv[2:]
out = {}
for topic in topics:
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=20000)
    parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
    c.assign(parts)
    c.seek_to_beginning(*parts)
    end = c.end_offsets(parts)
    total, keys = 0, set()
    while any(c.position(p) < end[p] for p in parts):
        for recs in c.poll(timeout_ms=2000).values():
            for r in recs:
                total += 1
                v = json.loads(r.value)
                keys.add(v.get("id") or v.get("ts"))
    out[topic] = {"total": total, "unique": len(keys)}
    c.close()
print(json.dumps(out), flush=True)
"""

LIST_SCRIPT = r"""
import json, sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=30000)
print(json.dumps(sorted(t for t in admin.list_topics() if t.startswith("coinfeed."))), flush=True)
"""


# --- the oracle: hourly figures straight from the sample files ---------------------------------


def sample_records(name: str) -> list[dict[str, Any]]:
    with gzip.open(SAMPLES / name, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def expected_hours(coin: str) -> dict[datetime, dict[str, Any]]:
    """Per sample hour (UTC): the figures every correct hourly row must show."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    prices: dict[datetime, list[tuple[datetime, float]]] = defaultdict(list)
    for r in sample_records(f"{coin}-prices.jsonl.gz"):
        prices[floor_hour(ts(r["ts"]))].append((ts(r["ts"]), float(r["price"])))
    tweets: dict[datetime, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in sample_records(f"{coin}-tweets.jsonl.gz"):
        tweets[floor_hour(ts(r["created_at"]))][r["id"]] = r
    out: dict[datetime, dict[str, Any]] = {}
    for hour, ticks in prices.items():
        ticks.sort()
        posts = tweets.get(hour, {}).values()
        scores = [vader.polarity_scores(p["text"])["compound"] for p in posts]
        out[hour] = {
            "tick_count": len(ticks),
            "open": ticks[0][1],
            "close": ticks[-1][1],
            "high": max(p for _, p in ticks),
            "low": min(p for _, p in ticks),
            "tweet_count": len(scores),
            "likes_total": sum(int(p.get("like_count", 0)) for p in posts),
            "sentiment_mean": sum(scores) / len(scores) if scores else None,
        }
    return out


def assert_rows_match_sample(coin: str, rows: list[dict[str, Any]], shift: timedelta) -> None:
    want = expected_hours(coin)
    for row in rows:
        hour = row["hour_start"].replace(tzinfo=UTC)  # Spark's INT96: naive UTC
        exp = want[hour - shift]
        for key, value in exp.items():
            got = row[key]
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (coin, hour, key)
            else:
                assert got == value, (coin, hour, key, got, value)


# --- cluster helpers -----------------------------------------------------------------------------


def manifest(coin: str, speed: float | None = None) -> dict[str, Any]:
    """An example replay feed whose CronJob never fires by itself (February 30th): the tests start
    every run, so no scheduled run writes the same hours at the same time."""
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"coinfeed-{coin}-replay.yaml").read_text())
    doc["spec"]["aggregation"]["schedule"] = NEVER
    if speed is not None:
        for kind in ("prices", "tweets"):
            doc["spec"][kind]["replaySpeed"] = speed
    return doc


def feed(kube: Kube, name: str, ns: str = NAMESPACE) -> dict[str, Any]:
    result: dict[str, Any] = kube.get("-n", ns, "coinfeed", name)
    return result


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return dict(c)
    return {}


def cronjobs_for(kube: Kube, coin: str, ns: str = NAMESPACE) -> list[dict[str, Any]]:
    """The CronJob(s) whose job aggregates ``coin`` (one per feed, or one shared per schedule)."""
    found = []
    for cj in kube.get("-n", ns, "cronjobs")["items"]:
        container = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        argv = [*container.get("command", []), *container.get("args", [])]
        coins = {a for i, a in enumerate(argv) if i and argv[i - 1] == "--coin"}
        coins = {c for a in coins for c in a.split(",")}
        if coin in coins:
            found.append(cj)
    return found


def create_job(kube: Kube, cronjob: str, name: str, patch: Any = None, ns: str = NAMESPACE) -> None:
    """`kubectl create job --from=cronjob/...`, optionally edited first."""
    job = json.loads(
        kube.kubectl(
            "-n", ns, "create", "job", name, f"--from=cronjob/{cronjob}",
            "--dry-run=client", "-o", "json",
        ).stdout
    )  # fmt: skip
    if patch is not None:
        patch(job)
    kube.kubectl("-n", ns, "create", "-f", "-", stdin=json.dumps(job))


def job_outcome(kube: Kube, name: str, ns: str = NAMESPACE) -> str:
    """Complete or Failed, once the Job has finished."""

    def finished() -> str:
        status = kube.get("-n", ns, "job", name).get("status", {})
        for c in status.get("conditions", []):
            if c["type"] in ("Complete", "Failed") and c["status"] == "True":
                return str(c["type"])
        return ""

    return str(kube.wait_until(f"job {name} to finish", finished, timeout=900, interval=5))


def job_pods(kube: Kube, job: str, ns: str = NAMESPACE) -> list[dict[str, Any]]:
    return kube.pods(ns, f"job-name={job}")


def lake_root(kube: Kube, ns: str = NAMESPACE) -> Path:
    pvc = kube.get("-n", ns, "pvc", "coinfeed-lake")
    pv = kube.get("pv", pvc["spec"]["volumeName"])
    return Path(pv["spec"]["hostPath"]["path"])


def hourly_rows(kube: Kube, coin: str, ns: str = NAMESPACE) -> list[dict[str, Any]]:
    path = lake_root(kube, ns) / "hourly" / f"coin={coin}"
    if not path.is_dir():
        return []
    rows: list[dict[str, Any]] = pq.read_table(path, partitioning="hive").to_pylist()
    return sorted(rows, key=lambda r: r["hour_start"])


def run_script(kube: Kube, name: str, script: str, *args: str) -> Any:
    """Run a Python script in a restricted pod of the producer image (it has kafka-python);
    return the last line it printed, parsed as JSON."""
    pod = restricted_pod(name, PRODUCER_IMAGE, ["python", "-c", script, *args])
    kube.kubectl("-n", NAMESPACE, "delete", "pod", name, "--ignore-not-found")
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    try:
        kube.wait_until(
            f"pod {name} to finish",
            lambda: (
                kube.get("-n", NAMESPACE, "pod", name)["status"]["phase"] in ("Succeeded", "Failed")
            ),
            timeout=300,
            interval=3,
        )
        logs = kube.kubectl("-n", NAMESPACE, "logs", name).stdout
        assert logs.strip(), f"pod {name} printed nothing"
        return json.loads(logs.strip().splitlines()[-1])
    finally:
        kube.kubectl("-n", NAMESPACE, "delete", "pod", name, "--ignore-not-found", "--wait=false")


def topic_counts(kube: Kube, topics: list[str], name: str) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = run_script(
        kube, name, COUNT_SCRIPT, "coinfeed-kafka:9092", *topics
    )
    return result


def coinfeed_topics(kube: Kube, name: str) -> list[str]:
    topics: list[str] = run_script(kube, name, LIST_SCRIPT, "coinfeed-kafka:9092")
    return topics


def children(kube: Kube, feed_name: str) -> dict[str, list[str]]:
    out = {}
    for kind in ("deployments", "services", "cronjobs", "configmaps"):
        items = kube.get("-n", NAMESPACE, kind, "-l", f"coinfeed.io/feed={feed_name}")["items"]
        out[kind] = sorted(i["metadata"]["name"] for i in items)
    return out


def replay_finished(kube: Kube, deployment: str, ns: str = NAMESPACE) -> bool:
    pods = [
        p
        for p in kube.pods(ns, f"coinfeed.io/feed={deployment.rsplit('-', 1)[0]}")
        if p["metadata"]["name"].startswith(deployment + "-")
        and pod_ready(p)
        and not p["metadata"].get("deletionTimestamp")
    ]
    if len(pods) != 1:
        return False
    logs = kube.kubectl("-n", ns, "logs", pods[0]["metadata"]["name"], check=False).stdout
    return "replay finished" in logs


def staging_dirs(root: Path) -> list[Path]:
    """Writes in progress: dynamic partition overwrite stages a table's new partitions in
    ``<table>/.spark-staging-<job>`` and moves them into place only when the write commits."""
    found = []
    for table in root.iterdir() if root.is_dir() else []:
        if table.is_dir():
            found += [e for e in table.iterdir() if e.name.startswith(".spark-staging-")]
    return found


def host_pids(container_id: str) -> list[int]:
    """The host's PIDs of one container (cgroupfs: its id is the last part of the cgroup path)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if container_id in (proc / "cgroup").read_text():
                    pids.append(int(proc.name))
            except OSError:
                continue  # gone meanwhile
    return pids


def kill_when_staging(kube: Kube, job: str) -> list[str]:
    """SIGKILL every process of ``job``'s pod, from the host, the moment a write is staged in the
    lake (polled every 20 ms: a write of the sample hours takes about a second). Returns the
    staging folders seen at that moment."""

    def running_container() -> str:
        for pod in job_pods(kube, job):
            for cs in pod["status"].get("containerStatuses", []):
                if "running" in cs.get("state", {}) and cs.get("containerID"):
                    return str(cs["containerID"]).split("://", 1)[1]
        return ""

    container = kube.wait_until(f"{job}'s container running", running_container, timeout=300)
    root = lake_root(kube)
    already = set(staging_dirs(root))  # left by an earlier killed run
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        staged = [d for d in staging_dirs(root) if d not in already]
        if staged:
            pids = host_pids(container)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):  # gone meanwhile
                    os.kill(pid, signal.SIGKILL)
            assert pids, f"no process of container {container} on the host"
            return [str(d) for d in staged]
        time.sleep(0.02)
    raise AssertionError(f"{job} never staged a write")


# --- the tests -----------------------------------------------------------------------------------


@dataclass
class Feeds:
    kube: Kube
    applied: datetime  # the producers' start moves the sample to the hours before this one


@pytest.fixture(scope="module")
def feeds(coinfeed_release: Release) -> Iterator[Feeds]:
    local, _ = coinfeed_release
    kube = local.kube
    # A producer restarted in another hour would move its replay by one more hour: start early
    # enough in the hour that the replays (and the restart below) end within it.
    now = datetime.now(UTC)
    if now.minute >= 55:
        time.sleep((floor_hour(now) + HOUR - now).total_seconds() + 5)
    applied = datetime.now(UTC)
    kube.kubectl("-n", NAMESPACE, "apply", "-f", "-", stdin=json.dumps(manifest("btc")))
    kube.kubectl("-n", NAMESPACE, "apply", "-f", "-", stdin=json.dumps(manifest("eth", ETH_SPEED)))
    try:
        yield Feeds(kube, applied)
    finally:
        kube.kubectl(
            "-n",
            NAMESPACE,
            "delete",
            "coinfeed",
            "--all",
            "--ignore-not-found",
            "--timeout=180s",
            check=False,
        )


def test_replay_feeds_become_ready_with_true_printer_columns(feeds: Feeds) -> None:
    kube = feeds.kube
    for name in ("btc-replay", "eth-replay"):
        kube.wait_until(
            f"{name} Ready",
            lambda name=name: condition(feed(kube, name), "Ready").get("status") == "True",
            timeout=300,
        )
    table = kube.kubectl("-n", NAMESPACE, "get", "coinfeeds").stdout.splitlines()
    header = table[0].split()
    assert header[:4] == ["NAME", "COIN", "READY", "TOPICS"], table[0]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    for name, coin in (("btc-replay", "btc"), ("eth-replay", "eth")):
        assert rows[name][1:3] == [coin, "True"], rows[name]
        # TOPICS: ready topics of the feed's two (prices, tweets).
        assert feed(kube, name)["status"]["topicSummary"] == "2/2"
        assert rows[name][3] == "2/2", rows[name]
    # Producers run as non-root pods in the restricted namespace, replaying the image's sample.
    pods = kube.pods(NAMESPACE, "coinfeed.io/feed in (btc-replay,eth-replay)")
    assert len(pods) == 4, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_records_of_both_kinds_reach_the_brokers_and_a_deleted_producer_loses_none(
    feeds: Feeds,
) -> None:
    kube = feeds.kube

    # eth's tweets producer is mid-replay (1800x): delete its pod; the Deployment's new pod
    # replays the file again from the start.
    def replaying() -> list[dict[str, Any]]:
        return [
            p
            for p in kube.pods(
                NAMESPACE, "coinfeed.io/feed=eth-replay,app.kubernetes.io/component=tweets"
            )
            if pod_ready(p)
            and "replay finished"
            not in kube.kubectl("-n", NAMESPACE, "logs", p["metadata"]["name"], check=False).stdout
        ]

    (victim,) = kube.wait_until("eth's tweets producer replaying", replaying, timeout=240)
    kube.kubectl("-n", NAMESPACE, "delete", "pod", victim["metadata"]["name"], "--wait=false")
    for deployment in (
        "btc-replay-prices",
        "btc-replay-tweets",
        "eth-replay-prices",
        "eth-replay-tweets",
    ):
        kube.wait_until(
            f"{deployment} to finish its replay",
            lambda d=deployment: replay_finished(kube, d),
            timeout=600,
            interval=5,
        )
    topics = [*feed_topics("btc").values(), *feed_topics("eth").values()]
    counts = topic_counts(kube, topics, "topic-count")
    sample = {
        feed_topics(c)[k]: len(sample_records(f"{c}-{k}.jsonl.gz"))
        for c in ("btc", "eth")
        for k in ("prices", "tweets")
    }
    for topic, n in sample.items():
        assert counts[topic]["unique"] == n, (topic, counts[topic], n)  # nothing lost
    # Untouched producers wrote each record once; the restarted one replayed part of it twice
    # (at-least-once): the hourly job deduplicates by id (checked in the next test).
    assert counts[feed_topics("btc")["tweets"]]["total"] == sample[feed_topics("btc")["tweets"]]
    assert counts[feed_topics("eth")["tweets"]]["total"] > sample[feed_topics("eth")["tweets"]]


def sample_shift(coin: str, applied: datetime) -> timedelta:
    """How far the replay moved the sample (producers/replay.py, rebase ``hour``): the files'
    hours end with the hour before ``applied``'s."""
    from coinfeed.producers.replay import rebase_shift

    shifts = {}
    for kind, field in (("prices", "ts"), ("tweets", "created_at")):
        times = [ts(r[field]) for r in sample_records(f"{coin}-{kind}.jsonl.gz")]
        shifts[kind] = rebase_shift("hour", (min(times), max(times)), applied)
    # Each producer moves its own file: both must move the same whole hours.
    assert shifts["prices"] == shifts["tweets"], shifts
    assert shifts["prices"] % HOUR == timedelta(0)
    return shifts["prices"]


def newest_closed(applied: datetime, started: datetime) -> datetime:
    """The newest hour a run started at ``started`` writes: the replay's last hour, unless that
    hour is still open to late records (the job's 5-minute grace)."""
    return min(floor_hour(applied) - HOUR, floor_hour(started - timedelta(minutes=5)) - HOUR)


def assert_lake_matches_sample(
    kube: Kube,
    coin: str,
    applied: datetime,
    started: datetime,
    finished: datetime,
    ns: str = NAMESPACE,
) -> datetime:
    rows = hourly_rows(kube, coin, ns)
    assert len(rows) >= 2, (coin, len(rows))  # at least the feed's lookbackHours
    hours: list[datetime] = [r["hour_start"].replace(tzinfo=UTC) for r in rows]
    assert hours == [hours[0] + i * HOUR for i in range(len(hours))], hours  # no gap
    # The run's "now" lies between the moment it was started and the moment it was seen done.
    possible = {newest_closed(applied, started), newest_closed(applied, finished)}
    assert hours[-1] in possible, (hours[-1], applied, started, finished)
    assert_rows_match_sample(coin, rows, sample_shift(coin, applied))
    return hours[-1]


def _trigger_all(kube: Kube, tag: str, patch: Any = None, wait: bool = True) -> dict[str, str]:
    """One Job from every CronJob that aggregates btc or eth, all started before any is waited for."""
    names = sorted({cj["metadata"]["name"] for c in ("btc", "eth") for cj in cronjobs_for(kube, c)})
    assert names, "no CronJob aggregates btc or eth"
    for name in names:
        create_job(kube, name, job_name(name, tag), patch)
    return {name: job_outcome(kube, job_name(name, tag)) if wait else "" for name in names}


def job_name(cronjob: str, tag: str) -> str:
    return f"{cronjob[:40]}-{tag}"


def status_reports(
    kube: Kube, name: str, ok: str, newest: datetime | None, ns: str = NAMESPACE
) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        f = feed(kube, name, ns)
        if condition(f, "LastRunSucceeded").get("status") != ok:
            return {}
        if newest is not None and f["status"].get("lastHour") != newest.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ):
            return {}
        return f

    result: dict[str, Any] = kube.wait_until(
        f"{name}'s status to report the run", check, timeout=180
    )
    return result


def test_triggered_hourly_job_writes_the_sample_hours_and_the_status_says_so(feeds: Feeds) -> None:
    kube = feeds.kube
    started = datetime.now(UTC)
    outcomes = _trigger_all(kube, "e2e1")
    finished = datetime.now(UTC)
    assert set(outcomes.values()) == {"Complete"}, outcomes
    for cronjob in outcomes:
        pods = job_pods(kube, job_name(cronjob, "e2e1"))
        assert pods
        for pod in pods:
            ctx = pod["spec"]["securityContext"]
            assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 185
            assert pod["status"]["phase"] == "Succeeded"
    for coin in ("btc", "eth"):
        newest = assert_lake_matches_sample(kube, coin, feeds.applied, started, finished)
        f = status_reports(kube, f"{coin}-replay", "True", newest)
        assert condition(f, "Ready")["status"] == "True"
        assert f["status"]["lastRun"]["result"] == "Succeeded"
    table = kube.kubectl("-n", NAMESPACE, "get", "coinfeeds").stdout
    newest_text = f["status"]["lastHour"]
    assert newest_text in table and "Succeeded" in table, table


def _unreachable_kafka(job: dict[str, Any]) -> None:
    container = job["spec"]["template"]["spec"]["containers"][0]
    argv = container["command"]
    argv[argv.index("--bootstrap") + 1] = "kafka.invalid:9092"
    job["spec"]["backoffLimit"] = 0


def test_a_failing_run_turns_the_feed_not_ready_with_the_reason_and_a_good_run_heals_it(
    feeds: Feeds,
) -> None:
    kube = feeds.kube
    outcomes = _trigger_all(kube, "e2e-bad", patch=_unreachable_kafka)
    assert set(outcomes.values()) == {"Failed"}, outcomes
    for coin in ("btc", "eth"):
        f = status_reports(kube, f"{coin}-replay", "False", None)
        failed = condition(f, "LastRunSucceeded")
        assert failed["reason"] and failed["message"], failed
        # The reason a person can act on, not a Java stack trace.
        assert "No resolvable bootstrap urls" in failed["message"], failed
        assert " at org.apache" not in failed["message"], failed
        ready = condition(f, "Ready")
        assert ready["status"] == "False" and ready["reason"] == failed["reason"], (ready, failed)
        row = next(
            line.split()
            for line in kube.kubectl("-n", NAMESPACE, "get", "coinfeeds").stdout.splitlines()
            if line.startswith(f"{coin}-replay ")
        )
        assert row[2] == "False", row
    # A job pod killed mid-write, then a good run: the lake holds exactly the same rows as before.
    before = {c: hourly_rows(kube, c) for c in ("btc", "eth")}
    names = sorted({cj["metadata"]["name"] for c in ("btc", "eth") for cj in cronjobs_for(kube, c)})
    for cronjob in names:  # one at a time: a staged write then belongs to this job
        no_retry = lambda j: j["spec"].update(backoffLimit=0)  # noqa: E731
        create_job(kube, cronjob, job_name(cronjob, "e2e-kill"), no_retry)
        staged = kill_when_staging(kube, job_name(cronjob, "e2e-kill"))
        assert staged, "killed without a write in progress"
        assert job_outcome(kube, job_name(cronjob, "e2e-kill")) == "Failed"
    started = datetime.now(UTC)
    outcomes = _trigger_all(kube, "e2e2")
    finished = datetime.now(UTC)
    assert set(outcomes.values()) == {"Complete"}, outcomes
    for coin in ("btc", "eth"):
        after = hourly_rows(kube, coin)
        newest = assert_lake_matches_sample(kube, coin, feeds.applied, started, finished)
        assert after[: len(before[coin])] == before[coin]
        f = status_reports(kube, f"{coin}-replay", "True", newest)
        assert condition(f, "Ready")["status"] == "True"


K8S_MASTER = "k8s://https://kubernetes.default.svc"


def set_spark_master(kube: Kube, master: str) -> None:
    """helm upgrade (other values kept); waits until the operator has rewritten the CronJobs."""
    kube.helm(
        "upgrade", "coinfeed", str(REPO / "charts" / "coinfeed"), "-n", NAMESPACE,
        "--reuse-values", "--set", f"operator.spark.master={master}",
        "--set", "operator.spark.executor.instances=1", "--wait", "--timeout", "5m",
    )  # fmt: skip

    def rewritten() -> bool:
        for coin in ("btc", "eth"):
            for cj in cronjobs_for(kube, coin):
                c = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
                if (K8S_MASTER in c["command"]) != bool(master):
                    return False
        return True

    kube.wait_until(f"CronJobs with master {master or 'local'}", rewritten, timeout=180)


def test_executor_pods_in_k8s_mode_run_restricted_and_write_the_same_rows(feeds: Feeds) -> None:
    kube = feeds.kube
    before = {c: hourly_rows(kube, c) for c in ("btc", "eth")}
    set_spark_master(kube, K8S_MASTER)
    try:
        started = datetime.now(UTC)
        names = _trigger_all(kube, "e2e-k8s", wait=False)

        def executors() -> list[dict[str, Any]]:
            return [
                p
                for p in kube.pods(NAMESPACE, "app.kubernetes.io/component=hourly-executor")
                if p["status"].get("phase") == "Running"
            ]

        # Spark deletes its executor pods when the application ends: look while it runs.
        seen = kube.wait_until("executor pods running", executors, timeout=600, interval=2)
        for pod in seen:
            ctx = pod["spec"]["securityContext"]
            assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 185, ctx
            container = pod["spec"]["containers"][0]
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert pod["spec"].get("automountServiceAccountToken") is False
            _assert_rpc_key_only_mounted(kube, pod)
        why: list[str] = []
        try:
            mapped = kube.wait_until(
                "an executor JVM mapping the image's class-data archive",
                lambda: _executor_archive_in(kube, why),
                timeout=120,
                interval=1,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {why}") from None
        assert "/opt/coinfeed/cache/cds/spark-" in mapped, mapped
        outcomes = {name: job_outcome(kube, job_name(name, "e2e-k8s")) for name in names}
        finished = datetime.now(UTC)
        assert set(outcomes.values()) == {"Complete"}, outcomes
        for coin in ("btc", "eth"):
            assert_lake_matches_sample(kube, coin, feeds.applied, started, finished)
            after = hourly_rows(kube, coin)
            assert after[: len(before[coin])] == before[coin]
    finally:
        set_spark_master(kube, "")


def _executor_archive_in(kube: Kube, why: list[str]) -> str:
    """The class-data archive a running executor JVM has mapped (its entrypoint started it from
    the driver's archive: coinfeed.spark.cds), as /proc/1/maps names it; empty while none has
    (``why`` then says what the pods showed)."""
    for pod in kube.pods(NAMESPACE, "app.kubernetes.io/component=hourly-executor"):
        if pod["status"].get("phase") != "Running":
            continue
        name = pod["metadata"]["name"]
        done = kube.kubectl(
            "-n", NAMESPACE, "exec", name, "--",
            "grep", "-m", "1", "-o", "/[^ ]*[.]jsa$", "/proc/1/maps", check=False,
        )  # fmt: skip
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
        command = kube.kubectl(
            "-n", NAMESPACE, "exec", name, "--", "cat", "/proc/1/cmdline", check=False
        )
        why[:] = [
            f"{name}: grep exit {done.returncode} {done.stderr.strip()[-300:]!r}; "
            f"PID 1: {command.stdout.replace(chr(0), ' ')[:600]!r} {command.stderr.strip()[-300:]!r}"
        ]
    return ""


def _assert_rpc_key_only_mounted(kube: Kube, pod: dict[str, Any]) -> None:
    """Driver-executor RPC is authenticated with the chart's Secret: the executor mounts it and
    learns the master (so it reads the file); no generated key in its environment, and the
    key's value nowhere in the pod."""
    volumes = [v for v in pod["spec"].get("volumes", []) if v.get("secret")]
    rpc = [v for v in volumes if v["secret"]["secretName"].endswith("-spark-rpc")]
    assert rpc, f"executor pod mounts no spark-rpc Secret: {volumes}"
    container = pod["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    assert mounts.get(rpc[0]["name"]) == "/etc/coinfeed/spark-rpc", mounts
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert "_SPARK_AUTH_SECRET" not in env, "Spark put a generated key into the executor's env"
    assert "-Dspark.master=k8s://" in (env.get("JAVA_TOOL_OPTIONS") or ""), env
    secret = kube.get("secret", rpc[0]["secret"]["secretName"], "-n", NAMESPACE)
    encoded = secret["data"]["secret"]
    key = base64.b64decode(encoded).decode()
    text = json.dumps(pod)
    assert len(key) == 64 and key not in text and encoded not in text


FAKES = {
    "fake_jetstream.py": REPO / "tests" / "unit" / "producers" / "fake_jetstream.py",
    "fake_apis_pod.py": REPO / "tests" / "support" / "fake_apis_pod.py",
}
FAKE_X_TOKEN = "e2e-fake-x-token-0123456789"  # a Secret's value: must appear nowhere else


def start_fake_apis(kube: Kube) -> None:
    """X and Jetstream stand-ins as a pod + Service ``fake-apis`` (X :8080, Jetstream :8081)."""
    files = [f"--from-file={name}={path}" for name, path in FAKES.items()]
    cm = kube.kubectl(
        "-n",
        NAMESPACE,
        "create",
        "configmap",
        "fake-apis",
        *files,
        "--dry-run=client",
        "-o",
        "json",
    ).stdout
    kube.kubectl("apply", "-f", "-", stdin=cm)
    pod = restricted_pod("fake-apis", PRODUCER_IMAGE, ["python", "/fakes/fake_apis_pod.py"])
    pod["metadata"]["labels"]["app.kubernetes.io/name"] = "fake-apis"
    pod["spec"]["volumes"] = [{"name": "fakes", "configMap": {"name": "fake-apis"}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "fakes", "mountPath": "/fakes"}]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "fake-apis", "namespace": NAMESPACE},
        "spec": {
            "selector": {"app.kubernetes.io/name": "fake-apis"},
            "ports": [{"name": "x", "port": 8080}, {"name": "jetstream", "port": 8081}],
        },
    }
    kube.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod, service]}),
    )
    secret = kube.kubectl(
        "-n",
        NAMESPACE,
        "create",
        "secret",
        "generic",
        "x-api",
        f"--from-literal=token={FAKE_X_TOKEN}",
        "--dry-run=client",
        "-o",
        "json",
    ).stdout
    kube.kubectl("apply", "-f", "-", stdin=secret)
    kube.wait_until(
        "fake-apis Running",
        lambda: kube.get("-n", NAMESPACE, "pod", "fake-apis")["status"]["phase"] == "Running",
        timeout=120,
    )


def live_feed(coin: str, tweets: dict[str, Any]) -> dict[str, Any]:
    """A feed with live social sources (the fakes) and a price replay of another coin's file, whose
    every record the producer skips as the wrong coin (the skip panels get data too)."""
    doc = manifest("btc")
    doc["metadata"]["name"] = f"{coin}-live"
    doc["spec"].update(coin=coin, tweets=tweets, deletionPolicy="Delete")
    doc["spec"]["prices"]["pair"] = f"{coin.upper()}/USDT"
    return doc


def test_prometheus_scrapes_what_the_charts_monitors_select_and_every_panel_has_data(
    feeds: Feeds, tmp_path: Path
) -> None:
    from coinfeed.demo import monitoring, procs
    from coinfeed.demo.prometheus import start_prometheus
    from tests.support.monitors import prometheus_config, write_targets
    from tests.support.ports import free_port

    kube = feeds.kube
    start_fake_apis(kube)
    x_feed = live_feed(
        "ada",
        {
            "enabled": True,
            "source": "x-api",
            "keywords": ["$ADA"],
            "languages": ["en"],
            "pollIntervalSeconds": 5,
            "bearerTokenSecretRef": {"name": "x-api", "key": "token"},
        },
    )
    bsky_feed = live_feed(
        "dot",
        {
            "enabled": True,
            "source": "bluesky",
            "keywords": ["polkadot"],
            "languages": ["en"],
            "jetstreamEndpoints": ["ws://fake-apis:8081"],
        },
    )
    for doc in (x_feed, bsky_feed):
        kube.kubectl("-n", NAMESPACE, "apply", "-f", "-", stdin=json.dumps(doc))
    # The monitors exactly as the chart renders them with monitoring on.
    rendered = kube.helm(
        "template",
        "coinfeed",
        str(REPO / "charts" / "coinfeed"),
        "-n",
        NAMESPACE,
        "-f",
        str(REPO / "charts" / "coinfeed" / "values-local.yaml"),
        "--set",
        "monitoring.serviceMonitors.enabled=true",
        "--show-only",
        "templates/monitors.yaml",
    ).stdout
    monitors = [d for d in yaml.safe_load_all(rendered) if d]
    assert {m["kind"] for m in monitors} == {"PodMonitor", "ServiceMonitor"}
    sd_dir = tmp_path / "sd"

    def discover() -> None:
        write_targets(
            monitors,
            sd_dir,
            kube.get("pods", "-A")["items"],
            kube.get("services", "-A")["items"],
            kube.get("endpoints", "-A")["items"],
        )

    discover()
    config = prometheus_config(monitors, sd_dir, monitoring.rule_files())
    prom = start_prometheus(tmp_path, free_port(), config, name="prometheus-node")
    try:

        def wait_for(expr: str, timeout: float = 240) -> list[dict[str, Any]]:
            def check() -> list[dict[str, Any]]:
                discover()  # pods come and go: rediscover as the Prometheus Operator would
                return prom.query(expr)

            result: list[dict[str, Any]] = kube.wait_until(
                f"Prometheus data for {expr}", check, timeout=timeout, interval=3
            )
            return result

        # Every producer of the five feeds, the operator and the Pushgateway are scraped.
        wait_for('sum(up{job=~"PodMonitor/.*"} == 1) >= 8')  # 4 feeds x 2 producers
        wait_for('count(count by (job) (up{job=~"ServiceMonitor/.*"} == 1)) == 2')
        up = wait_for("sum by (job) (up == 1)")
        jobs = {r["metric"]["job"]: float(r["value"][1]) for r in up}
        assert len(jobs) == 3, jobs
        assert jobs[next(j for j in jobs if "producers" in j)] >= 8, jobs  # 4 feeds x 2
        # The hourly job's metrics: the earlier runs pushed them to the Pushgateway, which keeps
        # them; Prometheus reads them from there.
        wait_for('coinfeed_hourly_close_price{coin="btc"}')
        wait_for("coinfeed_producer_ratelimit_remaining")
        wait_for('coinfeed_producer_stream_connected{coin="dot"} == 1')
        wait_for('count_over_time(coinfeed_producer_records_total{coin="ada"}[1m]) >= 5')
        checked, empty = monitoring.empty_panels(prom.query)
        assert checked > 20
        assert not empty, "panels whose query returns no data:\n" + "\n".join(empty)
        # The feed's labels: producers by coin, operator readiness by feed.
        coins = {r["metric"]["coin"] for r in prom.query("coinfeed_producer_ready")}
        assert {"btc", "eth", "ada", "dot"} <= coins, coins
        feeds_ready = {
            r["metric"]["feed"]: r["value"][1] for r in prom.query("coinfeed_operator_feed_ready")
        }
        assert feeds_ready.get("btc-replay") == "1", feeds_ready
        # Every alert rule evaluates (no rule in error).
        rules = prom.rules()
        assert rules and all(r["health"] == "ok" for r in rules), [
            (r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"
        ]
        # The bearer token is in no metric label or value Prometheus holds.
        assert FAKE_X_TOKEN not in json.dumps(prom.metric_names())
        for name in ("coinfeed_producer_ratelimit_remaining", "coinfeed_producer_ready"):
            assert FAKE_X_TOKEN not in json.dumps(prom.query(name))
    finally:
        procs.stop("prometheus-node", tmp_path.resolve())
        for name in ("ada-live", "dot-live"):
            kube.kubectl(
                "-n",
                NAMESPACE,
                "delete",
                "coinfeed",
                name,
                "--ignore-not-found",
                "--timeout=180s",
                check=False,
            )
        kube.kubectl(
            "-n",
            NAMESPACE,
            "delete",
            "pod,service,configmap",
            "fake-apis",
            "--ignore-not-found",
            "--wait=false",
            check=False,
        )
    # Nor in the producer's pod spec (only a Secret reference) or logs.
    for pod in kube.pods(NAMESPACE, "coinfeed.io/feed=ada-live"):
        assert FAKE_X_TOKEN not in json.dumps(pod["spec"])


def test_operator_deleted_during_a_reconcile_leaves_no_duplicate_children(feeds: Feeds) -> None:
    kube = feeds.kube
    (operator,) = [
        p for p in kube.pods(NAMESPACE, "app.kubernetes.io/component=operator") if pod_ready(p)
    ]
    doc = manifest("btc")
    doc["metadata"]["name"] = "sol-replay"
    doc["spec"]["coin"] = "sol"
    doc["spec"]["prices"]["pair"] = "SOL/USDT"
    doc["spec"]["deletionPolicy"] = "Delete"
    kube.kubectl("-n", NAMESPACE, "apply", "-f", "-", stdin=json.dumps(doc))
    # Mid-reconcile: the operator has seen the feed (its finalizer) but not finished its children.
    kube.wait_until(
        "the operator to pick the feed up",
        lambda: feed(kube, "sol-replay")["metadata"].get("finalizers"),
        timeout=60,
        interval=0.2,
    )
    kube.kubectl("-n", NAMESPACE, "delete", "pod", operator["metadata"]["name"], "--wait=false")
    kube.wait_until(
        "sol-replay Ready under the new operator",
        lambda: condition(feed(kube, "sol-replay"), "Ready").get("status") == "True",
        timeout=300,
    )
    time.sleep(10)  # a second reconcile pass, had the first left anything half-done
    kids = children(kube, "sol-replay")
    assert kids["deployments"] == ["sol-replay-prices", "sol-replay-tweets"], kids
    assert kids["services"] == ["sol-replay-metrics"], kids
    assert len(cronjobs_for(kube, "sol")) == 1
    topics = coinfeed_topics(kube, "topics-sol")
    assert sorted(t for t in topics if ".sol." in t) == sorted(feed_topics("sol").values())
    owned = [
        p["metadata"]["name"]
        for p in kube.pods(NAMESPACE, "coinfeed.io/feed=sol-replay")
        if not p["metadata"].get("deletionTimestamp")
    ]
    assert len(owned) == 2, owned  # one pod per Deployment


def test_delete_policies_remove_or_keep_the_topics_and_always_the_children(feeds: Feeds) -> None:
    kube = feeds.kube
    policies = {
        name: feed(kube, name)["spec"]["deletionPolicy"]
        for name in ("btc-replay", "eth-replay", "sol-replay")
    }
    assert policies == {"btc-replay": "Retain", "eth-replay": "Delete", "sol-replay": "Delete"}
    for name in policies:
        kube.kubectl("-n", NAMESPACE, "delete", "coinfeed", name, "--timeout=180s")
        kids = kube.wait_until(
            f"{name}'s children gone",
            lambda name=name: not any(children(kube, name).values()) or None,
            timeout=180,
        )
        assert kids
    assert not [c for c in ("btc", "eth", "sol") if cronjobs_for(kube, c)]
    topics = coinfeed_topics(kube, "topics-after")
    assert sorted(feed_topics("btc").values()) == sorted(t for t in topics if ".btc." in t)
    assert not [t for t in topics if ".eth." in t or ".sol." in t], topics
