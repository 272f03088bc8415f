"""`coinfeed kafka up|status|down` as a user runs it: a subprocess, then its exit codes and output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from coinfeed.devcluster import LocalKafkaCluster
from coinfeed.devcluster.procs import is_our_process, read_pid
from tests.support.ports import free_ports

NODES = ("zookeeper", "broker-1", "broker-2", "broker-3")


def _kafka(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coinfeed", "kafka", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_up_status_down_twice(tmp_path: Path) -> None:
    run_dir = tmp_path / "kafka"
    b1, b2, b3, zk = free_ports(4)
    try:
        up = _kafka(
            "up",
            "--run-dir",
            str(run_dir),
            "--mode",
            "zookeeper",
            "--broker-ports",
            f"{b1},{b2},{b3}",
            "--zookeeper-port",
            str(zk),
        )
        assert up.returncode == 0, up.stderr
        assert "cluster up in" in up.stderr  # progress lines go to stderr
        pids = {n: read_pid(run_dir / "pids" / f"{n}.pid") for n in NODES}
        assert all(pid is not None for pid in pids.values()), pids

        status = _kafka("status", "--run-dir", str(run_dir))
        assert status.returncode == 0, status.stdout + status.stderr
        assert "brokers seen via metadata: 1, 2, 3 (3 of 3)" in status.stdout
        assert f"127.0.0.1:{b1},127.0.0.1:{b2},127.0.0.1:{b3}" in status.stdout
        for node, pid in pids.items():
            assert f"{node}" in status.stdout and f"pid {pid}" in status.stdout

        again = _kafka(
            "up",
            "--run-dir",
            str(run_dir),
            "--broker-ports",
            f"{b1},{b2},{b3}",
            "--zookeeper-port",
            str(zk),
        )
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stderr
        assert {n: read_pid(run_dir / "pids" / f"{n}.pid") for n in NODES} == pids

        down = _kafka("down", "--run-dir", str(run_dir))
        assert down.returncode == 0, down.stderr
        assert "stopped broker-1, broker-2, broker-3, zookeeper" in down.stdout
        for pid in pids.values():
            assert pid is not None and not is_our_process(pid, str(run_dir))

        down_again = _kafka("down", "--run-dir", str(run_dir))
        assert down_again.returncode == 0, down_again.stderr
        assert "nothing running" in down_again.stdout

        after = _kafka("status", "--run-dir", str(run_dir))
        assert after.returncode == 1
        assert after.stdout.count("stopped") == 4
    finally:
        leftover = LocalKafkaCluster.load(run_dir)
        if leftover is not None:
            leftover.down()


def test_down_without_a_cluster_is_fine(tmp_path: Path) -> None:
    down = _kafka("down", "--run-dir", str(tmp_path / "never-started"))
    assert down.returncode == 0
    assert "no Kafka cluster" in down.stdout
    status = _kafka("status", "--run-dir", str(tmp_path / "never-started"))
    assert status.returncode == 3
