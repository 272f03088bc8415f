"""The Kafka client factory's safe defaults, decided by pure functions."""

from __future__ import annotations

import pytest

from coinfeed.kafka import (
    BOOTSTRAP_ENV,
    DEFAULT_BOOTSTRAP,
    bootstrap_servers,
    consumer_config,
    producer_config,
)


def test_producer_defaults_are_durable_and_batched() -> None:
    cfg = producer_config("127.0.0.1:9092")
    assert cfg["bootstrap_servers"] == ["127.0.0.1:9092"]
    assert cfg["acks"] == "all"
    assert cfg["enable_idempotence"] is True
    assert cfg["retries"] > 1000
    assert cfg["max_in_flight_requests_per_connection"] <= 5  # idempotence keeps order up to 5
    assert cfg["linger_ms"] > 0
    assert cfg["compression_type"] == "lz4"
    assert cfg["allow_auto_create_topics"] is False


def test_overrides_win_but_idempotence_needs_acks_all() -> None:
    assert producer_config("h:1", linger_ms=0)["linger_ms"] == 0
    assert producer_config("h:1", acks=1, enable_idempotence=False)["acks"] == 1
    with pytest.raises(ValueError, match="idempotent producer needs acks='all'"):
        producer_config("h:1", acks=1)


def test_consumer_defaults() -> None:
    cfg = consumer_config("h:1", group_id="g")
    assert cfg["enable_auto_commit"] is False
    assert cfg["auto_offset_reset"] == "earliest"
    assert cfg["isolation_level"] == "read_committed"
    assert cfg["group_id"] == "g"


def test_bootstrap_from_argument_env_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    assert bootstrap_servers() == DEFAULT_BOOTSTRAP.split(",")
    monkeypatch.setenv(BOOTSTRAP_ENV, "127.0.0.1:1, 127.0.0.1:2")
    assert bootstrap_servers() == ["127.0.0.1:1", "127.0.0.1:2"]
    assert bootstrap_servers("127.0.0.1:3") == ["127.0.0.1:3"]


@pytest.mark.parametrize("value", ["localhost", "localhost:", ":9092", "host:port", ","])
def test_bad_bootstrap_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        bootstrap_servers(value)
