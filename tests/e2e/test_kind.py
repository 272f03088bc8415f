"""The kind workflow end to end (`make images kind-up kind-load deploy e2e kind-down`): build the
three images, create a kind cluster, install the umbrella chart, apply coinfeed-btc.yaml, wait for
Ready, see records on the topics, run the hourly CronJob once and find the hourly rows in the lake.

Needs a Docker engine and kind (and helm); without them every test here is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from coinfeed import versions
from coinfeed.paths import bin_dir

REPO = versions.REPO_ROOT
KIND_SH = REPO / "scripts" / "kind.sh"


def _tool(name: str, version_key: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    built = bin_dir() / f"{name}-{versions.get(version_key)}" / name
    return str(built) if os.access(built, os.X_OK) else None


def _missing_prerequisites() -> list[str]:
    missing = []
    if shutil.which("docker") is None:
        missing.append("docker CLI not installed")
    else:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
        if info.returncode != 0:
            missing.append("the Docker engine is not reachable (`docker info` fails)")
    if _tool("kind", "KIND_VERSION") is None:
        missing.append("kind not found (bash scripts/build-go-tools.sh kind)")
    if _tool("helm", "HELM_VERSION") is None:
        missing.append("helm not found (bash scripts/build-go-tools.sh helm)")
    if shutil.which("kubectl") is None:
        missing.append("kubectl not found")
    return missing


def kind_sh(verb: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["bash", str(KIND_SH), verb],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (
        f"scripts/kind.sh {verb} failed:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def kind_cluster() -> Iterator[None]:
    missing = _missing_prerequisites()
    if missing:
        pytest.skip("kind e2e needs Docker and kind: " + "; ".join(missing))
    kind_sh("images")
    kind_sh("up")
    try:
        kind_sh("load")
        kind_sh("deploy")
        yield
    finally:
        kind_sh("down")


def test_kind_sh_names_what_is_missing() -> None:
    """Each verb checks its prerequisites and fails with a message naming the missing one."""
    missing = _missing_prerequisites()
    if not missing:
        pytest.skip("every prerequisite is present here")
    proc = subprocess.run(["bash", str(KIND_SH), "up"], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "kind.sh:" in proc.stderr
    assert any(word in proc.stderr for word in ("docker", "Docker", "kind", "kubectl"))


def test_feed_ready_records_flow_and_hourly_rows_land_in_the_lake(kind_cluster: None) -> None:
    proc = kind_sh("e2e")
    assert "e2e passed" in proc.stderr
    assert "hourly rows for btc:" in proc.stdout


def test_release_ready_and_helm_tests_pass_on_kind(kind_cluster: None) -> None:
    """The same assertions as the local-node tests (tests/support/e2e_body.py), on kind."""
    from pathlib import Path

    from tests.support.e2e_body import assert_release_ready, helm_test
    from tests.support.localnode import Kube

    kube = Kube(Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config")))
    assert_release_ready(kube, "coinfeed", "zookeeper")
    ok, out = helm_test(kube, "coinfeed", "coinfeed")
    assert ok, out
