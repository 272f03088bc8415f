"""Shared test set-up: markers from the folder, and the real-service fixtures.

Fixtures that start real services live in ``tests/support/`` (one module per service) and are
session-scoped: each service starts once per test run, on free loopback ports, and stops at the end.
"""

from __future__ import annotations

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        rel = Path(str(item.fspath)).relative_to(root)
        marker = _FOLDER_MARKERS.get(rel.parts[0])
        if marker is not None:
            item.add_marker(marker)
