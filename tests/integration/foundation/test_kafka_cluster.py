"""The shared cluster (``kafka_cluster``): topic settings read back, 10,000 records round trip."""

from __future__ import annotations

from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType

from coinfeed.devcluster import LocalKafkaCluster
from coinfeed.topics import topic_name
from tests.integration.foundation.kafka_io import create_topic, produce_and_check_order

DAY_MS = str(24 * 3600 * 1000)


def _values(entries: Any) -> dict[str, str]:
    """``describe_configs`` entries -> {name: value}, whatever container kafka-python returns."""
    if isinstance(entries, dict):
        return {k: (v["value"] if isinstance(v, dict) else v) for k, v in entries.items()}
    return {e["name"]: e["value"] for e in entries}


def test_all_three_brokers_registered(kafka_cluster: LocalKafkaCluster) -> None:
    assert kafka_cluster.registered_brokers() == {1, 2, 3}
    hosts = [s.rpartition(":")[0] for s in kafka_cluster.bootstrap.split(",")]
    assert hosts == ["127.0.0.1"] * 3


def test_broker_settings_read_back(kafka_cluster: LocalKafkaCluster) -> None:
    admin = kafka_cluster.admin()
    for broker_id in (1, 2, 3):
        result = admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, str(broker_id))], config_filter="all"
        )
        cfg = _values(result["broker"][str(broker_id)])
        assert cfg["log.retention.hours"] == "24"
        assert cfg["default.replication.factor"] == "3"
        assert cfg["min.insync.replicas"] == "2"
        assert cfg["offsets.topic.replication.factor"] == "3"
        assert cfg["transaction.state.log.replication.factor"] == "3"
        assert cfg["unclean.leader.election.enable"] == "false"
        assert cfg["auto.create.topics.enable"] == "false"


def test_topic_created_with_3_partitions_rf3_24h_retention(
    kafka_cluster: LocalKafkaCluster,
) -> None:
    name = topic_name("fdconfig", "prices")
    create_topic(kafka_cluster, name, partitions=3, configs={"retention.ms": DAY_MS})

    parts = kafka_cluster.partitions(name)
    assert [p["partition_index"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert sorted(p["replica_nodes"]) == [1, 2, 3]
        assert sorted(p["isr_nodes"]) == [1, 2, 3]
    # Leaders spread over the brokers, as Kafka's assignment does for a fresh topic.
    assert len({p["leader_id"] for p in parts}) == 3

    result = kafka_cluster.admin().describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all"
    )
    cfg = _values(result["topic"][name])
    assert cfg["retention.ms"] == DAY_MS
    assert cfg["min.insync.replicas"] == "2"
    assert cfg["unclean.leader.election.enable"] == "false"


def test_10000_records_round_trip_in_order(kafka_cluster: LocalKafkaCluster) -> None:
    name = topic_name("fdorder", "prices")
    create_topic(kafka_cluster, name)
    produce_and_check_order(kafka_cluster, name, 10_000)
