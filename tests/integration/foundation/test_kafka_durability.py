"""Failure tests on a cluster of their own (the shared one stays untouched): a SIGKILLed leader
loses no acknowledged record, and a partition below min ISR refuses writes."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    NotEnoughReplicasAfterAppendError,
    NotEnoughReplicasError,
)

from coinfeed.devcluster import LocalKafkaCluster
from coinfeed.kafka import make_producer
from tests.integration.foundation.kafka_io import consume_all, create_topic
from tests.support.kafka import KafkaClusterFactory

RECORDS = 20_000
KILL_AFTER = 5_000


@pytest.fixture(scope="module")
def own_cluster(kafka_cluster_factory: KafkaClusterFactory) -> LocalKafkaCluster:
    return kafka_cluster_factory("zookeeper")


def _report(name: str, figures: dict[str, Any]) -> None:
    """Keep the measured figures next to the test output (out/test-figures/)."""
    out = Path(os.environ.get("COINFEED_FIGURES_DIR", "out/test-figures"))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"{name}: {figures}")


def test_sigkill_leader_loses_no_acknowledged_record(own_cluster: LocalKafkaCluster) -> None:
    topic = "durability-sigkill"
    create_topic(own_cluster, topic)
    victim = own_cluster.leader(topic, 0)

    producer: Any = make_producer(own_cluster.bootstrap)
    futures = []
    done_before_kill = -1
    try:
        for i in range(RECORDS):
            futures.append(producer.send(topic, key=f"k{i % 30}".encode(), value=str(i).encode()))
            if i == KILL_AFTER:
                # Records are in flight and buffered: the leader dies mid-stream.
                done_before_kill = sum(f.is_done for f in futures)
                own_cluster.kill_broker(victim, wait=False)
        producer.flush(timeout=180)
    finally:
        producer.close(timeout=30)

    acked: set[int] = set()
    failed: dict[int, str] = {}
    for i, fut in enumerate(futures):
        try:
            fut.get(timeout=0)
            acked.add(i)
        except KafkaError as exc:
            failed[i] = repr(exc)
    assert own_cluster.leader(topic, 0) != victim, "partition 0 did not fail over"

    counts = Counter(int(r.value) for r in consume_all(own_cluster.bootstrap, topic, range(3)))
    lost = sorted(acked - set(counts))
    duplicated = sorted(v for v, n in counts.items() if n > 1)
    _report(
        "kafka_durability",
        {
            "sent": RECORDS,
            "acked": len(acked),
            "failed": len(failed),
            "consumed": sum(counts.values()),
            "lost": len(lost),
            "duplicated": len(duplicated),
            "killed_broker": victim,
            "completed_when_killed": done_before_kill,
        },
    )
    assert acked, "nothing was acknowledged"
    assert lost == [], f"{len(lost)} acknowledged records lost, e.g. {lost[:10]}"
    assert duplicated == [], f"{len(duplicated)} records duplicated, e.g. {duplicated[:10]}"

    own_cluster.start_broker(victim)
    own_cluster.wait_in_sync(topic, timeout=120)
    for p in own_cluster.partitions(topic):
        assert victim in p["isr_nodes"], p


def test_send_fails_below_min_insync_replicas(own_cluster: LocalKafkaCluster) -> None:
    topic = "durability-min-isr"
    create_topic(own_cluster, topic, partitions=1)
    leader = own_cluster.leader(topic, 0)
    stopped = [b for b in (1, 2, 3) if b != leader]
    # kafka-python 3.0 picks a bootstrap server at random and then waits out that server's
    # growing reconnect backoff: with two of three brokers down it can spend the whole timeout
    # on dead ones. Bootstrap from the live leader, which is what this test is about.
    live = f"{own_cluster.spec.host}:{own_cluster.spec.broker_port(leader)}"
    for broker_id in stopped:
        own_cluster.stop_broker(broker_id)
    try:
        # No retries: the broker's refusal itself must surface, not a later timeout.
        producer: Any = make_producer(live, enable_idempotence=False, retries=0)
        try:
            future = producer.send(topic, key=b"k", value=b"must not be acknowledged")
            with pytest.raises((NotEnoughReplicasError, NotEnoughReplicasAfterAppendError)) as err:
                future.get(timeout=60)
        finally:
            producer.close(timeout=10)
        assert "NotEnoughReplicas" in type(err.value).__name__

        # The project's default producer retries NOT_ENOUGH_REPLICAS until its delivery timeout:
        # the record is still never acknowledged. kafka-python reports either the expiry or, when
        # the deadline falls between two retries, the last refusal; either way only after it
        # kept trying for the delivery timeout.
        retrying: Any = make_producer(live, delivery_timeout_ms=8_000, request_timeout_ms=4_000)
        try:
            started = time.monotonic()
            future = retrying.send(topic, key=b"k", value=b"must not be acknowledged either")
            with pytest.raises(
                (KafkaTimeoutError, NotEnoughReplicasError, NotEnoughReplicasAfterAppendError)
            ) as late:
                future.get(timeout=60)
            waited = time.monotonic() - started
        finally:
            retrying.close(timeout=10)
        if isinstance(late.value, KafkaTimeoutError):
            assert "Expiring 1 record" in str(late.value)
        assert waited >= 7.5, f"gave up after {waited:.1f}s, before the 8 s delivery timeout"
    finally:
        for broker_id in stopped:
            own_cluster.start_broker(broker_id)
    own_cluster.wait_in_sync(topic, timeout=120)
    # Nothing was written while the partition was below min ISR.
    assert consume_all(own_cluster.bootstrap, topic, [0]) == []
