"""Kafka fixtures: a real ZooKeeper + 3-broker cluster, started with the same code as `kafka up`.

``kafka_cluster`` (session): one shared cluster; use ``kafka_cluster.bootstrap``. Tests that stop
or kill its brokers must leave all three running and in sync; tests that want to break things
freely start their own with ``kafka_cluster_factory``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coinfeed.devcluster import ClusterSpec, LocalKafkaCluster, Mode
from tests.support.ports import free_ports

KafkaClusterFactory = Callable[..., LocalKafkaCluster]


def start_cluster(
    run_dir: Path, mode: Mode = "zookeeper", **spec_overrides: Any
) -> LocalKafkaCluster:
    """Start a cluster on free loopback ports in ``run_dir``; JVMs die with this process."""
    ports = free_ports(7)
    spec = ClusterSpec(
        run_dir=run_dir,
        mode=mode,
        broker_ports=tuple(ports[:3]),
        zookeeper_port=ports[3],
        controller_ports=tuple(ports[4:7]),
        **spec_overrides,
    )
    cluster = LocalKafkaCluster(spec, tie_to_parent=True)
    cluster.up(timeout=240)
    return cluster


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafkaCluster]:
    """The shared cluster (ZooKeeper mode). ``.bootstrap`` is ``127.0.0.1:p1,...:p2,...:p3``."""
    cluster = start_cluster(tmp_path_factory.mktemp("kafka"))
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def kafka_cluster_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KafkaClusterFactory]:
    """``start(mode="zookeeper"|"kraft", **spec_overrides)`` -> an extra cluster, stopped after
    the module's tests."""
    started: list[LocalKafkaCluster] = []

    def start(mode: Mode = "zookeeper", **spec_overrides: Any) -> LocalKafkaCluster:
        cluster = start_cluster(tmp_path_factory.mktemp(f"kafka-{mode}"), mode, **spec_overrides)
        started.append(cluster)
        return cluster

    try:
        yield start
    finally:
        for cluster in started:
            cluster.down()
