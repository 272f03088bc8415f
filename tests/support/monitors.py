"""The chart's PodMonitor and ServiceMonitors as a plain Prometheus config, doing what the
Prometheus Operator does with them: the pods (or Service endpoints) each monitor selects, by label
and port name, in the monitor's namespace, become its scrape targets.

Debian's Prometheus is built without Kubernetes service discovery, so the discovery is done here
(:func:`targets`, pure, from listed pods, Services and Endpoints) and handed over as file_sd files
that Prometheus re-reads every few seconds (:func:`write_targets` refreshes them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

KINDS = ("PodMonitor", "ServiceMonitor")


def _matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if selector.get("matchExpressions"):
        raise ValueError("monitor selectors with matchExpressions are not translated")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def jobs(
    monitors: Iterable[Mapping[str, Any]],
) -> list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """(job name, monitor, endpoint) for every endpoint of every monitor."""
    out = []
    for mon in monitors:
        if mon.get("kind") not in KINDS:
            continue
        spec = mon["spec"]
        eps = spec["podMetricsEndpoints"] if mon["kind"] == "PodMonitor" else spec["endpoints"]
        for i, ep in enumerate(eps):
            out.append(
                (
                    f"{mon['kind']}/{mon['metadata']['namespace']}/{mon['metadata']['name']}/{i}",
                    mon,
                    ep,
                )
            )
    return out


def targets(
    mon: Mapping[str, Any],
    ep: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
    endpoints: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """file_sd entries for one monitor endpoint (pure)."""
    ns, selector = mon["metadata"]["namespace"], mon["spec"].get("selector") or {}
    out: list[dict[str, Any]] = []
    if mon["kind"] == "PodMonitor":
        for pod in pods:
            meta, status = pod["metadata"], pod.get("status") or {}
            if meta.get("namespace") != ns or status.get("phase") != "Running":
                continue
            if not status.get("podIP") or not _matches(selector, meta.get("labels") or {}):
                continue
            for c in pod["spec"]["containers"]:
                for p in c.get("ports") or []:
                    if p.get("name") == ep["port"]:
                        out.append({"targets": [f"{status['podIP']}:{p['containerPort']}"],
                                    "labels": {"namespace": ns, "pod": meta["name"]}})  # fmt: skip
        return out
    chosen = {
        s["metadata"]["name"]
        for s in services
        if s["metadata"].get("namespace") == ns
        and _matches(selector, s["metadata"].get("labels") or {})
    }
    for eps in endpoints:
        if eps["metadata"].get("namespace") != ns or eps["metadata"]["name"] not in chosen:
            continue
        for subset in eps.get("subsets") or []:
            for port in subset.get("ports") or []:
                if port.get("name") != ep["port"]:
                    continue
                for addr in subset.get("addresses") or []:
                    labels = {"namespace": ns, "service": eps["metadata"]["name"]}
                    if (addr.get("targetRef") or {}).get("name"):
                        labels["pod"] = addr["targetRef"]["name"]
                    out.append({"targets": [f"{addr['ip']}:{port['port']}"], "labels": labels})
    return out


def _file(sd_dir: Path, job: str) -> Path:
    return sd_dir / (job.replace("/", "_") + ".json")


def prometheus_config(
    monitors: Iterable[Mapping[str, Any]], sd_dir: Path, rule_files: Iterable[Path] = ()
) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "honor_labels": bool(ep.get("honorLabels", False)),
                "metrics_path": ep.get("path", "/metrics"),
                "scrape_interval": "2s",
                "scrape_timeout": "2s",
                "file_sd_configs": [{"files": [str(_file(sd_dir, job))], "refresh_interval": "2s"}],
            }
            for job, _mon, ep in jobs(monitors)
        ],
    }


def write_targets(
    monitors: Iterable[Mapping[str, Any]],
    sd_dir: Path,
    pods: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
    endpoints: Sequence[Mapping[str, Any]],
) -> dict[str, int]:
    """Rewrite every job's file_sd file; returns targets per job."""
    sd_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for job, mon, ep in jobs(monitors):
        found = targets(mon, ep, pods, services, endpoints)
        tmp = _file(sd_dir, job).with_suffix(".tmp")
        tmp.write_text(json.dumps(found))
        tmp.replace(_file(sd_dir, job))  # atomic: Prometheus never reads half a file
        counts[job] = len(found)
    return counts
