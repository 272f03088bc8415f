"""Produce/consume helpers for the cluster tests (real clients from coinfeed.kafka)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka import TopicPartition

from coinfeed.devcluster import LocalKafkaCluster
from coinfeed.kafka import make_consumer


@dataclass(frozen=True)
class Consumed:
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def create_topic(
    cluster: LocalKafkaCluster,
    name: str,
    partitions: int = 3,
    configs: dict[str, str] | None = None,
) -> None:
    """Create ``name`` (RF 3) and wait until every partition has a leader and a full ISR."""
    cluster.admin().create_topics(
        {
            name: {
                "num_partitions": partitions,
                "replication_factor": 3,
                "configs": configs or {},
            }
        },
        wait_for_metadata=True,
    )
    cluster.wait_in_sync(name, timeout=60)


def consume_all(
    bootstrap: str, topic: str, partitions: Iterable[int], timeout: float = 120
) -> list[Consumed]:
    """Every record of ``topic`` from the beginning up to the end offsets seen at the start."""
    consumer: Any = make_consumer(bootstrap=bootstrap, group_id=None, max_poll_records=2000)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[Consumed] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                positions = {tp.partition: consumer.position(tp) for tp in tps}
                raise AssertionError(f"consumer stuck at {positions}, end offsets {end}")
            for tp, records in consumer.poll(timeout_ms=1000).items():
                out.extend(Consumed(tp.partition, r.offset, r.key, r.value) for r in records)
        return out
    finally:
        consumer.close()


def produce_and_check_order(
    cluster: LocalKafkaCluster, topic: str, count: int, keys: int = 40
) -> None:
    """Produce ``count`` records over ``keys`` keys, consume them back, and assert that every record
    arrived exactly once and each key's records arrived in the order they were sent."""
    from coinfeed.kafka import make_producer

    producer: Any = make_producer(cluster.bootstrap)
    try:
        futures = [
            producer.send(topic, key=f"key-{i % keys}".encode(), value=f"{i}".encode())
            for i in range(count)
        ]
        producer.flush(timeout=120)
        metadata = [f.get(timeout=60) for f in futures]
    finally:
        producer.close()
    assert len(metadata) == count

    records = consume_all(cluster.bootstrap, topic, range(3))
    values = [int(r.value) for r in records]
    assert sorted(values) == list(range(count)), "records lost or duplicated"

    by_key: dict[bytes, list[int]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert r.key is not None
        by_key.setdefault(r.key, []).append(int(r.value))
    assert len(by_key) == keys
    for key, seq in by_key.items():
        assert seq == sorted(seq), f"{key!r} out of order"
    # Keys spread over more than one partition (so ordering was checked across partitions too).
    assert len({r.partition for r in records}) == 3
