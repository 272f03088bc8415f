"""Pid files and process identity: `down` signals only processes of its own run dir."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coinfeed.devcluster import ClusterSpec, LocalKafkaCluster, procs
from tests.support.ports import free_ports


@pytest.fixture()
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A harmless process whose command line names ``tmp_path/other-run``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(tmp_path / "other-run")]
    )
    # Between fork and exec the child still shows our command line: wait for its own.
    deadline = time.monotonic() + 10
    while not procs.is_our_process(proc.pid, str(tmp_path / "other-run")):
        assert time.monotonic() < deadline, "sleeper did not start"
        time.sleep(0.01)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_pid_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "pids" / "x.pid"
    assert procs.read_pid(path) is None
    procs.write_pid(path, 1234)
    assert procs.read_pid(path) == 1234
    path.write_text("not a pid")
    assert procs.read_pid(path) is None


def test_process_identity_needs_the_marker(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    assert procs.is_our_process(sleeper.pid, str(tmp_path / "other-run"))
    assert not procs.is_our_process(sleeper.pid, str(tmp_path / "my-run"))
    sleeper.kill()
    assert procs.wait_gone(sleeper.pid, str(tmp_path / "other-run"), timeout=10)
    assert not procs.is_our_process(sleeper.pid, str(tmp_path / "other-run"))


def test_down_leaves_a_foreign_process_with_a_reused_pid_alone(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    spec = ClusterSpec(run_dir=tmp_path / "my-run")
    for node in spec.node_names():
        procs.write_pid(spec.pid_path(node), sleeper.pid)  # stale pid files pointing at it
    cluster = LocalKafkaCluster(spec)
    assert not any(n.alive for n in cluster.status().nodes)
    assert cluster.down(timeout=1) == []
    assert sleeper.poll() is None, "down signalled a process that is not ours"
    assert cluster.down(timeout=1) == []  # and again: still nothing to do


def test_ports_and_probes() -> None:
    (port,) = free_ports(1)
    assert procs.port_free("127.0.0.1", port)
    assert not procs.port_open("127.0.0.1", port)
    assert procs.four_letter_word("127.0.0.1", port, "ruok") == ""
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert not procs.port_free("127.0.0.1", port)
        assert procs.port_open("127.0.0.1", port)


def test_tail(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    assert "does not exist" in procs.tail(log)
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert procs.tail(log, 3) == "line 97\nline 98\nline 99"
