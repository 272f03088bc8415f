"""Replay throughput of the tweet producer's send path: kafka-python (what the producer uses,
through coinfeed.producers.sink.KafkaSink with the project's producer defaults) against the same
records sent through confluent-kafka (librdkafka) with the same durability settings, in the same
run, to the same real 3-broker cluster. Figures: records/s of wall time, records/s per CPU core
(process CPU time, which includes each client's I/O threads) and the ratio between the clients.

Uses the cluster named by $COINFEED_KAFKA_BOOTSTRAP, or starts a local one (coinfeed.devcluster).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coinfeed.devcluster.procs import free_ports
from coinfeed.kafka import BOOTSTRAP_ENV, make_admin, make_producer
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.sink import KafkaSink, record_headers, record_key
from coinfeed.schemas import Tweet, decode_record
from coinfeed.topics import topic_name

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "btc-tweets.jsonl.gz"
OUT = ROOT / "out" / "bench" / "producer.json"


def load_tweets(n: int, coin: str) -> list[Tweet]:
    """``n`` ~400-byte tweets from the shipped sample (cycled, with fresh ids when repeated)."""
    base = [
        decode_record(Tweet, line)
        for line in gzip.decompress(SAMPLE.read_bytes()).splitlines()
        if line.strip()
    ]
    out = []
    for i in range(n):
        t = base[i % len(base)]
        update: dict[str, Any] = {"coin": coin}
        if i >= len(base):
            update["id"] = str(int(t.id) + i)
        out.append(t.model_copy(update=update))
    return out


def start_cluster(run_dir: Path) -> Any:
    from coinfeed.devcluster import ClusterSpec, LocalKafkaCluster

    ports = free_ports(7)
    spec = ClusterSpec(
        run_dir=run_dir,
        broker_ports=tuple(ports[:3]),
        zookeeper_port=ports[3],
        controller_ports=tuple(ports[4:7]),
    )
    cluster = LocalKafkaCluster(spec, tie_to_parent=True)
    cluster.up(timeout=240)
    return cluster


def create_topic(bootstrap: str, topic: str) -> None:
    from kafka.admin import NewTopic

    admin: Any = make_admin(bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 3, 3, topic_configs={"min.insync.replicas": "2"})])
    finally:
        admin.close()


def measure(run: Callable[[], None]) -> dict[str, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    run()
    return {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0}


def kafka_python_run(bootstrap: str, coin: str, tweets: list[Tweet]) -> dict[str, float]:
    producer = make_producer(bootstrap)
    sink = KafkaSink(producer, ProducerMetrics(coin, "tweets", "replay"), coin, "tweets")
    sink.send(tweets[0])  # connections and metadata before the clock starts
    sink.flush(60)

    def run() -> None:
        for t in tweets:
            sink.send(t)
        if not sink.flush(300):
            raise RuntimeError("kafka-python did not flush within 300 s")

    result = measure(run)
    sink.close(30)
    result["acked"] = float(sink.acked - 1)
    result["dropped"] = float(sink.dropped)
    return result


def confluent_run(bootstrap: str, coin: str, tweets: list[Tweet]) -> dict[str, float]:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "lz4",
            "linger.ms": 20,
            "batch.size": 256 * 1024,
            "max.in.flight.requests.per.connection": 5,
        }
    )
    topic = topic_name(coin, "tweets")
    acked = [0]
    errors = [0]
    lock = threading.Lock()

    def on_delivery(err: Any, _msg: Any) -> None:
        with lock:
            if err is None:
                acked[0] += 1
            else:
                errors[0] += 1

    def send(t: Tweet) -> None:
        # The same per-record work as the sink: serialise, key, headers, hand over.
        headers: list[tuple[str, str | bytes | None]] = [*record_headers(t)]
        while True:
            try:
                producer.produce(
                    topic,
                    value=t.to_json(),
                    key=record_key(t),
                    headers=headers,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)

    send(tweets[0])
    producer.flush(60)
    acked[0] = 0

    def run() -> None:
        for t in tweets:
            send(t)
        if producer.flush(300) != 0:
            raise RuntimeError("confluent-kafka did not flush within 300 s")

    result = measure(run)
    result["acked"] = float(acked[0])
    result["dropped"] = float(errors[0])
    return result


def serialise_only(tweets: list[Tweet]) -> dict[str, float]:
    """The part of the send path that is ours (JSON, key, headers), for context."""

    def run() -> None:
        for t in tweets:
            t.to_json()
            record_key(t)
            record_headers(t)

    return measure(run)


def _rates(n: int, r: dict[str, float]) -> dict[str, float]:
    return {
        **r,
        "records_per_s": n / r["wall_s"],
        "records_per_cpu_s": n / r["cpu_s"] if r["cpu_s"] > 0 else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_producer", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 records instead of 200,000")
    parser.add_argument("--records", type=int, help="number of tweets per client")
    args = parser.parse_args(argv)
    n = args.records or (20_000 if args.quick else 200_000)

    cluster = None
    tmp = None
    bootstrap = os.environ.get(BOOTSTRAP_ENV)
    if not bootstrap:
        tmp = tempfile.TemporaryDirectory(prefix="bench-kafka-")
        print("starting a local 3-broker cluster ...", flush=True)
        cluster = start_cluster(Path(tmp.name))
        bootstrap = str(cluster.bootstrap)
    try:
        stamp = str(int(time.time()))[-6:]
        coins = {"kafka-python": f"bkp{stamp}", "confluent-kafka": f"bck{stamp}"}
        for coin in coins.values():
            create_topic(bootstrap, topic_name(coin, "tweets"))
        tweets = {name: load_tweets(n, coin) for name, coin in coins.items()}
        size = sum(len(t.to_json()) for t in tweets["kafka-python"]) / n
        ser = _rates(n, serialise_only(tweets["kafka-python"]))
        # confluent first: any warm-up advantage of the cluster goes to the baseline.
        base = _rates(
            n, confluent_run(bootstrap, coins["confluent-kafka"], tweets["confluent-kafka"])
        )
        ours = _rates(n, kafka_python_run(bootstrap, coins["kafka-python"], tweets["kafka-python"]))
    finally:
        if cluster is not None:
            cluster.down()
        if tmp is not None:
            tmp.cleanup()

    ratio_cpu = ours["records_per_cpu_s"] / base["records_per_cpu_s"]
    ratio_wall = ours["records_per_s"] / base["records_per_s"]
    target = 50_000
    report = {
        "records": n,
        "mean_record_bytes": round(size, 1),
        "kafka_python": ours,
        "confluent_kafka": base,
        "serialise_only": ser,
        "ratio_per_core_kafka_python_to_confluent": ratio_cpu,
        "ratio_wall_kafka_python_to_confluent": ratio_wall,
        "target_records_per_core": target,
        "target_met": ours["records_per_cpu_s"] >= target,
        "cores": os.cpu_count(),
        "shared_machine_note": "2 cores shared with other work; compare ratios, not absolutes",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"tweets: {n} x {size:.0f} B, acks=all, idempotent, lz4, 3 brokers")
    for name, r in (
        ("kafka-python (KafkaSink)", ours),
        ("confluent-kafka", base),
        ("serialise only", ser),
    ):
        print(
            f"  {name:<26} {r['records_per_s']:>10,.0f} rec/s wall"
            f"  {r['records_per_cpu_s']:>10,.0f} rec/s per core"
        )
    print(
        f"  kafka-python / confluent-kafka: {ratio_cpu:.2f}x per core, {ratio_wall:.2f}x wall"
        f"  (target {target:,} rec/s per core: {'met' if report['target_met'] else 'NOT met'})"
    )
    print(f"  wrote {OUT.relative_to(ROOT)}")
    if ours["dropped"] or base["dropped"]:
        print(f"  WARNING: dropped kafka-python={ours['dropped']} confluent={base['dropped']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
