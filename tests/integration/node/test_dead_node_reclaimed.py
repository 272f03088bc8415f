"""What a killed node run leaves (its bridge, iptables chains, network namespaces) does not stop the
next one: `node.reclaim_dead_node` removes it once the node's processes are gone, and refuses,
touching nothing, while one still runs; `node.up` (make cluster-up) does so before it starts
anything. Found in session 30: a CI run started while an earlier run's node bridge was still
there, and every node test failed at setup ("already running").

Runs before the node tests' session node (file order): it needs the machine without a node."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from localnode import config as cfg
from localnode import node
from localnode.config import Layout

CHAIN = "COINFEED-DEADTEST"
NETNS = "cni-coinfeed-deadtest"


def _exists(*argv: str) -> bool:
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def _bridge() -> bool:
    return _exists("ip", "link", "show", cfg.BRIDGE)


@pytest.fixture
def dead_node_leftovers() -> Iterator[None]:
    assert not _bridge(), (
        f"bridge {cfg.BRIDGE} exists before this test: a node is up or was left behind; "
        "this test runs before the node tests' own node and needs the machine without one"
    )
    subprocess.run(["ip", "link", "add", cfg.BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["iptables", "-w", "-N", CHAIN], check=True)
    subprocess.run(["iptables", "-w", "-A", "FORWARD", "-j", CHAIN], check=True)
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    try:
        yield
    finally:
        if _bridge():
            subprocess.run(["ip", "link", "delete", cfg.BRIDGE], check=False)
        subprocess.run(["iptables", "-w", "-D", "FORWARD", "-j", CHAIN], check=False)
        subprocess.run(["iptables", "-w", "-F", CHAIN], check=False)
        subprocess.run(["iptables", "-w", "-X", CHAIN], check=False)
        subprocess.run(["ip", "netns", "delete", NETNS], check=False)


def test_a_live_node_is_refused_and_a_dead_ones_leftovers_are_removed(
    dead_node_leftovers: None, tmp_path: Path
) -> None:
    layout = Layout(tmp_path / "cluster")
    # A process as the kubelet is started (its node address on the command line).
    kubelet = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", f"--node-ip={cfg.NODE_IP}"]
    )
    try:
        with pytest.raises(node.NodeError, match=rf"processes: {kubelet.pid}: "):
            node.reclaim_dead_node(layout)
        assert _bridge(), "a live node's bridge was removed"
        assert _exists("iptables", "-w", "-S", CHAIN), "a live node's chain was removed"
    finally:
        kubelet.kill()
        kubelet.wait(timeout=30)

    found = node.reclaim_dead_node(layout)

    assert f"bridge {cfg.BRIDGE}" in found
    assert f"iptables chain filter/{CHAIN}" in found
    assert f"network namespace {NETNS}" in found
    assert node.leftovers(layout) == []
    assert node.reclaim_dead_node(layout) == [], "a second call found something again"


def test_up_refuses_to_start_beside_another_running_node(tmp_path: Path) -> None:
    assert not _bridge(), f"bridge {cfg.BRIDGE} exists before this test: a node is up"
    layout = Layout(tmp_path / "cluster")
    # Another run folder's kubelet: the new node would share its bridge and ports.
    kubelet = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", f"--node-ip={cfg.NODE_IP}"]
    )
    try:
        with pytest.raises(node.NodeError, match=rf"processes: {kubelet.pid}: "):
            node.up(layout, timeout=30)
    finally:
        kubelet.kill()
        kubelet.wait(timeout=30)
    assert not _bridge(), "up went on and made the bridge"
    assert not layout.pids.exists(), "up went on and started something"


def test_without_our_bridge_chains_named_like_ours_are_left_alone(tmp_path: Path) -> None:
    assert not _bridge(), f"bridge {cfg.BRIDGE} exists before this test: a node is up"
    # E.g. another Kubernetes on the host: its kube-proxy's KUBE- chains are not ours to remove.
    subprocess.run(["iptables", "-w", "-N", CHAIN], check=True)
    try:
        assert node.reclaim_dead_node(Layout(tmp_path / "cluster")) == []
        assert _exists("iptables", "-w", "-S", CHAIN), "a chain was removed without our bridge"
    finally:
        subprocess.run(["iptables", "-w", "-X", CHAIN], check=False)
