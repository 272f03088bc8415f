"""Shared test set-up: markers from the folder, and the real-service fixtures.

Fixtures that start real services live in ``tests/support/`` (one module per service) and are
session-scoped: each service starts once per test run, on free loopback ports, and stops at the end.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.support.kafka",
    "tests.support.apiserver",
    "tests.support.spark",
    "tests.support.pushgateway",
    "tests.support.prometheus",
    "tests.support.localnode",
    "tests.support.helm",
]

_FOLDER_MARKERS = {
    "unit": pytest.mark.unit,
    "integration": pytest.mark.integration,
    "e2e": pytest.mark.e2e,
}


# Integration tests drive real brokers, API servers, Spark and pods on a shared 2-core machine, where
# a rare timing loss (a metadata update not yet on the broker asked) can fail one test in a
# 40-minute run. Each such test gets one rerun, printed as RERUN in the summary so it is never
# silent; a behaviour that is broken fails both runs. Unit tests get none. COINFEED_TEST_RERUNS=0
# turns reruns off (to hunt a flaky test).
_INTEGRATION_RERUNS = int(os.environ.get("COINFEED_TEST_RERUNS", "1"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        rel = Path(str(item.fspath)).relative_to(root)
        marker = _FOLDER_MARKERS.get(rel.parts[0])
        if marker is not None:
            item.add_marker(marker)
        if rel.parts[0] == "integration" and _INTEGRATION_RERUNS > 0:
            item.add_marker(pytest.mark.flaky(reruns=_INTEGRATION_RERUNS, reruns_delay=5))
