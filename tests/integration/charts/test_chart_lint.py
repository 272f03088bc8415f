"""Static validation: helm lint --strict on every chart and shipped values file, shellcheck on
every shell script, yamllint on manifests/ and the charts' YAML, Checkov over every chart rendering."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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


PRIVILEGED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad, namespace: coinfeed}
spec:
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers:
        - name: bad
          image: busybox:latest
          securityContext: {privileged: true}
"""


def test_checkov_passes_every_rendering_and_refuses_a_privileged_pod(
    helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The manifest security lint of `make lint` (kube-linter is not served here; Checkov from
    PyPI is), over every chart x values file, with the exceptions justified in .checkov.yaml."""
    version = versions.get("CHECKOV_VERSION")
    binary = bin_dir().parent / "tools" / f"checkov-{version}" / "bin" / "checkov"
    assert os.access(binary, os.X_OK), f"checkov {version} missing at {binary}: run `make setup`"
    out = tmp_path_factory.mktemp("checkov")
    for chart, values in lint_matrix():
        rendered = helm.template_text(chart, values=[values] if values else []).stdout
        (
            out / f"{chart.replace('/', '-')}-{(values or 'defaults').replace('/', '-')}.yaml"
        ).write_text(rendered)

    def checkov(directory: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), "--config-file", str(REPO / ".checkov.yaml"), "-d", str(directory),
             "--compact", "--quiet"],
            capture_output=True, text=True, check=False, cwd=REPO,
        )  # fmt: skip

    clean = checkov(out)
    assert clean.returncode == 0, clean.stdout[-4000:] + clean.stderr[-2000:]
    bad = tmp_path_factory.mktemp("checkov-bad")
    (bad / "bad.yaml").write_text(PRIVILEGED)
    refused = checkov(bad)
    assert refused.returncode != 0, refused.stdout
    assert "CKV_K8S_16" in refused.stdout  # "Container should not be privileged"
