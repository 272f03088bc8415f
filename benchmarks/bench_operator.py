"""Operator throughput: apply 1, 10 and 100 CoinFeeds at once against a real kube-apiserver and a
real 3-broker Kafka; time until every feed is Ready (p50/p95 per feed) and the operator's peak RSS.

Baseline, same run and same API server: the time kubectl takes to create as many ConfigMaps
(``ready_s / baseline_s`` is the reported ratio). Producer availability is simulated the envtest
way: a helper patches each Deployment's status as soon as it appears (no kubelet here). The feeds
use 1 partition and replication factor 1 so the shared 2-core machine measures the operator, not
Kafka replication.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from coinfeed.devcluster import ClusterSpec, LocalKafkaCluster
from coinfeed.devcluster.apiserver import KubeAPIServer
from coinfeed.devcluster.procs import free_ports
from coinfeed.operator import harness
from coinfeed.versions import REPO_ROOT

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
    args = p.parse_args(argv)
    sizes = [1, 10] if args.quick else [1, 10, 100]
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
    op: harness.OperatorProcess | None = None
    kubelet: Kubelet | None = None
    try:
        kafka.up(timeout=240)
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
                    admin, "apply", "-n", NAMESPACE, "-f", "-", input=configmap_manifests(rid, n)
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
                    "ratio_all_ready_to_baseline": round(total / baseline, 1) if baseline else None,
                    "operator_peak_rss_mb": round(peak_rss_mb(op.proc.pid), 1) if op.proc else None,
                }
                results.append(row)
                print(
                    f"{n:>4} feeds: {row['ready']}/{n} Ready in {total:.2f}s "
                    f"(p50 {row['p50_s']}s, p95 {row['p95_s']}s) = {row['ratio_all_ready_to_baseline']}x "
                    f"the {baseline:.2f}s to create {n} ConfigMaps; operator peak RSS "
                    f"{row['operator_peak_rss_mb']} MB",
                    flush=True,
                )
    finally:
        if kubelet is not None:
            kubelet.stop.set()
        if op is not None:
            op.stop()
        kafka.down()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "operator", "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if results and all(r["ready"] == r["feeds"] for r in results) else 1


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
