"""The retry buffer overflowing for real: a sink with ``max_buffered=3`` (the ``--max-buffered``
setting), a real kafka-python producer with a short delivery timeout, and a private cluster
whose brokers all go away while 20 records are in flight.

Proves: every failed delivery beyond the buffer is counted in PRODUCER_RECORDS_DROPPED
{reason="buffer_full"} (exactly 17), each drop has one log line naming its key and not the
record's content; the 3 kept records are delivered once Kafka is back, together with everything
sent before and after (nothing else lost, nothing twice); the sink keeps working throughout.

In-process rather than a producer subprocess: the process's delivery timeout is kafka-python's
120 s (no flag), far too long for a test, and the exact drop count needs the re-send loop
(``retry_failed``) not to run while the failures arrive. The sink is the producer's own class and
the cluster is real; only the producer client's timeouts are shortened.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coinfeed import metric_names as mn
from coinfeed.kafka import make_producer
from coinfeed.logs import JsonFormatter
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.retry import RetryPolicy
from coinfeed.producers.sink import KafkaSink
from coinfeed.schemas import Tweet, decode_record
from coinfeed.topics import topic_name
from tests.integration.producers.helpers import create_topics, read_topic
from tests.integration.producers.test_producer_kafka import new_coin

MAX_BUFFERED = 3
T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


def _tweets(coin: str, first: int, n: int) -> list[Tweet]:
    return [
        Tweet(
            coin=coin,
            id=str(10**12 + i),
            created_at=T0 + timedelta(seconds=i),
            text=f"payload-{i} $BTC",
            author_id="7",
            source="replay",
        )
        for i in range(first, first + n)
    ]


def _wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _dropped(metrics: ProducerMetrics, coin: str, reason: str) -> float:
    labels = {"coin": coin, "kind": "tweets", "reason": reason}
    return metrics.registry.get_sample_value(mn.PRODUCER_RECORDS_DROPPED, labels) or 0.0


def test_buffer_overflow_drops_counted_and_logged_keeps_the_rest(
    kafka_cluster_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = kafka_cluster_factory()
    coin, bootstrap = new_coin(), cluster.bootstrap
    topic = topic_name(coin, "tweets")
    create_topics(bootstrap, topic)
    producer = make_producer(
        bootstrap,
        linger_ms=0,
        request_timeout_ms=1_500,
        delivery_timeout_ms=4_000,  # in-flight records fail fast once the brokers are gone
        max_block_ms=5_000,
        reconnect_backoff_max_ms=500,
        # Idempotence off: with every broker gone, kafka-python 3.0.12's idempotent producer can
        # lose its producer id and stall (no expiry, so no failure reaches the sink; or no
        # delivery after the brokers return). That is the library's recovery, not the sink's
        # buffer, which is what this test is about; the stall is reported to the lead.
        enable_idempotence=False,
    )
    metrics = ProducerMetrics(coin, "tweets", "replay")
    sink = KafkaSink(
        producer, metrics, coin, "tweets", MAX_BUFFERED, policy=RetryPolicy(base=0.2, cap=1.0)
    )
    before, during, after = _tweets(coin, 0, 5), _tweets(coin, 100, 20), _tweets(coin, 200, 5)
    try:
        for t in before:
            sink.send(t)
        assert sink.flush(60) and sink.acked == len(before)

        cluster.stop_broker(1)
        cluster.stop_broker(2)
        cluster.kill_broker(3, wait=False)
        with caplog.at_level(logging.WARNING, logger="coinfeed.producers.sink"):
            for t in during:  # metadata is cached: these are accepted, then expire unacked
                sink.send(t)
            # Every one of them failed: MAX_BUFFERED kept for re-sending, the rest dropped.
            _wait(lambda: sink.in_flight == 0, 90, "the in-flight records to fail")
        assert sink.acked == len(before)  # Kafka really was down: nothing of `during` acked
        assert sink.pending == MAX_BUFFERED
        assert not sink.healthy
        lost = len(during) - MAX_BUFFERED
        assert _dropped(metrics, coin, "buffer_full") == lost
        assert _dropped(metrics, coin, "shutdown") == 0
        assert sink.dropped == lost

        drops = [r for r in caplog.records if r.getMessage() == "record dropped"]
        assert len(drops) == lost  # one line per dropped record, none silent
        dropped_ids = {r.__dict__["key"] for r in drops}
        assert len(dropped_ids) == lost and dropped_ids <= {t.id for t in during}
        by_id = {t.id: t for t in during}
        for r in drops:
            line = json.loads(JsonFormatter().format(r))
            assert line["reason"] == "buffer_full" and line["topic"] == topic
            assert line["error"]  # names why the delivery failed
            # The log names the record, never its content (which may carry anything).
            assert by_id[line["key"]].text not in json.dumps(line)
            assert set(line) == {"ts", "level", "logger", "msg", "reason", "topic", "key", "error"}

        for broker in (1, 2, 3):
            cluster.start_broker(broker)
        for t in after:  # the sink keeps going: new records are taken again
            sink.send(t)
        assert sink.flush(120), "kept records not delivered after Kafka came back"
        assert sink.pending == 0 and sink.healthy
        assert _dropped(metrics, coin, "buffer_full") == lost  # nothing more dropped
    finally:
        total_dropped = sink.close(10)
    assert total_dropped == lost  # close() counts the buffer_full drops of the run, none of its own

    ids = [decode_record(Tweet, m.value).id for m in read_topic(bootstrap, topic)]
    kept = {t.id for t in during} - dropped_ids
    assert len(kept) == MAX_BUFFERED
    # Compared as sets: without idempotence a produce retried after a lost response may be
    # written twice (kafka-python's, not the sink's, doing; the real producer is idempotent).
    assert set(ids) == {t.id for t in before} | kept | {t.id for t in after}
    assert not set(ids) & dropped_ids  # what was counted as dropped really is absent
    assert sink.acked == len(set(ids))
