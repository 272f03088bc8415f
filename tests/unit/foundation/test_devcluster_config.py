"""The local cluster's configuration, decided without starting a JVM."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coinfeed.devcluster.config import (
    ClusterSpec,
    broker_properties,
    format_command,
    java_command,
    new_cluster_id,
    node_command,
    render_properties,
    zookeeper_config,
)
from coinfeed.devcluster.kafka import ClusterStatus, NodeStatus, format_status

# What issue 2 requires of every broker, in both modes.
REQUIRED = {
    "log.retention.hours": "24",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "unclean.leader.election.enable": "false",
    "auto.create.topics.enable": "false",
    "group.initial.rebalance.delay.ms": "0",
}


def _spec(tmp_path: Path, mode: str = "zookeeper") -> ClusterSpec:
    return ClusterSpec(run_dir=tmp_path, mode=mode)  # type: ignore[arg-type]


def test_defaults_are_the_documented_ports(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    assert spec.bootstrap == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
    assert spec.zookeeper_port == 2181
    assert spec.node_names() == ["zookeeper", "broker-1", "broker-2", "broker-3"]
    assert _spec(tmp_path, "kraft").node_names() == ["broker-1", "broker-2", "broker-3"]


@pytest.mark.parametrize("mode", ["zookeeper", "kraft"])
def test_every_broker_has_the_required_settings(tmp_path: Path, mode: str) -> None:
    spec = _spec(tmp_path, mode)
    dirs = set()
    for broker_id, port in zip((1, 2, 3), spec.broker_ports, strict=True):
        props = broker_properties(spec, broker_id)
        assert REQUIRED.items() <= props.items()
        assert props["listeners"].startswith(f"PLAINTEXT://127.0.0.1:{port}")
        assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
        dirs.add(props["log.dirs"])
        assert props["log.dirs"].startswith(str(tmp_path))
    assert len(dirs) == 3  # one log dir per broker


def test_zookeeper_mode_brokers_point_at_zookeeper(tmp_path: Path) -> None:
    props = broker_properties(_spec(tmp_path), 2)
    assert props["broker.id"] == "2"
    assert props["zookeeper.connect"] == "127.0.0.1:2181"
    assert "process.roles" not in props
    zoo = zookeeper_config(_spec(tmp_path))
    assert zoo["clientPort"] == "2181"
    assert zoo["admin.enableServer"] == "false"  # else every cluster fights over port 8080
    # The brokers' session timeout must lie in ZooKeeper's allowed 2..20 ticks.
    tick = int(zoo["tickTime"])
    assert 2 * tick <= int(props["zookeeper.session.timeout.ms"]) <= 20 * tick


def test_kraft_nodes_are_combined_controllers_with_one_quorum(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "kraft")
    voters = {broker_properties(spec, b)["controller.quorum.voters"] for b in (1, 2, 3)}
    assert voters == {"1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194"}
    props = broker_properties(spec, 3)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "3"
    assert "CONTROLLER://127.0.0.1:9194" in props["listeners"]
    assert "zookeeper.connect" not in props


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"host": "10.0.0.5"}, "not a loopback address"),
        ({"host": "example.com"}, "not a loopback address"),
        ({"broker_ports": (9092, 9093)}, "expected 3 broker ports"),
        ({"broker_ports": (9092, 9092, 9094)}, "ports must all differ"),
        ({"zookeeper_port": 9093}, "ports must all differ"),
        ({"zookeeper_port": 70000}, "invalid port 70000"),
        ({"mode": "raft"}, "unknown Kafka mode 'raft'"),
        ({"heap_mb": 16}, "too small"),
    ],
)
def test_bad_specs_rejected(tmp_path: Path, overrides: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ClusterSpec(run_dir=tmp_path, **overrides)  # type: ignore[arg-type]


def test_spec_survives_its_state_file(tmp_path: Path) -> None:
    spec = ClusterSpec(
        run_dir=tmp_path, mode="kraft", broker_ports=(1001, 1002, 1003), cluster_id=new_cluster_id()
    )
    assert ClusterSpec.from_json(spec.to_json()) == spec


def test_cluster_ids_look_like_kafka_uuids() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid) and not cid.startswith("-")


def test_jvm_command_names_the_run_dir_and_a_small_heap(tmp_path: Path) -> None:
    spec = ClusterSpec(run_dir=tmp_path, heap_mb=256)
    cmd = node_command("java", Path("/jars"), spec, "broker-1")
    assert cmd[0] == "java" and "-Xmx256m" in cmd
    assert cmd[cmd.index("-cp") + 1] == "/jars/*"
    assert cmd[-2:] == ["kafka.Kafka", str(tmp_path / "config" / "broker-1.properties")]
    # `down` recognises its processes by the run dir in their command line.
    assert any(str(tmp_path) in part for part in cmd[:-1])
    zk = node_command("java", Path("/jars"), spec, "zookeeper")
    assert zk[-2] == "org.apache.zookeeper.server.quorum.QuorumPeerMain"
    assert java_command("java", Path("/j"), spec, "Main", "a")[-2:] == ["Main", "a"]


def test_format_needs_a_cluster_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cluster id"):
        format_command("java", Path("/j"), _spec(tmp_path, "kraft"), 1)
    spec = ClusterSpec(run_dir=tmp_path, mode="kraft", cluster_id="abcdefghijklmnopqrstuv")
    cmd = format_command("java", Path("/j"), spec, 1)
    assert cmd[cmd.index("-t") + 1] == "abcdefghijklmnopqrstuv"
    assert "kafka.tools.StorageTool" in cmd and "format" in cmd


def test_render_properties() -> None:
    assert render_properties({"a.b": "1", "c": "x y"}) == "a.b=1\nc=x y\n"
    with pytest.raises(ValueError, match="cannot write property"):
        render_properties({"a": "1\nb=2"})


def test_status_text(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    nodes = [
        NodeStatus(n, 100 + i if i != 2 else None, i != 2, spec.log_path(n))
        for i, n in enumerate(spec.node_names())
    ]
    text = format_status(ClusterStatus(spec, nodes, [1, 3], None))
    assert "broker-2   port 9093   pid -        stopped" in text
    assert "broker-1   port 9092   pid 101      alive" in text
    assert "brokers seen via metadata: 1, 3 (2 of 3)" in text
    assert not ClusterStatus(spec, nodes, [1, 3], None).healthy
    down = format_status(ClusterStatus(spec, nodes, [], "no broker is running"))
    assert "brokers seen via metadata: none (no broker is running)" in down
    kraft = _spec(tmp_path, "kraft")
    kraft_nodes = [NodeStatus(n, None, False, kraft.log_path(n)) for n in kraft.node_names()]
    kraft_text = format_status(ClusterStatus(kraft, kraft_nodes, [], "no broker is running"))
    assert "Kafka cluster (kraft, plaintext)" in kraft_text and "zookeeper" not in kraft_text
    assert "broker-3.log controller 9194" in kraft_text
