"""The Prometheus fixture and the demo's Pushgateway launcher, against each other for real."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from coinfeed.demo import procs
from coinfeed.demo.prometheus import start_pushgateway
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusFactory


def test_prometheus_scrapes_a_pushed_metric(
    prometheus_server: PrometheusFactory, tmp_path: Path
) -> None:
    gateway = start_pushgateway(tmp_path, free_port())
    try:
        body = b"# TYPE coinfeed_fixture_probe gauge\ncoinfeed_fixture_probe 42\n"
        req = urllib.request.Request(
            f"{gateway}/metrics/job/coinfeed_hourly/coin/btc", data=body, method="PUT"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status in (200, 202)
        prom = prometheus_server(
            {"pushgateway": [gateway.removeprefix("http://")]}, honor_labels=["pushgateway"]
        )
        deadline = time.monotonic() + 60
        result: list[dict[str, object]] = []
        while not result and time.monotonic() < deadline:
            result = prom.query("coinfeed_fixture_probe")
            time.sleep(0.5)
        assert result, "Prometheus never scraped the pushed metric"
        labels = result[0]["metric"]
        assert isinstance(labels, dict)
        # honor_labels keeps the pusher's grouping key, not the gateway's job name
        assert labels["job"] == "coinfeed_hourly" and labels["coin"] == "btc"
        value = result[0]["value"]
        assert isinstance(value, list) and value[1] == "42"
    finally:
        procs.stop("pushgateway", tmp_path)
    assert procs.running(tmp_path) == {}
