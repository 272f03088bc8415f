"""The local Kubernetes node: cluster-up (cold and warm), image builds, chart install to all-Ready,
and replay CoinFeeds from `kubectl apply` to Ready (1, 10, 50 feeds) with the pods' memory.

Baseline, measured in the same run: starting the local process cluster (`make kafka-up`: ZooKeeper
+ 3 brokers as plain JVMs). Every figure is reported as a ratio to it. "Cold" cluster-up starts
from an empty node state (containerd's image store included); "warm" reuses the image store.
Needs root and the packages `make cluster-up` names; it stops the node at the end.

The feeds' figures are set next to the process-only path measured in the same run: the operator
benchmark (benchmarks/bench_operator.py: the operator as a process against a real API server and
Kafka, Deployments marked available without pods) for the same feed counts, and the operator's
RSS there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from coinfeed.devcluster import ClusterSpec, LocalKafkaCluster
from coinfeed.devcluster.procs import free_ports
from localnode import node
from localnode.config import Layout

REPO = node.ROOT


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        argv, check=True, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True
    )
    return time.perf_counter() - t0


def kafka_up_seconds() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        ports = free_ports(7)
        spec = ClusterSpec(
            run_dir=Path(tmp),
            mode="zookeeper",
            broker_ports=tuple(ports[:3]),
            zookeeper_port=ports[3],
            controller_ports=tuple(ports[4:7]),
        )
        cluster = LocalKafkaCluster(spec, tie_to_parent=True)
        t0 = time.perf_counter()
        cluster.up(timeout=240)
        took = time.perf_counter() - t0
        cluster.down(purge=True)
        return took


def feed_docs(round_id: str, n: int) -> str:
    """``n`` replay feeds (1 partition, RF 1: the node's 2 cores measure pods, not replication).
    Each replays the BTC sample under its own coin; the producers skip those records (wrong
    coin), which is work they do for real without filling the brokers."""
    example = yaml.safe_load(
        (REPO / "manifests" / "examples" / "coinfeed-btc-replay.yaml").read_text()
    )
    docs = []
    for i in range(n):
        doc = json.loads(json.dumps(example))
        doc["metadata"]["name"] = f"bench{round_id}-{i}"
        doc["spec"]["coin"] = f"bn{round_id}x{i}"
        doc["spec"]["topics"] = {"partitions": 1, "replicationFactor": 1, "retentionHours": 1}
        doc["spec"]["aggregation"]["schedule"] = "0 0 30 2 *"  # never: no job during the bench
        doc["spec"]["deletionPolicy"] = "Delete"
        docs.append(doc)
    return yaml.safe_dump_all(docs)


def rss_mb(match: str) -> list[float]:
    """VmRSS of every process on this machine whose command line contains ``match``."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if match not in cmdline:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return out


def feeds_on_node(kubeconfig: Path, sizes: list[int]) -> list[dict[str, float]]:
    from localnode.node import envtest_dir

    kubectl = [str(envtest_dir() / "kubectl"), "--kubeconfig", str(kubeconfig), "-n", "bench"]
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        subprocess.run([*kubectl, "apply", "-f", "-"], input=feed_docs(str(n), n), text=True,
                       check=True, capture_output=True)  # fmt: skip
        deadline = time.monotonic() + 300 + 10 * n
        ready = 0
        while time.monotonic() < deadline:
            listed = json.loads(subprocess.run([*kubectl, "get", "coinfeeds", "-o", "json"],
                                               check=True, capture_output=True, text=True).stdout)  # fmt: skip
            ready = sum(
                1
                for f in listed["items"]
                if f["metadata"]["name"].startswith(f"bench{n}-")
                and any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in f.get("status", {}).get("conditions", [])
                )
            )
            if ready == n:
                break
            time.sleep(1)
        took = time.perf_counter() - t0
        producers = rss_mb("coinfeed producer")
        operator = rss_mb("coinfeed operator")
        rows.append(
            {
                "feeds": n,
                "ready": ready,
                "all_ready_s": round(took, 2),
                "producer_rss_mb_mean": round(sum(producers) / len(producers), 1)
                if producers
                else 0,
                "producer_pods": len(producers),
                "operator_rss_mb": round(max(operator), 1) if operator else 0,
            }
        )
        subprocess.run([*kubectl, "delete", "coinfeeds", "--all", "--timeout=600s"], check=True,
                       capture_output=True)  # fmt: skip
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_node", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the cold cluster-up")
    parser.add_argument(
        "--sizes", help="feed counts, comma-separated (default 1,10,50; with --quick 1,10)"
    )
    args = parser.parse_args(argv)
    sizes = [1, 10] if args.quick else [1, 10, 50]
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]
    feed_rows: list[dict[str, float]] = []
    problems = node.missing_prerequisites()
    if problems:
        print("bench_node: cannot run here:\n  " + "\n  ".join(problems))
        return 1
    subprocess.run(
        ["bash", "scripts/base-images.sh", "node"], check=True, cwd=REPO, capture_output=True
    )
    layout = Layout(Path(tempfile.mkdtemp(prefix="bench-node-")))
    figures: dict[str, float] = {"baseline_kafka_up_s": kafka_up_seconds()}
    base = figures["baseline_kafka_up_s"]
    try:
        if not args.quick:
            shutil.rmtree(layout.containerd_root, ignore_errors=True)
            t0 = time.perf_counter()
            node.up(layout)
            figures["cluster_up_cold_s"] = time.perf_counter() - t0
            node.down(layout)
        t0 = time.perf_counter()
        node.up(layout)
        figures["cluster_up_warm_s"] = time.perf_counter() - t0
        # Image builds: each of the three coinfeed images from a warm layer cache after a change
        # to the package (the usual edit-build loop) is what a developer waits for.
        figures["images_build_s"] = timed(["bash", "scripts/images.sh"])
        t0 = time.perf_counter()
        deployed = subprocess.run(
            ["bash", "scripts/deploy-local.sh"],
            check=False,
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "CLUSTER_RUN_DIR": str(layout.run_dir), "NAMESPACE": "bench"},
        )
        if deployed.returncode != 0:
            print(
                f"bench_node: deploy-local failed:\n{deployed.stdout[-3000:]}{deployed.stderr[-3000:]}"
            )
            return 1
        figures["deploy_to_all_ready_s"] = time.perf_counter() - t0
        feed_rows = feeds_on_node(layout.kubeconfig, sizes)
    finally:
        node.down(layout)
        shutil.rmtree(layout.run_dir, ignore_errors=True)
    print(f"baseline: make kafka-up (ZooKeeper + 3 broker JVMs) {base:.1f} s")
    for key, value in figures.items():
        if key != "baseline_kafka_up_s":
            print(f"  {key:28s} {value:7.1f} s   ratio {value / base:5.2f}x baseline")
    # The process-only path, same run, same feed counts.
    with tempfile.TemporaryDirectory() as tmp:
        from benchmarks import bench_operator

        bench_operator.main(
            ["--sizes", ",".join(map(str, sizes)), "--no-jobs", "--out", f"{tmp}/op.json"]
        )
        process = {r["feeds"]: r for r in json.loads(Path(f"{tmp}/op.json").read_text())["results"]}
    for row in feed_rows:
        base_row = process.get(int(row["feeds"]), {})
        base_s = base_row.get("all_ready_s") or float("nan")
        base_rss = base_row.get("operator_peak_rss_mb") or float("nan")
        row["process_path_all_ready_s"] = base_s
        row["process_path_operator_rss_mb"] = base_rss
        print(
            f"  {int(row['feeds']):3d} replay feeds on the node: {int(row['ready'])} Ready in "
            f"{row['all_ready_s']:.1f} s = {row['all_ready_s'] / base_s:.1f}x the process path's "
            f"{base_s:.1f} s; producer pod RSS {row['producer_rss_mb_mean']} MB each "
            f"({int(row['producer_pods'])} pods); operator pod RSS {row['operator_rss_mb']} MB = "
            f"{row['operator_rss_mb'] / base_rss:.2f}x the operator process's {base_rss} MB"
        )
    out = REPO / "out" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "node.json").write_text(json.dumps({**figures, "feeds": feed_rows}, indent=2))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
