"""The distribution the images install carries no development harness: no API-server or node
harness, no operator test harness, nothing that fakes Kubernetes (they live in localnode/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from coinfeed.versions import REPO_ROOT


def test_the_wheel_has_no_dev_harness_but_the_runtime_modules(tmp_path: Path) -> None:
    # Built from what the images' build context holds (.dockerignore), in a fresh folder: an
    # in-tree build would reuse a stale build/ directory.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "versions.env"):
        shutil.copy2(REPO_ROOT / name, src / name)
    for name in ("coinfeed", "producers", "operator", "spark"):
        shutil.copytree(
            REPO_ROOT / name,
            src / name,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("coinfeed-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    harnesses = [
        n
        for n in names
        if n.startswith("localnode/")
        or n.endswith(("/apiserver.py", "/harness.py", "/operator_harness.py"))
        or "/tests/" in n
    ]
    assert harnesses == []
    # What the images run is there (the check above would pass on an empty wheel).
    for module in (
        "coinfeed/operator/reconcile.py",
        "coinfeed/producers/runner.py",
        "coinfeed/spark/hourly.py",
        "coinfeed/pinned_versions.py",
        "coinfeed/devcluster/pki.py",
    ):
        assert module in names, module
