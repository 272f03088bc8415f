"""The Kafka client factory's safe defaults, decided by pure functions."""

from __future__ import annotations

import pytest

from coinfeed.kafka import (
    BOOTSTRAP_ENV,
    DEFAULT_BOOTSTRAP,
    _partitioner,
    bootstrap_servers,
    consumer_config,
    key_partition,
    murmur2,
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


# Kafka's own vectors (clients UtilsTest.testMurmur2), as Java's signed 32-bit ints.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_murmur2_matches_kafka_java_vectors() -> None:
    for data, signed in JAVA_MURMUR2.items():
        assert murmur2(data) == signed & 0xFFFFFFFF, data


class _Partitions:
    """The three metadata look-ups both partitioners make, for one topic "t" of ``n``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.n)) if topic == "t" else None

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions_for_topic(topic)


def test_murmur2_and_partitioner_match_kafka_python_default() -> None:
    """Same key -> same partition as kafka-python's DefaultPartitioner (and so every client
    using Kafka's murmur2): a different mapping would split one key's records across partitions
    and lose their order."""
    import random

    from kafka.partitioner.default import DefaultPartitioner
    from kafka.partitioner.default import murmur2 as reference

    rnd = random.Random(7)
    keys = [bytes(rnd.randrange(256) for _ in range(n)) for n in range(64) for _ in range(40)]
    keys += [str(1896349829949292545 + i).encode() for i in range(500)]  # tweet ids
    for key in keys:
        assert murmur2(key) == reference(key), key

    for n in (1, 3, 7, 12):
        cluster = _Partitions(n)
        ours, theirs = _partitioner(), DefaultPartitioner()
        for key in keys:
            expected = theirs.partition("t", key, key, None, None, cluster)
            assert ours.partition("t", key, key, None, None, cluster) == expected
            assert key_partition(key, n) == expected
        assert ours.partition("t", None, None, b"v", b"v", cluster) in range(n)  # null key: any
