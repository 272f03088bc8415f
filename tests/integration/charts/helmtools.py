"""Helpers for the chart tests: the real helm binary, a private copy of charts/ with the umbrella's
dependencies vendored, rendering to objects, and the chart/values-file matrix."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coinfeed import versions
from coinfeed.paths import bin_dir

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


def chart_names() -> list[str]:
    """Every chart under charts/ (folders with a Chart.yaml)."""
    return sorted(p.parent.name for p in CHARTS.glob("*/Chart.yaml"))


def shipped_values(chart: str) -> list[str]:
    """The chart's shipped values files, relative to the chart: values-*.yaml and ci/*.yaml."""
    root = CHARTS / chart
    files = [*root.glob("values-*.yaml"), *root.glob("ci/*.yaml")]
    return sorted(str(f.relative_to(root)) for f in files)


def lint_matrix() -> list[tuple[str, str | None]]:
    """(chart, values file or None for the defaults) for every chart and shipped values file."""
    return [(c, v) for c in chart_names() for v in [None, *shipped_values(c)]]


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
        proc = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
            )
        return proc

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


def pod_spec(obj: Obj) -> Obj | None:
    """The pod spec of a Pod or of a workload's template (None for other kinds)."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj["spec"]  # type: ignore[no-any-return]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return obj["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def by_kind(objs: Sequence[Obj], kind: str) -> Iterator[Obj]:
    return (o for o in objs if o.get("kind") == kind)


def find(objs: Sequence[Obj], kind: str, name: str) -> Obj:
    for o in objs:
        if o.get("kind") == kind and o["metadata"]["name"] == name:
            return o
    raise AssertionError(
        f"no {kind} {name!r} among {[(o.get('kind'), o['metadata']['name']) for o in objs]}"
    )
