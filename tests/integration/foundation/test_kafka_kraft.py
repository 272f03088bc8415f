"""KRaft mode: three combined controller+broker nodes, no ZooKeeper."""

from __future__ import annotations

import pytest

from coinfeed.devcluster import LocalKafkaCluster
from coinfeed.devcluster.kafka import NodeFailedError
from tests.integration.foundation.kafka_io import create_topic, produce_and_check_order
from tests.support.kafka import KafkaClusterFactory


@pytest.fixture(scope="module")
def kraft_cluster(kafka_cluster_factory: KafkaClusterFactory) -> LocalKafkaCluster:
    cluster = kafka_cluster_factory("kraft")
    print(f"KRaft cluster up in {cluster.up_seconds:.1f}s")
    return cluster


def test_kraft_nodes_without_zookeeper(kraft_cluster: LocalKafkaCluster) -> None:
    status = kraft_cluster.status()
    assert [n.name for n in status.nodes] == ["broker-1", "broker-2", "broker-3"]
    assert status.healthy
    props = kraft_cluster.spec.config_path("broker-1").read_text(encoding="utf-8")
    assert "process.roles=broker,controller" in props
    assert "zookeeper.connect" not in props


def test_kraft_10000_records_round_trip_in_order(kraft_cluster: LocalKafkaCluster) -> None:
    create_topic(kraft_cluster, "kraft-roundtrip")
    produce_and_check_order(kraft_cluster, "kraft-roundtrip", 10_000)


def test_failing_node_is_reported_with_its_log(kraft_cluster: LocalKafkaCluster) -> None:
    """A log dir that belongs to another node makes broker-1 exit at start: `up` must say which
    node died and where its log is, and leave nothing running."""
    kraft_cluster.down()
    meta = kraft_cluster.spec.data_dir("broker-1") / "meta.properties"
    meta.write_text(meta.read_text(encoding="utf-8").replace("node.id=1", "node.id=7"))
    with pytest.raises(NodeFailedError) as err:
        kraft_cluster.up(timeout=120)
    message = str(err.value)
    assert message.startswith("broker-1 exited"), message
    assert str(kraft_cluster.spec.log_path("broker-1")) in message
    assert not any(n.alive for n in kraft_cluster.status().nodes)
