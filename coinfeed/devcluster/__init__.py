"""A local Apache Kafka cluster for development and tests: ZooKeeper + 3 brokers, or 3 KRaft nodes.

``config`` decides (pure: properties for each node), ``procs`` handles pids and ports, ``kafka``
starts, watches and stops the JVMs, ``cli`` is ``coinfeed kafka up|down|status``.
"""

from coinfeed.devcluster.config import ClusterSpec, Mode
from coinfeed.devcluster.kafka import (
    ClusterError,
    ClusterStatus,
    JarsMissingError,
    LocalKafkaCluster,
    PortInUseError,
)

__all__ = [
    "ClusterError",
    "ClusterSpec",
    "ClusterStatus",
    "JarsMissingError",
    "LocalKafkaCluster",
    "Mode",
    "PortInUseError",
]
