"""Fixtures of the chart tests: ``helm`` (session) works on a private copy of charts/ with the
umbrella chart's dependencies vendored by ``helm dependency build``."""

from __future__ import annotations

import shutil

import pytest

from tests.integration.charts.helmtools import (
    UMBRELLA,
    Helm,
    HelmMissingError,
    build_helm,
    copy_charts,
    find_helm,
)


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
