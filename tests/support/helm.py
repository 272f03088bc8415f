"""The real helm binary for the tests, on a private copy of charts/.

``helm`` (session fixture): a :class:`Helm` working on a copy of charts/ with the umbrella chart's
dependencies vendored by ``helm dependency build`` (so vendoring touches no checkout). Used by the
chart tests (tests/integration/charts) and the operator tests that install the charts' RBAC.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from coinfeed import versions
from coinfeed.paths import bin_dir
from tests.support.tool import run_tool

REPO = versions.REPO_ROOT
CHARTS = REPO / "charts"
UMBRELLA = "coinfeed"

Obj = dict[str, Any]


class HelmMissingError(RuntimeError):
    pass


def find_helm() -> Path:
    """helm on PATH, else the one ``scripts/build-go-tools.sh helm`` builds into the cache."""
    on_path = shutil.which("helm")
    if on_path:
        return Path(on_path)
    built = bin_dir() / f"helm-{versions.get('HELM_VERSION')}" / "helm"
    if built.is_file() and os.access(built, os.X_OK):
        return built
    raise HelmMissingError(f"helm not on PATH and not at {built}")


def build_helm() -> Path:
    """Build helm from the Go module proxy (minutes, once; cached by version)."""
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-go-tools.sh"), "helm"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise HelmMissingError(f"building helm failed:\n{proc.stderr[-3000:]}")
    return find_helm()


@dataclass(frozen=True)
class Helm:
    """The real helm, working on a private copy of charts/ (so vendoring touches no checkout)."""

    binary: Path
    charts: Path
    home: Path

    def run(
        self, *args: str, check: bool = True, kubeconfig: Path | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            # Keep helm's caches and config out of the user's home.
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        return run_tool([str(self.binary), *args], env=env, timeout=timeout, check=check)

    def chart(self, name: str) -> Path:
        return self.charts / name

    def values_args(self, chart: str, values: Sequence[str], sets: Sequence[str]) -> list[str]:
        out: list[str] = []
        for v in values:
            out += ["-f", str(self.chart(chart) / v)]
        for s in sets:
            out += ["--set", s]
        return out

    def template_text(
        self,
        chart: str,
        *,
        values: Sequence[str] = (),
        sets: Sequence[str] = (),
        release: str = "coinfeed",
        namespace: str = "coinfeed",
        extra: Sequence[str] = (),
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "template",
            release,
            str(self.chart(chart)),
            "--namespace",
            namespace,
            *self.values_args(chart, values, sets),
            *extra,
            check=check,
        )

    def template(self, chart: str, **kwargs: Any) -> list[Obj]:
        return parse_objects(self.template_text(chart, **kwargs).stdout)


def parse_objects(text: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def copy_charts(dest: Path) -> Path:
    """charts/ without vendored dependencies or packaged charts."""
    shutil.copytree(
        CHARTS,
        dest,
        ignore=lambda d, names: [
            n for n in names if n.endswith(".tgz") or (n == "charts" and Path(d) != CHARTS)
        ],
    )
    return dest


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    try:
        binary = find_helm()
    except HelmMissingError as exc:
        if shutil.which("go") is None:
            pytest.skip(f"{exc}; no Go toolchain here to build it (scripts/build-go-tools.sh helm)")
        binary = build_helm()
    work = tmp_path_factory.mktemp("helm")
    h = Helm(binary, copy_charts(work / "charts"), work / "home")
    # The umbrella depends on ../kafka and ../coinfeed-operator: vendor them, as the scripts do.
    h.run("dependency", "build", str(h.chart(UMBRELLA)))
    return h
