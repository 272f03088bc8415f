"""``prometheus_server``: start Debian's ``prometheus`` on a free loopback port for a test.

A session-scoped factory: ``prometheus_server({"producers": ["127.0.0.1:9400"]}, honor_labels=
["pushgateway"], rule_files=[...])`` starts one Prometheus with a generated config (scrape every
second), a fresh storage dir under pytest's tmp dir, and returns a
:class:`coinfeed.demo.prometheus.PrometheusAPI` (``.url``, ``.query(expr)``, ``.targets()``).
Every Prometheus it started is stopped when the session ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from coinfeed.demo import procs
from coinfeed.demo.prometheus import PrometheusAPI, prometheus_config, start_prometheus
from tests.support.ports import free_port


class PrometheusFactory(Protocol):
    def __call__(
        self,
        jobs: Mapping[str, Sequence[str]],
        *,
        honor_labels: Iterable[str] = (),
        rule_files: Sequence[Path] = (),
        scrape_interval: str = "1s",
    ) -> PrometheusAPI: ...


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusFactory]:
    base = tmp_path_factory.mktemp("prometheus")
    counter = itertools.count()
    started: list[str] = []

    def start(
        jobs: Mapping[str, Sequence[str]],
        *,
        honor_labels: Iterable[str] = (),
        rule_files: Sequence[Path] = (),
        scrape_interval: str = "1s",
    ) -> PrometheusAPI:
        name = f"prometheus-{next(counter)}"
        config = prometheus_config(
            jobs, honor_labels=honor_labels, rule_files=rule_files, scrape_interval=scrape_interval
        )
        started.append(name)
        return start_prometheus(base, free_port(), config, name=name)

    try:
        yield start
    finally:
        for name in started:
            procs.stop(name, base)
