"""Static validation: helm lint --strict on every chart and shipped values file, shellcheck on
every shell script, yamllint on manifests/ and the charts' YAML, kube-linter when it exists."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from coinfeed import versions
from coinfeed.paths import bin_dir
from tests.integration.charts.helmtools import CHARTS, REPO, Helm, lint_matrix


@pytest.mark.parametrize(("chart", "values"), lint_matrix(), ids=lambda x: x or "defaults")
def test_helm_lint_strict(helm: Helm, chart: str, values: str | None) -> None:
    args = ["lint", "--strict", str(helm.chart(chart))]
    if values:
        args += ["-f", str(helm.chart(chart) / values)]
    proc = helm.run(*args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_every_chart_is_linted() -> None:
    charts = {c for c, _ in lint_matrix()}
    assert {"kafka", "coinfeed", "coinfeed-operator"} <= charts


def _tracked_and_new(*patterns: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *patterns],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted({p for p in out if (REPO / p).is_file()})


def test_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    scripts = _tracked_and_new("*.sh", ".ci/run")
    assert "scripts/kind.sh" in scripts and "scripts/lint-static.sh" in scripts
    assert "charts/kafka/files/kafka-start.sh" in scripts
    proc = subprocess.run(
        ["shellcheck", "-x", "--source-path=SCRIPTDIR", *scripts],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_yamllint_clean() -> None:
    if shutil.which("yamllint") is None:
        pytest.skip("yamllint not installed (apt-get install yamllint)")
    files = ["manifests/", ".kube-linter.yaml"]
    for chart in CHARTS.glob("*/Chart.yaml"):
        root = chart.parent
        files += [str(p.relative_to(REPO)) for p in [chart, *root.glob("values*.yaml")]]
        files += [
            str(p.relative_to(REPO)) for p in [*root.glob("ci/*.yaml"), *root.glob("crds/*.yaml")]
        ]
    proc = subprocess.run(
        ["yamllint", "-c", ".yamllint", "--strict", *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kube_linter_clean(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> None:
    version = versions.get("KUBE_LINTER_VERSION")
    binary = shutil.which("kube-linter") or str(
        bin_dir() / f"kube-linter-{version}" / "kube-linter"
    )
    if not os.access(binary, os.X_OK):
        pytest.skip(
            f"kube-linter {version} not installed: the Go module proxy reachable here does not "
            "serve golang.stackrox.io/kube-linter (scripts/build-go-tools.sh kube-linter); "
            "test_chart_render.py checks the security, resource and probe rules meanwhile"
        )
    out = tmp_path_factory.mktemp("kube-linter")
    for chart, values in lint_matrix():
        rendered = helm.template_text(chart, values=[values] if values else []).stdout
        path = out / f"{chart}-{(values or 'defaults').replace('/', '-')}"
        path.write_text(rendered)
        proc = subprocess.run(
            [binary, "lint", "--config", str(REPO / ".kube-linter.yaml"), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{chart} {values}:\n{proc.stdout}{proc.stderr}"
