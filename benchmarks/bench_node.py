"""The local Kubernetes node: cluster-up (cold and warm), image builds, chart install to all-Ready.

Baseline, measured in the same run: starting the local process cluster (`make kafka-up`: ZooKeeper
+ 3 brokers as plain JVMs). Every figure is reported as a ratio to it. "Cold" cluster-up starts
from an empty node state (containerd's image store included); "warm" reuses the image store.
Needs root and the packages `make cluster-up` names; it stops the node at the end.
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_node", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the cold cluster-up")
    args = parser.parse_args(argv)
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
        subprocess.run(
            ["bash", "scripts/deploy-local.sh"],
            check=True,
            cwd=REPO,
            capture_output=True,
            env={**os.environ, "CLUSTER_RUN_DIR": str(layout.run_dir), "NAMESPACE": "bench"},
        )
        figures["deploy_to_all_ready_s"] = time.perf_counter() - t0
    finally:
        node.down(layout)
        shutil.rmtree(layout.run_dir, ignore_errors=True)
    print(f"baseline: make kafka-up (ZooKeeper + 3 broker JVMs) {base:.1f} s")
    for key, value in figures.items():
        if key != "baseline_kafka_up_s":
            print(f"  {key:28s} {value:7.1f} s   ratio {value / base:5.2f}x baseline")
    out = REPO / "out" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "node.json").write_text(json.dumps(figures, indent=2))
    return 0
