"""Kafka client factory: every producer, consumer and admin client is made here, with safe defaults.

The ``*_config`` functions are pure (they decide); ``make_*`` only construct clients.
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from coinfeed import kafka_eof
from coinfeed.kafka_diagnose import explain_failures
from coinfeed.kafka_security import KafkaSecurity, kafka_python_settings, security_from_env

# Every client is made here, so this is where kafka-python's lost-refusal bug is fixed.
kafka_eof.install()

DEFAULT_BOOTSTRAP: Final = "localhost:9092,localhost:9093,localhost:9094"
BOOTSTRAP_ENV: Final = "COINFEED_KAFKA_BOOTSTRAP"

# Durability first, then throughput. Each default is set explicitly even where kafka-python's own
# default agrees today, so an upgrade cannot silently change delivery guarantees.
PRODUCER_DEFAULTS: Final[Mapping[str, Any]] = {
    "acks": "all",  # every in-sync replica (min.insync.replicas=2) has the record
    "enable_idempotence": True,  # retries never duplicate or reorder within a partition
    "retries": 2**31 - 1,  # bounded by delivery_timeout_ms, not by a count
    "delivery_timeout_ms": 120_000,
    "max_in_flight_requests_per_connection": 5,  # the most idempotence allows with ordering
    "linger_ms": 20,  # small batching delay: far fewer requests at a negligible latency cost
    "batch_size": 256 * 1024,
    "compression_type": "lz4",
    "request_timeout_ms": 30_000,
    "max_block_ms": 60_000,  # send() blocks this long on a full buffer before raising
    "allow_auto_create_topics": False,  # topics come from the operator, never by accident
}

CONSUMER_DEFAULTS: Final[Mapping[str, Any]] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "isolation_level": "read_committed",
    "allow_auto_create_topics": False,
}


# --- key -> partition, exactly as Kafka's Java client (and librdkafka's murmur2_random) does ---
_MURMUR2_SEED: Final = 0x9747B28C
_MURMUR2_M: Final = 0x5BD1E995
_U32: Final = 0xFFFFFFFF
_WORDS: dict[int, Callable[[bytes], tuple[int, ...]]] = {}


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) as an unsigned 32-bit int.

    Same result as kafka-python's pure-Python ``murmur2`` but about twice as fast: the 4-byte
    words are read in one ``struct`` call instead of byte by byte (it runs once per keyed send).
    """
    length = len(data)
    h = _MURMUR2_SEED ^ length
    n4 = length >> 2
    if n4:
        words = _WORDS.get(n4)
        if words is None:
            words = _WORDS[n4] = struct.Struct(f"<{n4}I").unpack_from
        for k in words(data):
            k = (k * _MURMUR2_M) & _U32
            k ^= k >> 24
            h = ((h * _MURMUR2_M) & _U32) ^ ((k * _MURMUR2_M) & _U32)
    tail = length & 3
    if tail:
        base = length - tail
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h ^= data[base]
        h = (h * _MURMUR2_M) & _U32
    h ^= h >> 13
    h = (h * _MURMUR2_M) & _U32
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (toPositive(murmur2) % n)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _partitioner() -> Any:
    from kafka.partitioner.abc import Partitioner

    class KeyHashPartitioner(Partitioner):  # type: ignore[misc]
        """kafka-python's DefaultPartitioner with less work per send: same partition for every
        key (so other clients agree and per-key order holds), random for a null key."""

        def partition(
            self,
            topic: str,
            key: Any,
            serialized_key: bytes | None,
            value: Any,
            serialized_value: bytes | None,
            cluster: Any,
        ) -> int:
            partitions = cluster.partitions_for_topic(topic)
            if not partitions:
                raise ValueError(f"Topic {topic} not found in ClusterMetadata")
            if serialized_key is not None:
                # Partition ids are 0..n-1, so index == id (Java: murmur2 % numPartitions).
                return key_partition(serialized_key, len(partitions))
            available = cluster.available_partitions_for_topic(topic)
            return int(random.choice(sorted(available or partitions)))

    return KeyHashPartitioner()


def bootstrap_servers(value: str | None = None) -> list[str]:
    """``value``, else ``$COINFEED_KAFKA_BOOTSTRAP``, else the local 3-broker cluster."""
    raw = value or os.environ.get(BOOTSTRAP_ENV) or DEFAULT_BOOTSTRAP
    servers = [s.strip() for s in raw.split(",") if s.strip()]
    for s in servers:
        host, sep, port = s.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"invalid Kafka bootstrap server {s!r}: expected host:port")
    if not servers:
        raise ValueError("no Kafka bootstrap servers given")
    return servers


def _security(security: KafkaSecurity | None) -> KafkaSecurity:
    return security if security is not None else security_from_env()


def security_settings(security: KafkaSecurity | None = None) -> dict[str, Any]:
    """kafka-python security kwargs of ``security``, else of the ``COINFEED_KAFKA_*`` variables."""
    return kafka_python_settings(_security(security))


def producer_config(
    bootstrap: str | None = None, *, security: KafkaSecurity | None = None, **overrides: Any
) -> dict[str, Any]:
    cfg: dict[str, Any] = {"bootstrap_servers": bootstrap_servers(bootstrap), **PRODUCER_DEFAULTS}
    cfg.update(security_settings(security))
    cfg.update(overrides)
    if cfg.get("enable_idempotence") and cfg.get("acks") not in ("all", -1):
        raise ValueError("an idempotent producer needs acks='all'")
    return cfg


def consumer_config(
    bootstrap: str | None = None, *, security: KafkaSecurity | None = None, **overrides: Any
) -> dict[str, Any]:
    cfg: dict[str, Any] = {"bootstrap_servers": bootstrap_servers(bootstrap), **CONSUMER_DEFAULTS}
    cfg.update(security_settings(security))
    cfg.update(overrides)
    return cfg


def make_producer(
    bootstrap: str | None = None, *, security: KafkaSecurity | None = None, **overrides: Any
) -> Any:
    from kafka import KafkaProducer

    sec = _security(security)
    cfg = producer_config(bootstrap, security=sec, **overrides)
    # Same key -> partition mapping as kafka-python's default (tested against it and Kafka's
    # own vectors), ~2x cheaper per send. Built here, not in PRODUCER_DEFAULTS: it is an object.
    cfg.setdefault("partitioner", _partitioner())
    with explain_failures(cfg["bootstrap_servers"], sec):
        return KafkaProducer(**cfg)


def make_consumer(
    *topics: str,
    bootstrap: str | None = None,
    security: KafkaSecurity | None = None,
    **overrides: Any,
) -> Any:
    from kafka import KafkaConsumer

    sec = _security(security)
    cfg = consumer_config(bootstrap, security=sec, **overrides)
    with explain_failures(cfg["bootstrap_servers"], sec):
        return KafkaConsumer(*topics, **cfg)


def admin_config(
    bootstrap: str | None = None, *, security: KafkaSecurity | None = None, **overrides: Any
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(bootstrap),
        "request_timeout_ms": 30_000,
        **security_settings(security),
    }
    cfg.update(overrides)
    return cfg


def make_admin(
    bootstrap: str | None = None, *, security: KafkaSecurity | None = None, **overrides: Any
) -> Any:
    from kafka.admin import KafkaAdminClient

    sec = _security(security)
    cfg = admin_config(bootstrap, security=sec, **overrides)
    with explain_failures(cfg["bootstrap_servers"], sec):
        return KafkaAdminClient(**cfg)
