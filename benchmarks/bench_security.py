"""Cost of KAFKA_SECURITY=sasl_ssl (TLS + SCRAM-SHA-512 + ACLs), as ratios to plaintext measured in
the same run on this machine:

- producer throughput: the tweet producer's send path (KafkaSink, project defaults: acks=all,
  idempotent, lz4) into a fresh local 3-broker cluster of each kind, the secured one as a
  producer user with only its coin's ACLs;
- hourly-job time: the demo pipeline (replay producers -> Kafka -> hourly Spark job, 2 hours of
  the sample) in each mode; the job's own duration_seconds summed over coins.

Clusters run one after the other (never both at once), plaintext first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_producer import _rates, load_tweets, measure
from coinfeed.devcluster.procs import free_ports
from coinfeed.kafka import make_producer
from coinfeed.kafka_acls import producer_grants
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.sink import KafkaSink
from coinfeed.topics import topic_name

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench" / "security.json"
MODES = ("plaintext", "sasl_ssl")


def producer_rate(mode: str, n: int, work: Path) -> dict[str, float]:
    from coinfeed.devcluster import ClusterSpec, LocalKafkaCluster

    ports = free_ports(7)
    spec = ClusterSpec(
        run_dir=work / f"kafka-{mode}",
        broker_ports=tuple(ports[:3]),
        zookeeper_port=ports[3],
        controller_ports=tuple(ports[4:7]),
        security="sasl_ssl" if mode == "sasl_ssl" else "plaintext",
    )
    cluster = LocalKafkaCluster(spec, tie_to_parent=True)
    cluster.up(timeout=300)
    try:
        coin = "bsec" + str(int(time.time()))[-5:]
        topic = topic_name(coin, "tweets")
        cluster.admin().create_topics(
            {topic: {"num_partitions": 3, "replication_factor": 3}}, wait_for_metadata=True
        )
        cluster.wait_in_sync(topic, timeout=120)
        security = (
            cluster.add_user(f"coinfeed-producer-{coin}", producer_grants(coin))
            if spec.tls
            else cluster.client_security("unused")
        )
        tweets = load_tweets(n, coin)
        sink = KafkaSink(
            make_producer(cluster.bootstrap, security=security),
            ProducerMetrics(coin, "tweets", "replay"),
            coin,
            "tweets",
        )
        sink.send(tweets[0])  # connections, TLS and SASL handshakes before the clock starts
        sink.flush(60)

        def run() -> None:
            for t in tweets:
                sink.send(t)
            if not sink.flush(300):
                raise RuntimeError(f"{mode}: producer did not flush within 300 s")

        result = measure(run)
        sink.close(30)
        result["acked"] = float(sink.acked - 1)
        return _rates(n, result)
    finally:
        cluster.down()


def hourly_seconds(mode: str, work: Path) -> float:
    """The demo in ``mode``; the hourly job's own duration_seconds, summed over coins."""
    run_dir = work / f"demo-{mode}"
    argv = [
        sys.executable, "-m", "coinfeed", "demo", "run", "--run-dir", str(run_dir),
        "--out", str(work / f"out-{mode}"), "--hours", "2", "--speed", "0", "--free-ports",
        "--kafka-security", mode,
    ]  # fmt: skip
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    finally:
        subprocess.run(
            [sys.executable, "-m", "coinfeed", "demo", "down", "--run-dir", str(run_dir)],
            capture_output=True, timeout=300, cwd=ROOT,
        )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"demo ({mode}) failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    total = 0.0
    for line in (run_dir / "logs" / "hourly.log").read_text(errors="replace").splitlines():
        if line.startswith("{") and '"duration_seconds"' in line:
            total += float(json.loads(line)["duration_seconds"])
    if total <= 0:
        raise RuntimeError(f"no duration_seconds in {run_dir / 'logs' / 'hourly.log'}")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_security", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 records; no hourly job")
    parser.add_argument("--records", type=int, help="tweets per mode")
    parser.add_argument("--no-hourly", action="store_true", help="skip the hourly-job figure")
    args = parser.parse_args(argv)
    n = args.records or (10_000 if args.quick else 100_000)
    report: dict[str, Any] = {"records": n, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-security-") as tmp:
        work = Path(tmp)
        rates = {m: producer_rate(m, n, work) for m in MODES}
        report["producer"] = rates
        report["producer_ratio_wall_sasl_ssl_to_plaintext"] = (
            rates["sasl_ssl"]["records_per_s"] / rates["plaintext"]["records_per_s"]
        )
        report["producer_ratio_per_core_sasl_ssl_to_plaintext"] = (
            rates["sasl_ssl"]["records_per_cpu_s"] / rates["plaintext"]["records_per_cpu_s"]
        )
        if not (args.quick or args.no_hourly):
            secs = {m: hourly_seconds(m, work) for m in MODES}
            report["hourly_seconds"] = secs
            report["hourly_ratio_sasl_ssl_to_plaintext"] = secs["sasl_ssl"] / secs["plaintext"]
    report["shared_machine_note"] = "2 cores shared with other work; compare ratios, not absolutes"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"tweets: {n} per mode, acks=all, idempotent, lz4, 3 brokers")
    for m in MODES:
        r = report["producer"][m]
        print(
            f"  producer {m:<10} {r['records_per_s']:>10,.0f} rec/s wall"
            f"  {r['records_per_cpu_s']:>10,.0f} rec/s per core"
        )
    print(
        "  producer sasl_ssl / plaintext: "
        f"{report['producer_ratio_wall_sasl_ssl_to_plaintext']:.2f}x wall, "
        f"{report['producer_ratio_per_core_sasl_ssl_to_plaintext']:.2f}x per core"
    )
    if "hourly_seconds" in report:
        s = report["hourly_seconds"]
        print(
            f"  hourly job: plaintext {s['plaintext']:.1f}s, sasl_ssl {s['sasl_ssl']:.1f}s: "
            f"{report['hourly_ratio_sasl_ssl_to_plaintext']:.2f}x time"
        )
    print(f"  wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
