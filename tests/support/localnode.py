"""The local single-node Kubernetes cluster as a test fixture, and a thin kubectl/helm wrapper.

``local_node`` (session): `localnode up` in a run folder of the test session, `localnode down` at
the end, and a check that nothing of ours was left on the machine (processes, mounts, bridge,
iptables chains, network namespaces) and that the host sysctls are back. Only one node can run on
a machine (fixed bridge and addresses): if one is already up (`make cluster-up`), the fixture
fails and says so rather than touching it; what a dead node left (its processes gone, e.g. a run
killed before its down) is removed first.

``coinfeed_release`` (session): `scripts/deploy-local.sh` (images built and loaded, namespace
labelled Pod Security enforce=restricted, umbrella chart with values-local.yaml, every pod Ready).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from coinfeed.paths import bin_dir
from localnode import config as cfg
from localnode import node
from localnode.config import Layout
from tests.support.tool import run_tool

REPO = node.ROOT
NAMESPACE = "coinfeed"
RELEASE = "coinfeed"


@dataclass
class Kube:
    """kubectl and helm of the pinned release, against one kubeconfig."""

    kubeconfig: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def run(
        self,
        tool: str,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        binary = {
            "kubectl": str(node.envtest_dir() / "kubectl"),
            "helm": str(bin_dir() / f"helm-{node.version('HELM_VERSION')}" / "helm"),
        }[tool]
        return run_tool([binary, *args], env=self.env, timeout=timeout, stdin=stdin, check=check)

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **kw)

    def helm(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, **kw)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def pods(self, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        args = ["-n", namespace, "pods"] + (["-l", selector] if selector else [])
        items: list[dict[str, Any]] = self.get(*args)["items"]
        return items

    def delete_namespace(self, namespace: str) -> None:
        """Delete ``namespace`` and wait until it is gone and its volumes are released (the
        provisioner deletes a claim's volume, reclaimPolicy Delete, once the claim is gone)."""
        self.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        self.wait_until(
            f"namespace {namespace} gone",
            lambda: self.kubectl("get", "namespace", namespace, check=False).returncode != 0,
            timeout=300,
        )

        def volumes_released() -> bool:
            return not [
                pv["metadata"]["name"]
                for pv in self.get("pv")["items"]
                if (pv["spec"].get("claimRef") or {}).get("namespace") == namespace
            ]

        self.wait_until(f"the volumes of {namespace} released", volumes_released, timeout=180)

    def wait_until(self, what: str, check: Any, timeout: float = 300, interval: float = 2) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@dataclass
class LocalNode:
    layout: Layout
    kube: Kube
    sysctls_before: dict[str, str | None]


@pytest.fixture(scope="session")
def local_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    reuse = os.environ.get("COINFEED_TEST_REUSE_NODE")
    if reuse:
        # Development loop only: tests against a node started with `make cluster-up` (its run
        # folder given here), which they neither start nor stop. CI never sets this.
        layout = Layout(Path(reuse))
        yield LocalNode(layout, Kube(layout.kubeconfig), {})
        return
    layout = Layout(tmp_path_factory.mktemp("cluster"))
    # Before the image builds, and not left to node.up: a live node is not ours to stop (the
    # teardown's down would), and a dead one's leftovers (a run killed before its down, e.g. a CI
    # job stopped mid-suite on a reused machine) would make every node test fail.
    try:
        reclaimed = node.reclaim_dead_node(layout)
    except node.NodeError as exc:
        pytest.fail(str(exc))
    if reclaimed:
        print(f"local node: removed what a dead node left: {', '.join(reclaimed)}")
    # The image builds may start our own dockerd (scripts/docker-engine.sh); stop it afterwards
    # unless it was already running before the tests.
    dockerd_pid = REPO / "run" / "docker" / "dockerd.pid"
    dockerd_was_running = dockerd_pid.exists()
    problems = node.missing_prerequisites()
    assert not problems, "the local node cannot start here:\n" + "\n".join(problems)
    build = subprocess.run(
        ["bash", str(REPO / "scripts" / "base-images.sh"), "node"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, f"building the node's images failed:\n{build.stderr[-3000:]}"
    before = {name: node.read_sysctl(name) for name in cfg.SYSCTLS}
    try:
        node.up(layout)
        yield LocalNode(layout, Kube(layout.kubeconfig), before)
    finally:
        node.down(layout)
        if not dockerd_was_running and dockerd_pid.exists():
            subprocess.run(
                ["bash", str(REPO / "scripts" / "docker-engine.sh"), "stop"], check=False
            )
    left = node.leftovers(layout)
    after = {name: node.read_sysctl(name) for name in cfg.SYSCTLS}
    assert not left, f"cluster down left these behind: {left}"
    assert after == before, f"host sysctls not restored: before {before}, after {after}"


# Producers of x-api feeds talk to the fake X API the feed tests start in the namespace
# (tests/support/fake_apis_pod.py); no other feed uses it.
TEST_VALUES = "--set operator.producer.xApiBaseUrl=http://fake-apis:8080"


def deploy(
    local: LocalNode, namespace: str, kafka_mode: str = "zookeeper", extra_values: str = ""
) -> str:
    """scripts/deploy-local.sh into ``namespace`` (``extra_values``: more helm -f/--set
    arguments); returns helm's output (warnings included)."""
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "deploy-local.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        env={
            **os.environ,
            "CLUSTER_RUN_DIR": str(local.layout.run_dir),
            "NAMESPACE": namespace,
            "KAFKA_MODE": kafka_mode,
            "PY": str(REPO / ".venv" / "bin" / "python"),
            "EXTRA_VALUES": f"{TEST_VALUES} {extra_values}".strip(),
        },
    )
    assert proc.returncode == 0, (
        f"deploy-local failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return (local.layout.run_dir / f"helm-install-{namespace}.log").read_text()


@pytest.fixture(scope="session")
def coinfeed_release(local_node: LocalNode) -> Iterator[tuple[LocalNode, str]]:
    """The umbrella chart (ZooKeeper mode) in namespace coinfeed; yields (node, helm output)."""
    output = deploy(local_node, NAMESPACE)
    yield local_node, output
