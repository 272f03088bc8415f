"""Operator throughput: apply 1, 10 and 100 CoinFeeds at once against a real kube-apiserver and a
real 3-broker Kafka; time until every feed is Ready (p50/p95 per feed) and the operator's peak RSS.

Shared hourly jobs: for 100 feeds on one schedule, Spark applications per hour (shared CronJobs,
counted on the API server after the run and planned by ``groups.plan_groups``) and JVM-seconds per
hour, against one application per feed (the baseline, ``maxCoinsPerJob=1``). JVM-seconds come from
real runs of the hourly job in the same run (local mode: one JVM per application, so a run's wall
time is its JVM-seconds): one over 1 coin, one over N coins with the same small hour each, and the
1-coin run again; an added coin costs the slope between them and larger applications are
extrapolated on that line (see ``shared_job_figures``).

Baseline, same run and same API server: the time kubectl takes to create as many ConfigMaps
(``ready_s / baseline_s`` is the reported ratio). Producer availability is simulated the envtest
way: a helper patches each Deployment's status as soon as it appears (no kubelet here). The feeds
use 1 partition and replication factor 1 so the shared 2-core machine measures the operator, not
Kafka replication.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from coinfeed.devcluster import ClusterSpec, LocalKafkaCluster
from coinfeed.devcluster.procs import free_ports
from coinfeed.versions import REPO_ROOT
from localnode import operator_harness as harness
from localnode.apiserver import KubeAPIServer

NAMESPACE = "bench"


def feed_manifests(round_id: str, n: int) -> str:
    docs = []
    for i in range(n):
        docs.append(
            {
                "apiVersion": "coinfeed.io/v1alpha1",
                "kind": "CoinFeed",
                "metadata": {"name": f"f{round_id}-{i}"},
                "spec": {
                    "coin": f"b{round_id}x{i}",
                    "prices": {"source": "binance", "pair": "BTC/USDT"},
                    "topics": {"partitions": 1, "replicationFactor": 1},
                },
            }
        )
    return yaml.safe_dump_all(docs)


def configmap_manifests(round_id: str, n: int) -> str:
    return yaml.safe_dump_all(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"c{round_id}-{i}"},
                "data": {"i": str(i)},
            }
            for i in range(n)
        ]
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Kubelet(threading.Thread):
    """Marks every new producer Deployment available, as a kubelet + controller would."""

    def __init__(self, api: Any) -> None:
        super().__init__(daemon=True)
        self.apps = api
        self.stop = threading.Event()
        self.done: set[str] = set()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for dep in self.apps.list_namespaced_deployment(NAMESPACE).items:
                name = dep.metadata.name
                if name in self.done:
                    continue
                body = {
                    "status": {
                        "observedGeneration": dep.metadata.generation,
                        "replicas": 1,
                        "updatedReplicas": 1,
                        "readyReplicas": 1,
                        "availableReplicas": 1,
                    }
                }
                self.apps.patch_namespaced_deployment_status(name, NAMESPACE, body)
                self.done.add(name)


def ready_times(custom: Any, names: set[str], started: float, timeout: float) -> dict[str, float]:
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(names) and time.monotonic() < deadline:
        items = custom.list_namespaced_custom_object(
            "coinfeed.io", "v1alpha1", NAMESPACE, "coinfeeds"
        )["items"]
        now = time.monotonic() - started
        for f in items:
            name = f["metadata"]["name"]
            if name in names and name not in seen:
                c = harness.condition(f, "Ready")
                if c and c["status"] == "True":
                    seen[name] = now
        time.sleep(0.1)
    return seen


def run_hourly(
    bootstrap: str, coins: list[str], lake: Path, no_batch: bool = False
) -> tuple[float, list[float]]:
    """One real application of the hourly job (local mode: one JVM) over ``coins`` for the
    benchmark hour: its wall seconds and each coin's own seconds from the job's per-coin report
    (in the order run; in a batched pass each coin's equal share of the pass). ``no_batch``: the
    job's ``--no-batch``, one Kafka read and one pass per coin."""
    from benchmarks.bench_spark import HOUR, NOW

    hour = f"{HOUR:%Y-%m-%dT%H}"
    cmd = [
        *(sys.executable, "-m", "coinfeed", "hourly", "--coin", ",".join(coins)),
        *("--bootstrap", bootstrap, "--lake", str(lake), "--from", hour, "--to", hour),
        *("--now", NOW.isoformat(), "--master", "local[2]", "--shuffle-partitions", "4"),
        *(["--no-batch"] if no_batch else []),
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"hourly job failed: {done.stderr[-3000:]}")
    reports = [json.loads(ln) for ln in done.stdout.splitlines() if ln.startswith('{"')]
    return wall, [float(r["duration_seconds"]) for r in reports if r.get("summary") == "hourly"]


def application_seconds(one_coin_s: float, added_coin_s: float, coins: int) -> float:
    """JVM-seconds of one application over ``coins`` coins: the measured 1-coin application plus
    the measured cost of each further coin (a straight line through the two measured runs)."""
    return one_coin_s + (coins - 1) * added_coin_s


def shared_job_figures(
    bootstrap: str,
    work: Path,
    job_coins: int,
    tweets: int,
    ticks: int,
    feeds: int = 100,
    no_batch: bool = False,
) -> dict[str, Any]:
    """Applications and JVM-seconds per hour for ``feeds`` feeds on one schedule, shared jobs vs
    one application per feed, from real job runs in this run: 1 coin, ``job_coins`` coins, then
    1 coin again (the 1-coin figure is the mean of the two, so load that changes during the run
    on this shared machine weighs on both sides alike).

    Each added coin costs ``(wall(N) - wall(1)) / (N - 1)``, the slope between the two measured
    application sizes; an application of n coins is modelled as ``wall(1) + (n - 1) x slope``
    (:func:`application_seconds`) and one application per feed as ``wall(1)`` each. The job's own
    per-coin report is not the marginal cost: in a batched pass every coin reports an equal share
    of the pass, fixed costs included, so it is listed for information only. The straight line
    is an extrapolation beyond N coins (per-pass costs that grow faster than the coins would not
    show); ``--job-coins`` measures at a larger N."""
    from benchmarks.bench_spark import generate, produce
    from coinfeed.operator.groups import plan_groups
    from coinfeed.operator.settings import OperatorSettings

    coins = [f"jvm{i}" for i in range(job_coins)]
    for i, coin in enumerate(coins):
        produce(bootstrap, coin, *generate(coin, tweets, ticks, seed=i))
    first_s, _ = run_hourly(bootstrap, coins[:1], work / "lake-1a")
    many_s, per_coin = run_hourly(bootstrap, coins, work / "lake-n", no_batch)
    last_s, _ = run_hourly(bootstrap, coins[:1], work / "lake-1b")
    one_s = (first_s + last_s) / 2
    added_coin_s = (many_s - one_s) / (job_coins - 1) if job_coins > 1 else 0.0

    prices = {"source": "binance", "pair": "X/USDT"}
    docs: list[dict[str, Any]] = [
        {
            "metadata": {"name": f"f{i}", "namespace": "n", "uid": str(i)},
            "spec": {"coin": f"c{i}", "prices": prices},
        }
        for i in range(feeds)
    ]
    shared = plan_groups(docs, OperatorSettings().hourly_max_coins_per_job)
    baseline = plan_groups(docs, 1)
    baseline_jvm_s = len(baseline) * one_s
    shared_jvm_s = sum(application_seconds(one_s, added_coin_s, len(g.members)) for g in shared)
    return {
        "feeds": feeds,
        "job_coins_measured": job_coins,
        "job_batched": not no_batch,
        "tweets_per_coin_hour": tweets,
        "ticks_per_coin_hour": ticks,
        "run_1_coin_s": round(one_s, 2),
        "run_1_coin_before_after_s": [round(first_s, 2), round(last_s, 2)],
        "run_n_coins_s": round(many_s, 2),
        "run_n_coins_per_coin_report_s": [round(d, 2) for d in per_coin],
        "added_coin_s": round(added_coin_s, 2),
        "n_coins_over_1_coin": round(many_s / one_s, 2) if one_s else None,
        "applications_per_hour_shared": len(shared),
        "applications_per_hour_baseline": len(baseline),
        "jvm_s_per_hour_shared": round(shared_jvm_s, 1),
        "jvm_s_per_hour_baseline": round(baseline_jvm_s, 1),
        "ratio_jvm_s_baseline_to_shared": round(baseline_jvm_s / shared_jvm_s, 1)
        if shared_jvm_s > 0
        else None,
    }


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench_operator", description=__doc__)
    p.add_argument("--quick", action="store_true", help="1 and 10 feeds only")
    p.add_argument("--sizes", default="", help="comma-separated feed counts (overrides --quick)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "bench" / "operator.json")
    p.add_argument(
        "--job-coins", type=int, default=4, help="coins of the N-coin job run (default 4)"
    )
    p.add_argument("--job-tweets", type=int, default=2_000, help="tweets per coin and hour")
    p.add_argument(
        "--no-jobs", action="store_true", help="skip the real hourly job runs (JVM-seconds)"
    )
    p.add_argument(
        "--jobs-only", action="store_true", help="only the hourly job runs (no operator rounds)"
    )
    p.add_argument(
        "--job-no-batch",
        action="store_true",
        help="run the N-coin job with --no-batch (one pass per coin, as before batching)",
    )
    args = p.parse_args(argv)
    sizes = [] if args.jobs_only else [1, 10] if args.quick else [1, 10, 100]
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]

    from kubernetes import client, config

    work = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    ports = free_ports(7)
    kafka = LocalKafkaCluster(
        ClusterSpec(
            run_dir=work / "kafka",
            broker_ports=tuple(ports[:3]),
            zookeeper_port=ports[3],
            controller_ports=tuple(ports[4:7]),
        ),
        tie_to_parent=True,
    )
    results: list[dict[str, Any]] = []
    shared: dict[str, Any] = {}
    op: harness.OperatorProcess | None = None
    kubelet: Kubelet | None = None
    try:
        kafka.up(timeout=240)
        if sizes:  # --jobs-only: no API server, no operator
            with KubeAPIServer(work / "apiserver") as api:
                admin = api.admin_kubeconfig
                harness.install_crd(admin)
                harness.kubectl(admin, "create", "namespace", NAMESPACE)
                harness.bind_operator_identity(admin, NAMESPACE)
                metrics_port, liveness_port = free_ports(2)
                op = harness.OperatorProcess(
                    kubeconfig=api.kubeconfig_for_service_account(NAMESPACE, harness.SA_NAME),
                    namespaces=[NAMESPACE],
                    bootstrap=kafka.bootstrap,
                    log_file=work / "operator.log",
                    metrics_port=metrics_port,
                    liveness_port=liveness_port,
                    drift_interval=60.0,
                ).start()
                api_client = config.new_client_from_config(str(admin))
                custom = client.CustomObjectsApi(api_client)
                kubelet = Kubelet(client.AppsV1Api(api_client))
                kubelet.start()
                harness.wait_for(
                    "CoinFeed discovery",
                    lambda: (
                        harness.kubectl(admin, "get", "cf", "-n", NAMESPACE, check=False).returncode
                        == 0
                    ),
                )
                for n in sizes:
                    rid = f"{n}"
                    t0 = time.monotonic()
                    harness.kubectl(
                        admin,
                        "apply",
                        "-n",
                        NAMESPACE,
                        "-f",
                        "-",
                        input=configmap_manifests(rid, n),
                    )
                    baseline = time.monotonic() - t0

                    names = {f"f{rid}-{i}" for i in range(n)}
                    t0 = time.monotonic()
                    harness.kubectl(
                        admin, "apply", "-n", NAMESPACE, "-f", "-", input=feed_manifests(rid, n)
                    )
                    seen = ready_times(custom, names, t0, timeout=120 + 2 * n)
                    total = max(seen.values()) if len(seen) == n else float("nan")
                    per_feed = list(seen.values())
                    row = {
                        "feeds": n,
                        "ready": len(seen),
                        "all_ready_s": round(total, 3),
                        "p50_s": round(percentile(per_feed, 0.5), 3) if per_feed else None,
                        "p95_s": round(percentile(per_feed, 0.95), 3) if per_feed else None,
                        "baseline_configmaps_s": round(baseline, 3),
                        "ratio_all_ready_to_baseline": round(total / baseline, 1)
                        if baseline
                        else None,
                        "operator_peak_rss_mb": round(peak_rss_mb(op.proc.pid), 1)
                        if op.proc
                        else None,
                    }
                    results.append(row)
                    print(
                        f"{n:>4} feeds: {row['ready']}/{n} Ready in {total:.2f}s "
                        f"(p50 {row['p50_s']}s, p95 {row['p95_s']}s) = {row['ratio_all_ready_to_baseline']}x "
                        f"the {baseline:.2f}s to create {n} ConfigMaps; operator peak RSS "
                        f"{row['operator_peak_rss_mb']} MB",
                        flush=True,
                    )
                # Every feed above follows the default schedule: they share CronJobs.
                crons = client.BatchV1Api(api_client).list_namespaced_cron_job(
                    NAMESPACE, label_selector="coinfeed.io/hourly-group"
                )
                shared["live_feeds"] = sum(sizes)
                shared["live_shared_cronjobs"] = len(crons.items)
                kubelet.stop.set()  # before the API server goes
                kubelet.join(timeout=5)
        if op is not None:
            op.stop()  # the job runs below need the two cores more than it does
        if not args.no_jobs:
            shared.update(
                shared_job_figures(
                    kafka.bootstrap,
                    work,
                    args.job_coins,
                    args.job_tweets,
                    ticks=360,
                    no_batch=args.job_no_batch,
                )
            )
            print(
                f"{shared['feeds']} feeds on one schedule: {shared['applications_per_hour_shared']}"
                f" Spark application(s)/hour vs {shared['applications_per_hour_baseline']} "
                f"(one per feed); JVM-s/hour {shared['jvm_s_per_hour_shared']} vs "
                f"{shared['jvm_s_per_hour_baseline']} = "
                f"{shared['ratio_jvm_s_baseline_to_shared']}x fewer (runs: 1 coin "
                f"{shared['run_1_coin_s']}s (mean of before/after), {args.job_coins} coins "
                f"{shared['run_n_coins_s']}s = x{shared['n_coins_over_1_coin']}; each added coin "
                f"{shared['added_coin_s']}s); live: "
                f"{shared.get('live_shared_cronjobs', '-')} shared CronJob(s) for "
                f"{shared.get('live_feeds', '-')} feeds",
                flush=True,
            )
    finally:
        if kubelet is not None:
            kubelet.stop.set()
        if op is not None:
            op.stop()
        kafka.down()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"benchmark": "operator", "results": results, "shared_hourly": shared}, indent=2)
        + "\n"
    )
    print(f"wrote {args.out}")
    ran = bool(results or shared)
    return 0 if ran and all(r["ready"] == r["feeds"] for r in results) else 1


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
