"""Prometheus and the Pushgateway (the Debian programs) for the demo and the tests.

:func:`prometheus_config` decides (pure); :func:`start_prometheus` / :func:`start_pushgateway`
start the programs through :mod:`coinfeed.demo.procs`; :class:`PrometheusAPI` queries the HTTP API.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from coinfeed.demo import procs

HOST: Final = "127.0.0.1"
PROMETHEUS_NAME: Final = "prometheus"
PUSHGATEWAY_NAME: Final = "pushgateway"


class ServiceError(RuntimeError):
    """A monitoring program could not be started or queried; the message says why."""


def find_program(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if not found:
        raise ServiceError(f"{name} not found: install the Debian package `{name}`")
    return found


def prometheus_config(
    jobs: Mapping[str, Sequence[str]],
    *,
    honor_labels: Iterable[str] = (),
    rule_files: Sequence[Path] = (),
    scrape_interval: str = "1s",
) -> dict[str, Any]:
    """A config scraping ``jobs`` (job name -> host:port targets) every ``scrape_interval``.

    Jobs named in ``honor_labels`` keep the labels the target exposes: the Pushgateway's ``job``
    and ``coin`` are the pushing job's, not the gateway's.
    """
    honored = set(honor_labels)
    unknown = honored - set(jobs)
    if unknown:
        raise ValueError(f"honor_labels names jobs that are not scraped: {sorted(unknown)}")
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,  # may not exceed the interval
            "evaluation_interval": scrape_interval,
        },
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "honor_labels": job in honored,
                "static_configs": [{"targets": list(targets)}],
            }
            for job, targets in jobs.items()
        ],
    }


@dataclass(frozen=True)
class PrometheusAPI:
    """The HTTP API of a running Prometheus."""

    url: str

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        q = "?" + urllib.parse.urlencode(params) if params else ""
        try:
            with urllib.request.urlopen(self.url + path + q, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ServiceError(f"Prometheus {path} answered {exc.code}: {detail}") from None
        if body.get("status") != "success":
            raise ServiceError(f"Prometheus {path} failed: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector result of ``expr`` (an empty list means no data)."""
        data = self._get("/api/v1/query", {"query": expr})
        result = data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)

    def targets(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/targets")["activeTargets"])

    def rules(self) -> list[dict[str, Any]]:
        """Every recording and alerting rule with its health and last error."""
        return [r for g in self._get("/api/v1/rules")["groups"] for r in g["rules"]]

    def metric_names(self) -> list[str]:
        return list(self._get("/api/v1/label/__name__/values"))

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False


def wait_http(url: str, timeout: float, name: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise ServiceError(f"{name} did not answer {url} within {timeout:.0f}s; its log {log}:\n{tail}")


def start_prometheus(
    run_dir: Path,
    port: int,
    config: Mapping[str, Any],
    *,
    name: str = PROMETHEUS_NAME,
    timeout: float = 60.0,
) -> PrometheusAPI:
    """Start Prometheus with ``config`` and a fresh storage dir under ``run_dir``; wait until ready."""
    base = run_dir.resolve() / name
    storage = base / "data"
    shutil.rmtree(storage, ignore_errors=True)  # a previous run's series would answer queries
    storage.mkdir(parents=True)
    config_file = base / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    argv = [
        find_program("prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address={HOST}:{port}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]
    procs.spawn(name, argv, run_dir)
    url = f"http://{HOST}:{port}"
    wait_http(url + "/-/ready", timeout, "Prometheus", procs.log_path(run_dir.resolve(), name))
    return PrometheusAPI(url)


def start_pushgateway(
    run_dir: Path, port: int, *, name: str = PUSHGATEWAY_NAME, timeout: float = 30.0
) -> str:
    """Start a Pushgateway on ``port``; returns its URL once it answers."""
    argv = [find_program("prometheus-pushgateway"), f"--web.listen-address={HOST}:{port}"]
    procs.spawn(name, argv, run_dir)
    url = f"http://{HOST}:{port}"
    wait_http(url + "/-/ready", timeout, "Pushgateway", procs.log_path(run_dir.resolve(), name))
    return url
