"""`coinfeed demo run --prometheus` from a clean state on a 2-hour sample, then:

- the terminal table's CSV and the report hold exactly the expected coin-hours;
- every dashboard panel's query returns data through a real Prometheus scraping the demo's
  replay producers, its Pushgateway (the hourly job's metrics), an X API v2 tweet producer against
  a local fake (rate-limit headers) and the operator's metrics code served on /metrics;
- `coinfeed demo down` leaves no process behind.

Slow (Kafka + Spark): one demo run serves every test here.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer

from coinfeed import producer_env
from coinfeed.demo import monitoring, procs
from coinfeed.demo import run as demo
from coinfeed.demo.prometheus import PrometheusAPI
from coinfeed.devcluster import LocalKafkaCluster
from coinfeed.metrics import HealthServer, new_registry
from coinfeed.operator.opmetrics import OperatorMetrics
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusFactory
from tests.unit.producers.fakes import FakeX, x_tweet

HOURS = 2
REPO = monitoring.REPO_ROOT


@dataclass(frozen=True)
class DemoRun:
    run_dir: Path
    out_dir: Path
    started_at: datetime
    output: str
    bootstrap: str
    producer_targets: list[str]
    pushgateway: str


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    base = tmp_path_factory.mktemp("demo")
    run_dir, out_dir = base / "run", base / "out"
    started_at = datetime.now(UTC)
    argv = [
        sys.executable, "-m", "coinfeed", "demo", "run",
        "--run-dir", str(run_dir), "--out", str(out_dir),
        "--hours", str(HOURS), "--speed", "0", "--free-ports", "--prometheus",
        "--prometheus-port", str(free_port()), "--pushgateway-port", str(free_port()),
    ]  # fmt: skip
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=REPO)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        config = yaml.safe_load((run_dir / "prometheus" / "prometheus.yml").read_text())
        jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
        cluster = LocalKafkaCluster.load(run_dir / "kafka")
        assert cluster is not None
        yield DemoRun(
            run_dir,
            out_dir,
            started_at,
            result.stdout,
            cluster.bootstrap,
            jobs[demo.PRODUCER_JOB],
            jobs[demo.PUSHGATEWAY_JOB][0],
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "coinfeed", "demo", "down", "--run-dir", str(run_dir)],
            timeout=300,
            cwd=REPO,
        )


def expected_hours(started_at: datetime) -> list[str]:
    """The demo replays the sample as the hours just before the current one."""
    end = started_at.replace(minute=0, second=0, microsecond=0)
    return [(end - timedelta(hours=HOURS - i)).strftime("%Y-%m-%d %H:00") for i in range(HOURS)]


def test_demo_table_and_report_hold_the_expected_hours(demo_run: DemoRun) -> None:
    hours = expected_hours(demo_run.started_at)
    with (demo_run.out_dir / "hourly.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    got = sorted((r["coin"], r["hour_start"][:13].replace("T", " ") + ":00") for r in rows)
    assert got == sorted((c, h) for c in ("btc", "eth") for h in hours)
    for r in rows:
        assert float(r["close"]) > 0 and int(r["tweet_count"]) > 0, r
        # both platforms replayed: the hour's posts are split between them
        assert int(r["x_post_count"]) > 0 and int(r["bluesky_post_count"]) > 0, r
        assert int(r["x_post_count"]) + int(r["bluesky_post_count"]) == int(r["tweet_count"])
    page = (demo_run.out_dir / "report.html").read_text()
    for h in hours:
        assert page.count(f"<tr><td>{h}</td>") == 2  # one row per coin
        # per coin, a row in the market table and one in the per-platform table
        assert demo_run.output.count(f"│ {h} │") == 4
    assert (demo_run.out_dir / "report.png").read_bytes().startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def x_api_producer(demo_run: DemoRun) -> Iterator[str]:
    """A btc tweet producer on the X API v2 source (a local fake): the only source with a
    rate-limit budget to show."""
    server = HTTPServer(host="127.0.0.1", port=free_port())
    server.start()
    fake = FakeX(remaining=449).install(server)
    fake.add(*(x_tweet(9_000_000 + i, author=i % 3 + 1) for i in range(5)))
    port = free_port()
    env = {**os.environ, producer_env.X_BEARER_TOKEN: "test-token"}
    argv = [
        sys.executable, "-m", "coinfeed", "producer", "tweets", "--coin", "btc",
        "--source", "x-api", "--x-api-base-url", server.url_for("").rstrip("/"),
        "--bootstrap", demo_run.bootstrap, "--metrics-host", "127.0.0.1",
        "--metrics-port", str(port), "--poll-interval", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        server.stop()


@pytest.fixture(scope="module")
def operator_metrics() -> Iterator[str]:
    """The operator's metrics code (coinfeed.operator.opmetrics), observing a successful and a
    failed reconcile, served on /metrics. Not the operator reconciling against an API server."""
    registry = new_registry()
    metrics = OperatorMetrics(registry)
    metrics.observe("default/btc", "ok", "", 0.3, True)
    metrics.observe("default/eth", "error", "KafkaUnavailable", 1.2, False)
    server = HealthServer(registry, free_port(), host="127.0.0.1").start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop()


def wait_for_data(prom: PrometheusAPI, expr: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not prom.query(expr):
        assert time.monotonic() < deadline, f"Prometheus never returned data for {expr}"
        time.sleep(1)


def test_every_dashboard_panel_returns_data(
    demo_run: DemoRun,
    x_api_producer: str,
    operator_metrics: str,
    prometheus_server: PrometheusFactory,
) -> None:
    prom = prometheus_server(
        {
            "coinfeed-producer": [*demo_run.producer_targets, x_api_producer],
            "coinfeed-operator": [operator_metrics],
            "pushgateway": [demo_run.pushgateway],
        },
        honor_labels=["pushgateway"],
    )
    # every target scraped, and enough samples for rate() over the panels' windows
    # per coin: prices, X posts and Bluesky posts replayed; + the X producer, operator, Pushgateway
    assert len(demo_run.producer_targets) == 6
    wait_for_data(prom, f"count(up == 1) == {len(demo_run.producer_targets) + 3}")
    wait_for_data(prom, "coinfeed_producer_ratelimit_remaining")
    wait_for_data(prom, 'count_over_time(up{job="pushgateway"}[5m]) >= 5')
    checked, empty = monitoring.empty_panels(prom.query)
    assert checked > 20
    assert not empty, "panels whose query returns no data:\n" + "\n".join(empty)
    # the coin variable's values come from the data
    coins = {r["metric"]["coin"] for r in prom.query("coinfeed_hourly_close_price")}
    assert coins == {"btc", "eth"}


def test_demo_down_leaves_no_process(demo_run: DemoRun) -> None:
    assert procs.running(demo_run.run_dir), "the demo should still be running before down"
    result = subprocess.run(
        [sys.executable, "-m", "coinfeed", "demo", "down", "--run-dir", str(demo_run.run_dir)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert procs.running(demo_run.run_dir) == {}
    cluster = LocalKafkaCluster.load(demo_run.run_dir / "kafka")
    assert cluster is not None
    assert not any(cluster.alive(n) for n in cluster.spec.node_names())
    # no process started by the demo is left (producers, hourly job, Prometheus, Pushgateway)
    ours = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and procs.is_ours(int(p.name), demo_run.run_dir)
    ]
    assert ours == []
