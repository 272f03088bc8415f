"""tests/support/monitors.py: the chart's monitors as Prometheus file_sd targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.monitors import jobs, prometheus_config, targets

POD_MONITOR: dict[str, Any] = {
    "kind": "PodMonitor",
    "metadata": {"name": "coinfeed-producers", "namespace": "coinfeed"},
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "coinfeed-producer"}},
        "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics"}],
    },
}
SERVICE_MONITOR: dict[str, Any] = {
    "kind": "ServiceMonitor",
    "metadata": {"name": "coinfeed-pushgateway", "namespace": "coinfeed"},
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/component": "pushgateway"}},
        "endpoints": [{"port": "http", "honorLabels": True}],
    },
}


def pod(name: str, ns: str, labels: dict[str, str], phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"ports": [{"name": "metrics", "containerPort": 9400},
                                           {"name": "other", "containerPort": 9401}]}]},
        "status": {"phase": phase, "podIP": f"10.0.0.{len(name)}"},
    }  # fmt: skip


def test_pod_monitor_selects_running_pods_of_its_namespace_on_the_named_port() -> None:
    producer = {"app.kubernetes.io/name": "coinfeed-producer"}
    pods = [
        pod("btc", "coinfeed", producer),
        pod("done", "coinfeed", producer, phase="Succeeded"),
        pod("elsewhere", "other", producer),
        pod("kafka", "coinfeed", {"app.kubernetes.io/name": "kafka"}),
    ]
    (_job, mon, ep) = jobs([POD_MONITOR])[0]
    got = targets(mon, ep, pods, [], [])
    assert got == [
        {"targets": ["10.0.0.3:9400"], "labels": {"namespace": "coinfeed", "pod": "btc"}}
    ]


def test_service_monitor_uses_the_selected_services_endpoints_and_honours_labels(
    tmp_path: Path,
) -> None:
    services = [
        {"metadata": {"name": "pg", "namespace": "coinfeed",
                      "labels": {"app.kubernetes.io/component": "pushgateway"}}},
        {"metadata": {"name": "other", "namespace": "coinfeed", "labels": {}}},
    ]  # fmt: skip
    endpoints = [
        {"metadata": {"name": name, "namespace": "coinfeed"},
         "subsets": [{"ports": [{"name": "http", "port": 9091}],
                      "addresses": [{"ip": ip, "targetRef": {"name": f"{name}-0"}}]}]}
        for name, ip in (("pg", "10.0.0.7"), ("other", "10.0.0.8"))
    ]  # fmt: skip
    (_job, mon, ep) = jobs([SERVICE_MONITOR, {"kind": "ConfigMap"}])[0]
    assert targets(mon, ep, [], services, endpoints) == [
        {
            "targets": ["10.0.0.7:9091"],
            "labels": {"namespace": "coinfeed", "service": "pg", "pod": "pg-0"},
        }
    ]
    (scrape,) = prometheus_config([SERVICE_MONITOR], tmp_path)["scrape_configs"]
    assert scrape["honor_labels"] is True
    assert scrape["file_sd_configs"][0]["files"][0].startswith(str(tmp_path))


def test_untranslatable_selectors_are_refused() -> None:
    mon = {**POD_MONITOR, "spec": {**POD_MONITOR["spec"], "selector": {"matchExpressions": [{}]}}}
    (_job, m, ep) = jobs([mon])[0]
    with pytest.raises(ValueError, match="matchExpressions"):
        targets(m, ep, [pod("a", "coinfeed", {})], [], [])
