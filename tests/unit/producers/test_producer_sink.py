"""The Kafka sink's own decisions: keys, headers, and what happens when Kafka never answers
(a real kafka-python producer aimed at a closed loopback port; no broker needed)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from coinfeed.kafka import make_producer
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.retry import RetryPolicy
from coinfeed.producers.sink import KafkaSink, event_ms, record_headers, record_key
from coinfeed.schemas import PriceTick, Tweet
from tests.support.ports import free_port

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
TICK = PriceTick(coin="btc", source="binance", pair="BTC/USDT", ts=T0, price=1.0)
TWEET = Tweet(
    coin="btc", id="1234567890", created_at=T0, text="$BTC", author_id="7", source="replay"
)


def test_keys_and_headers() -> None:
    assert record_key(TICK) == b"btc"
    assert record_key(TWEET) == b"1234567890"
    assert record_headers(TICK) == [("schema_version", b"1"), ("source", b"binance")]
    # Tweets are version 2 (platform, cross-platform ids); each record says its own version.
    assert record_headers(TWEET) == [("schema_version", b"2"), ("source", b"replay")]
    v1 = TWEET.model_copy(update={"schema_version": 1})
    assert record_headers(v1) == [("schema_version", b"1"), ("source", b"replay")]
    assert event_ms(TWEET) == int(T0.timestamp() * 1000)


def _dead_kafka_producer() -> Any:
    # api_version given: no eager bootstrap, so the client can be built with nothing listening.
    return make_producer(
        f"127.0.0.1:{free_port()}",
        api_version=(3, 9),
        max_block_ms=300,
        request_timeout_ms=500,
        delivery_timeout_ms=1000,
        linger_ms=0,
    )


def test_unreachable_kafka_blocks_then_drops_counted_and_logged_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = ProducerMetrics("btc", "prices", "binance")
    sink = KafkaSink(
        _dead_kafka_producer(), metrics, "btc", "prices", policy=RetryPolicy(base=0.05, cap=0.1)
    )
    done = threading.Event()

    def send() -> None:
        sink.send(TICK)
        done.set()

    with caplog.at_level(logging.WARNING, logger="coinfeed.producers.sink"):
        threading.Thread(target=send, daemon=True).start()
        deadline = time.monotonic() + 30
        while not any("retrying" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "send did not block and retry"
            time.sleep(0.05)
        assert not done.is_set()  # blocked: the source is not read further meanwhile
        assert not sink.healthy
        sink.abandon.set()  # what the shutdown watchdog does after --shutdown-timeout
        assert done.wait(10)
        dropped = sink.close(0.5)

    assert dropped == 1
    assert (
        metrics.registry.get_sample_value(
            "coinfeed_producer_records_dropped_total",
            {"coin": "btc", "kind": "prices", "reason": "shutdown"},
        )
        == 1
    )
    errors = metrics.registry.get_sample_value(
        "coinfeed_producer_send_errors_total",
        {"coin": "btc", "kind": "prices", "error": "KafkaTimeoutError"},
    )
    assert errors is not None and errors >= 1
    drop_logs = [r for r in caplog.records if r.getMessage() == "record dropped"]
    assert len(drop_logs) == 1 and drop_logs[0].__dict__["reason"] == "shutdown"
    assert drop_logs[0].__dict__["key"] == "btc"
