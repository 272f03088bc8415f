"""The chart's PodMonitor and ServiceMonitors as a plain Prometheus config, the way the Prometheus
Operator turns them into Kubernetes service discovery: a pod (or endpoints) role per monitor, kept
by the monitor's label selector and port name, in the monitor's namespace.

So a Prometheus without the operator (Debian's, on the host of the local node) scrapes exactly what
the rendered monitors select; a selector that matches nothing leaves its job without targets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROLE = {"PodMonitor": "pod", "ServiceMonitor": "endpoints"}


def _meta_label(role: str, label: str) -> str:
    # Prometheus' SD turns every character outside [a-zA-Z0-9_] into "_".
    kind = "pod" if role == "pod" else "service"
    return f"__meta_kubernetes_{kind}_label_{re.sub(r'[^a-zA-Z0-9_]', '_', label)}"


def scrape_configs(
    monitors: Iterable[Mapping[str, Any]], kubeconfig: Path, interval: str = "2s"
) -> list[dict[str, Any]]:
    """One scrape config per endpoint of every PodMonitor/ServiceMonitor in ``monitors``."""
    out: list[dict[str, Any]] = []
    for mon in monitors:
        kind = mon.get("kind", "")
        if kind not in ROLE:
            continue
        role = ROLE[kind]
        meta, spec = mon["metadata"], mon["spec"]
        namespace = meta["namespace"]
        endpoints = spec["podMetricsEndpoints"] if role == "pod" else spec["endpoints"]
        selector = spec.get("selector", {})
        if selector.get("matchExpressions"):
            raise ValueError(f"{kind} {meta['name']}: matchExpressions are not translated")
        for i, ep in enumerate(endpoints):
            relabel: list[dict[str, Any]] = [
                {
                    "action": "keep",
                    "source_labels": [_meta_label(role, key)],
                    "regex": re.escape(str(value)),
                }
                for key, value in sorted(selector.get("matchLabels", {}).items())
            ]
            port_label = (
                "__meta_kubernetes_pod_container_port_name"
                if role == "pod"
                else "__meta_kubernetes_endpoint_port_name"
            )
            relabel.append({"action": "keep", "source_labels": [port_label], "regex": ep["port"]})
            if role == "pod":
                # As the Prometheus Operator does: finished pods are no targets.
                relabel.append(
                    {
                        "action": "drop",
                        "source_labels": ["__meta_kubernetes_pod_phase"],
                        "regex": "(Failed|Succeeded)",
                    }
                )
            relabel += [
                {
                    "action": "replace",
                    "source_labels": ["__meta_kubernetes_namespace"],
                    "target_label": "namespace",
                },
                {
                    "action": "replace",
                    "source_labels": ["__meta_kubernetes_pod_name"],
                    "target_label": "pod",
                },
            ]
            out.append(
                {
                    "job_name": f"{kind}/{namespace}/{meta['name']}/{i}",
                    "honor_labels": bool(ep.get("honorLabels", False)),
                    "metrics_path": ep.get("path", "/metrics"),
                    "scrape_interval": interval,
                    "scrape_timeout": interval,
                    "kubernetes_sd_configs": [
                        {
                            "role": role,
                            "kubeconfig_file": str(kubeconfig),
                            "namespaces": {"names": [namespace]},
                        }
                    ],
                    "relabel_configs": relabel,
                }
            )
    return out


def prometheus_config(
    monitors: Iterable[Mapping[str, Any]], kubeconfig: Path, rule_files: Iterable[Path] = ()
) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": scrape_configs(monitors, kubeconfig),
    }
