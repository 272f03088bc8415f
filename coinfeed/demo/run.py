"""``coinfeed demo run|down``: the whole pipeline on one machine, and its clean stop.

run: fresh local Kafka (ZooKeeper + 3 brokers) -> the topics the operator would create for the
example CoinFeeds -> one replay producer per coin and kind -> the hourly Spark job over every
complete hour -> the table in the terminal and the report under ``out/``. Everything started is
recorded in pid files under the run dir, so ``down`` (or the next ``run``) stops it all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from coinfeed import producer_env
from coinfeed.demo import procs, sample
from coinfeed.demo.monitoring import REPO_ROOT, rule_files
from coinfeed.demo.prometheus import prometheus_config, start_prometheus, start_pushgateway
from coinfeed.devcluster.config import Security
from coinfeed.devcluster.procs import free_ports
from coinfeed.kafka_acls import operator_grants, producer_grants, reader_grants
from coinfeed.kafka_security import KafkaSecurity

if TYPE_CHECKING:
    from coinfeed.devcluster import LocalKafkaCluster

KAFKA_SUBDIR: Final = "kafka"  # the same folder `make kafka-up` uses: `make kafka-status` sees it
HOURLY_NAME: Final = "hourly"
PRODUCER_JOB: Final = "coinfeed-producer"
PUSHGATEWAY_JOB: Final = "pushgateway"
DEFAULT_MANIFESTS: Final = (
    REPO_ROOT / "manifests" / "coinfeed-btc.yaml",
    REPO_ROOT / "manifests" / "coinfeed-eth.yaml",
)
JOB_DELAY: Final = timedelta(minutes=5)  # the CronJob runs at 5 past the hour
PLATFORM_NAMES: Final = {"x": "X", "bluesky": "Bluesky"}


class DemoError(RuntimeError):
    """A demo step failed; the message names the step and the log to read."""


@dataclass(frozen=True)
class Options:
    run_dir: Path
    out_dir: Path
    sample_dir: Path
    manifests: Sequence[Path]
    hours: int | None
    speed: float
    prometheus: bool
    free_ports: bool
    prometheus_port: int
    pushgateway_port: int
    replay_timeout: float
    job_timeout: float
    platforms: Sequence[str] = sample.PLATFORMS
    # sasl_ssl: every client connects as its own SCRAM user with only the ACLs it needs.
    kafka_security: Security = "plaintext"


@dataclass(frozen=True)
class Feed:
    """One coin of the demo: its CoinFeed manifest and the topics the operator derives from it."""

    coin: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Producer:
    name: str
    replay: sample.ReplayFile
    lines: int
    metrics_port: int

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


def port_or_free(port: int) -> int:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return free_ports(1)[0]
    return port


def load_feeds(manifests: Sequence[Path]) -> list[Feed]:
    from coinfeed.operator.spec import parse_spec

    feeds = []
    for path in manifests:
        manifest = yaml.safe_load(path.read_text())
        if not isinstance(manifest, dict) or manifest.get("kind") != "CoinFeed":
            raise DemoError(f"{path} is not a CoinFeed manifest")
        feeds.append(Feed(parse_spec(manifest).coin, manifest))
    return feeds


def producer_argv(p: Producer, bootstrap: str, speed: float, idle: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "coinfeed",
        "producer",
        p.replay.kind,
        "--coin",
        p.replay.coin,
        "--bootstrap",
        bootstrap,
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        str(p.metrics_port),
        "--replay-file",
        str(p.replay.path),
        "--replay-speed",
        str(speed),
        # Kafka timestamps = event times: the hourly job reads the sample's hours by timestamp.
        "--kafka-timestamp",
        "event",
        "--at-end",
        "idle" if idle else "exit",
    ]


def producer_env_for(kind: str) -> dict[str, str]:
    source = producer_env.PRICE_SOURCE if kind == "prices" else producer_env.TWEET_SOURCE
    return {source: "replay", producer_env.LOG_LEVEL: "INFO"}


def hourly_argv(
    coins: Sequence[str],
    window: sample.Window,
    lake: Path,
    bootstrap: str,
    pushgateway: str | None,
) -> list[str]:
    argv = [sys.executable, "-m", "coinfeed", "hourly"]
    for coin in coins:
        argv += ["--coin", coin]
    argv += [
        "--from",
        _hour(window.start),
        "--to",  # inclusive: the last complete hour
        _hour(window.end - sample.HOUR),
        "--lake",
        str(lake),
        "--bootstrap",
        bootstrap,
        "--now",
        _iso(window.end + JOB_DELAY),
        "--no-gaps",  # exactly the sample's hours
    ]
    if pushgateway:
        argv += ["--pushgateway", pushgateway.removeprefix("http://")]
    return argv


def _hour(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def producer_progress(text: str) -> float:
    """Records a producer has handled (acknowledged + skipped + dropped), from its /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    from coinfeed import metric_names as mn

    wanted = {mn.PRODUCER_RECORDS, mn.PRODUCER_RECORDS_SKIPPED, mn.PRODUCER_RECORDS_DROPPED}
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in wanted:
                total += s.value
    return total


def _fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def _log_says(path: Path, phrase: str) -> bool:
    try:
        return phrase in path.read_text(errors="replace")
    except FileNotFoundError:
        return False


def _tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return "(no log)"


# --- down --------------------------------------------------------------------------------------


def down(run_dir: Path, purge: bool = False) -> list[str]:
    """Stop everything a demo in ``run_dir`` started (safe to run twice); names what was running."""
    from coinfeed.devcluster import LocalKafkaCluster

    run_dir = run_dir.resolve()
    stopped = procs.stop_all(run_dir)
    cluster = LocalKafkaCluster.load(run_dir / KAFKA_SUBDIR)
    if cluster is not None:
        stopped += [f"kafka {n}" for n in cluster.down(purge=purge)]
    return stopped


# --- run ---------------------------------------------------------------------------------------


def run(opts: Options) -> int:
    from rich.console import Console

    console = Console()
    started = time.monotonic()
    run_dir = opts.run_dir.resolve()
    try:
        return _run(opts, run_dir, console, started)
    except (DemoError, sample.SampleError) as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        console.print("stopping what the demo started ...")
        down(run_dir)
        return 1
    except KeyboardInterrupt:
        console.print("interrupted: stopping what the demo started ...")
        down(run_dir)
        return 130
    except BaseException:
        down(run_dir)  # an unexpected error must not leave processes behind either
        raise


def _run(opts: Options, run_dir: Path, console: Any, started: float) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from coinfeed.demo import report
    from coinfeed.devcluster import ClusterSpec, LocalKafkaCluster
    from coinfeed.operator.desired import desired_topics

    # A previous demo (finished, failed or interrupted) leaves nothing that disturbs this one.
    leftovers = down(run_dir, purge=True)
    if leftovers:
        console.print(f"stopped the previous demo's processes: {', '.join(leftovers)}")
    for sub in ("lake", "replay", "logs", "checkpoints"):
        shutil.rmtree(run_dir / sub, ignore_errors=True)

    feeds = load_feeds(opts.manifests)
    coins = [f.coin for f in feeds]
    files = sample.find_sample_files(opts.sample_dir, coins, opts.platforms)
    window = sample.complete_hours([sample.span(f)[:2] for f in files], opts.hours)
    console.print(
        f"[bold]coinfeed demo[/]: {', '.join(c.upper() for c in coins)} with "
        f"{' and '.join(PLATFORM_NAMES[p] for p in opts.platforms)} posts, {window.hours} complete "
        f"hours {window.start:%Y-%m-%d %H:%M} - {window.end:%Y-%m-%d %H:%M} UTC, replay x{opts.speed:g}"
    )
    shift = sample.live_shift(window, datetime.now(UTC))
    replays = []
    for f in files:
        dest = run_dir / "replay" / f"{f.coin}-{f.stream}.jsonl"
        n = sample.shorten(f, window, dest, shift)
        replays.append((sample.ReplayFile(f.coin, f.kind, dest, f.platform), n))
    window = sample.Window(window.start + shift, window.end + shift)
    retention = replay_retention_hours(window)
    console.print(
        f"replayed as the latest hours: {window.start:%Y-%m-%d %H:%M} - {window.end:%Y-%m-%d %H:%M}"
        f" UTC (event times moved by whole hours); topic retention {retention} h so Kafka keeps"
        " every replayed hour until the hourly job has read it"
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        # 1. Kafka
        t = progress.add_task("Kafka: ZooKeeper + 3 brokers", total=1)
        if opts.free_ports:
            zk, *brokers = free_ports(4)
            spec = ClusterSpec(
                run_dir / KAFKA_SUBDIR,
                broker_ports=tuple(brokers),
                zookeeper_port=zk,
                security=opts.kafka_security,
            )
        else:
            spec = ClusterSpec(run_dir / KAFKA_SUBDIR, security=opts.kafka_security)
        cluster = LocalKafkaCluster(spec, progress=lambda msg: progress.console.log(msg))
        try:
            cluster.up()
        except Exception as exc:
            raise DemoError(f"Kafka did not start: {exc}") from exc
        bootstrap = cluster.bootstrap
        try:
            users = kafka_users(cluster, [f.coin for f in feeds])
        except Exception as exc:
            raise DemoError(f"creating the Kafka users failed: {exc}") from exc
        progress.update(t, completed=1)

        # 2. topics, decided by the operator's own desired-state function
        t = progress.add_task("topics (operator's desired state)", total=len(feeds) * 2)
        try:
            for feed in feeds:
                desired = desired_topics(with_retention(feed.manifest, retention))
                create_topics(bootstrap, desired, cluster.client_security(users.operator))
                progress.advance(t, len(desired))
        except Exception as exc:
            raise DemoError(f"creating the topics failed: {type(exc).__name__}: {exc}") from exc

        ports = free_ports(len(replays))
        producers = [
            Producer(f"producer-{r.coin}-{r.stream}", r, n, port)
            for (r, n), port in zip(replays, ports, strict=True)
        ]

        # 3. Prometheus + Pushgateway (optional)
        pushgateway = prometheus_url = None
        if opts.prometheus:
            t = progress.add_task("Prometheus + Pushgateway", total=2)
            try:
                pushgateway = start_pushgateway(run_dir, port_or_free(opts.pushgateway_port))
                progress.advance(t)
                config = prometheus_config(
                    {
                        PRODUCER_JOB: [f"127.0.0.1:{p.metrics_port}" for p in producers],
                        PUSHGATEWAY_JOB: [pushgateway.removeprefix("http://")],
                    },
                    honor_labels=[PUSHGATEWAY_JOB],
                    rule_files=rule_files(),
                    scrape_interval="2s",
                )
                prometheus_url = start_prometheus(
                    run_dir, port_or_free(opts.prometheus_port), config
                ).url
                progress.advance(t)
            except Exception as exc:
                raise DemoError(f"starting Prometheus/Pushgateway failed: {exc}") from exc

        # 4. replay producers
        tasks = {
            p.name: progress.add_task(f"replay {p.replay.coin} {p.replay.stream}", total=p.lines)
            for p in producers
        }
        children = {
            p.name: procs.spawn(
                p.name,
                producer_argv(p, bootstrap, opts.speed, idle=opts.prometheus),
                run_dir,
                env=producer_env_for(p.replay.kind)
                | cluster.client_env(users.producers[p.replay.coin]),
            )
            for p in producers
        }
        deadline = time.monotonic() + opts.replay_timeout
        pending = {p.name: p for p in producers}
        while pending:
            for name, p in list(pending.items()):
                text = _fetch(p.metrics_url)
                if text is not None:
                    progress.update(tasks[name], completed=min(p.lines, producer_progress(text)))
                log = procs.log_path(run_dir, name)
                code = children[name].poll()
                if code not in (None, 0):
                    raise DemoError(f"{name} exited with {code}; its log {log}:\n{_tail(log)}")
                if code == 0 or _log_says(log, "replay finished"):
                    progress.update(tasks[name], completed=p.lines)
                    del pending[name]
            if pending and time.monotonic() > deadline:
                raise DemoError(
                    f"replay not finished after {opts.replay_timeout:.0f}s: {', '.join(pending)} "
                    f"(logs under {run_dir / 'logs'})"
                )
            time.sleep(0.5)

        # 5. the hourly job over every complete hour
        t = progress.add_task(f"hourly Spark job ({window.hours} h)", total=None)
        lake = run_dir / "lake"
        job = procs.spawn(
            HOURLY_NAME,
            hourly_argv(coins, window, lake, bootstrap, pushgateway),
            run_dir,
            env={"PYSPARK_PYTHON": sys.executable} | cluster.client_env(users.reader),
        )
        try:
            code = job.wait(timeout=opts.job_timeout)
        except subprocess.TimeoutExpired:
            raise DemoError(f"the hourly job took over {opts.job_timeout:.0f}s") from None
        log = procs.log_path(run_dir, HOURLY_NAME)
        if code != 0:
            raise DemoError(f"the hourly job exited with {code}; its log {log}:\n{_tail(log, 30)}")
        progress.update(t, total=1, completed=1)

    # 6. the result
    try:
        hourly = report.load_hourly(lake)
        prepared = report.prepare(hourly)
        files_written = report.write_report(hourly, opts.out_dir)
    except report.ReportError as exc:
        raise DemoError(str(exc)) from exc
    print_tables(console, prepared, report)
    correlations = report.sentiment_next_return_correlation(prepared)
    for c in correlations:
        r = "n/a" if c.pearson is None else f"{c.pearson:+.3f}"
        console.print(f"sentiment vs next hour's return, {c.coin}: r = {r} over {c.pairs} hours")
    console.print(f"report: {files_written.html}  {files_written.png}  {files_written.csv}")
    console.print(f"Kafka: {bootstrap}   lake: {lake}")
    if prometheus_url:
        console.print(f"Prometheus: {prometheus_url}   Pushgateway: {pushgateway}")
    console.print(
        f"done in {time.monotonic() - started:.0f}s. Stop everything with `make demo-down` "
        f"(python -m coinfeed demo down --run-dir {opts.run_dir})."
    )
    return 0


def replay_retention_hours(window: sample.Window, margin_hours: int = 24) -> int:
    """Retention that covers the whole replayed window, oldest hour included, plus a margin.

    Kafka deletes by record timestamp: with the manifests' 24 h, the first half of a 48-hour
    replay is already expired while it is being written, and a retention check in the middle of
    the replay drops it (seen: 21 of BTC's 48 hours lost in one run, none of ETH's).
    """
    return max(24, window.hours + margin_hours)


def with_retention(manifest: dict[str, Any], hours: int) -> dict[str, Any]:
    """A copy of a CoinFeed manifest whose topics keep at least ``hours`` hours."""
    spec = dict(manifest.get("spec") or {})
    topics = dict(spec.get("topics") or {})
    topics["retentionHours"] = max(int(topics.get("retentionHours", 24)), hours)
    spec["topics"] = topics
    return {**manifest, "spec": spec}


@dataclass(frozen=True)
class KafkaUsers:
    operator: str
    reader: str
    producers: dict[str, str]  # coin -> user


def kafka_users(cluster: LocalKafkaCluster, coins: Sequence[str]) -> KafkaUsers:
    """One Kafka user per client, as the charts make them (with plaintext, names only)."""
    users = KafkaUsers(
        "coinfeed-operator", "coinfeed-spark", {c: f"coinfeed-producer-{c}" for c in coins}
    )
    if cluster.spec.tls:
        cluster.add_user(users.operator, operator_grants())
        cluster.add_user(users.reader, reader_grants())
        for coin, user in users.producers.items():
            cluster.add_user(user, producer_grants(coin))
    return users


def create_topics(
    bootstrap: str, desired: Sequence[Any], security: KafkaSecurity | None = None
) -> None:
    """Make the operator's desired topics exist, through the operator's own topic applier
    (create if missing, already-there is success, config altered, partitions only grown)."""
    from coinfeed.operator.kafka_apply import KafkaTopics

    topics = KafkaTopics(bootstrap, timeout_seconds=30, security=security)
    try:
        plan, _ = topics.reconcile(list(desired))
    finally:
        topics.close()
    if plan.unsupported:
        raise DemoError("; ".join(plan.unsupported))


MARKET_COLUMNS: Final = 6  # hour, close, return, volatility, posts, sentiment; then per platform


def print_tables(console: Any, prepared: Any, report: Any) -> None:
    """Per coin: the market and overall sentiment table, then posts and sentiment per platform
    (two narrow tables fit an 80-column terminal; report.html has them side by side)."""
    from rich.table import Table

    header = report.TABLE_HEADER
    parts = (
        ("by hour (UTC)", list(range(MARKET_COLUMNS))),
        ("posts by platform (UTC)", [0, *range(MARKET_COLUMNS, len(header))]),
    )
    for coin in sorted(prepared["coin"].unique()):
        rows = report.table_rows(prepared, coin)
        for title, cols in parts:
            table = Table(title=f"{coin.upper()} {title}")
            for i in cols:
                table.add_column(header[i], justify="left" if i == 0 else "right", no_wrap=i == 0)
            for row in rows:
                table.add_row(*(row[i] for i in cols))
            console.print(table)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
