"""Installed code reads the pinned versions from the package, never from the repository (the
hourly job's image has no repository files)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from coinfeed import versions

REPO = versions.REPO_ROOT


def test_the_built_wheel_carries_versions_env(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("coinfeed-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = zf.read("coinfeed/versions.env").decode()
    assert shipped == (REPO / "versions.env").read_text()
    assert versions.parse_versions(shipped)["SPARK_VERSION"]


def test_an_install_without_it_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(versions, "VERSIONS_FILE", tmp_path / "versions.env")
    versions.versions.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match=r"versions\.env is missing"):
            versions.get("SPARK_VERSION")
    finally:
        versions.versions.cache_clear()
