"""tests/support/monitors.py: the chart's monitors as plain Prometheus service discovery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.monitors import scrape_configs

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


def test_pod_monitor_keeps_selected_pods_on_the_named_port() -> None:
    (job,) = scrape_configs([POD_MONITOR], Path("/k"))
    assert job["kubernetes_sd_configs"] == [
        {"role": "pod", "kubeconfig_file": "/k", "namespaces": {"names": ["coinfeed"]}}
    ]
    keep = [r for r in job["relabel_configs"] if r["action"] == "keep"]
    assert keep[0] == {
        "action": "keep",
        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
        "regex": r"coinfeed\-producer",
    }
    assert keep[1]["source_labels"] == ["__meta_kubernetes_pod_container_port_name"]
    assert keep[1]["regex"] == "metrics"
    assert job["honor_labels"] is False


def test_service_monitor_uses_endpoints_and_honours_labels() -> None:
    (job,) = scrape_configs([SERVICE_MONITOR, {"kind": "ConfigMap"}], Path("/k"))
    assert job["kubernetes_sd_configs"][0]["role"] == "endpoints"
    assert job["honor_labels"] is True
    sources = [r["source_labels"][0] for r in job["relabel_configs"] if r["action"] == "keep"]
    assert sources == [
        "__meta_kubernetes_service_label_app_kubernetes_io_component",
        "__meta_kubernetes_endpoint_port_name",
    ]


def test_untranslatable_selectors_are_refused() -> None:
    mon = {**POD_MONITOR, "spec": {**POD_MONITOR["spec"], "selector": {"matchExpressions": [{}]}}}
    with pytest.raises(ValueError, match="matchExpressions"):
        scrape_configs([mon], Path("/k"))
