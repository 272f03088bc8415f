"""What one run did for one coin, its one-line report, and its Prometheus metrics (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from coinfeed import metric_names as m
from coinfeed.hourly_status import (  # noqa: F401  (TERMINATION_MESSAGE_LIMIT: re-exported)
    MESSAGE_LIMIT,
    TERMINATION_MESSAGE_LIMIT,
    CoinOutcome,
    encode,
)


@dataclass
class LatestHour:
    """Figures of the newest processed hour with a row, for dashboards."""

    hour_start: datetime
    close: float | None
    log_return: float | None
    realized_volatility: float | None
    tweet_count: int
    sentiment_mean: float | None
    # per platform (x, bluesky): posts and mean sentiment (None: no posts) of the hour
    platform_posts: dict[str, int] = field(default_factory=dict)
    platform_sentiment: dict[str, float | None] = field(default_factory=dict)


def platform_figures(row: Mapping[str, Any]) -> dict[str, Any]:
    """``platform_posts`` and ``platform_sentiment`` of :class:`LatestHour` from an hourly row."""
    from coinfeed.schemas import PLATFORMS

    return {
        "platform_posts": {p: int(row.get(f"{p}_post_count") or 0) for p in PLATFORMS},
        "platform_sentiment": {p: row.get(f"{p}_sentiment_mean") for p in PLATFORMS},
    }


@dataclass
class CoinRun:
    coin: str
    hours: list[datetime] = field(default_factory=list)
    skipped_open_hours: list[datetime] = field(default_factory=list)
    amended_hours: list[datetime] = field(default_factory=list)  # earlier hours late data changed
    late_records: int = 0  # records merged although they arrived after their hour closed
    first_rejection: str | None = None  # reason of the first quarantined record, for messages
    rows_read: dict[str, int] = field(default_factory=dict)  # kind -> rows
    duplicates: dict[str, int] = field(default_factory=dict)  # kind -> rows dropped
    quarantined: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)  # dataset -> rows
    latest: LatestHour | None = None
    duration_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # rough: Spark is lazy

    def report(self) -> str:
        """One JSON line: hours processed, rows in/out, quarantined, duplicates dropped."""
        data = asdict(self)
        data["hours"] = [f"{h:%Y-%m-%dT%H}" for h in self.hours]
        data["skipped_open_hours"] = [f"{h:%Y-%m-%dT%H}" for h in self.skipped_open_hours]
        data["amended_hours"] = [f"{h:%Y-%m-%dT%H}" for h in self.amended_hours]
        if self.latest is not None:
            data["latest"]["hour_start"] = f"{self.latest.hour_start:%Y-%m-%dT%H}"
        data["duration_seconds"] = round(self.duration_seconds, 3)
        data["stage_seconds"] = {k: round(v, 3) for k, v in self.stage_seconds.items()}
        return json.dumps({"summary": "hourly", **data}, sort_keys=True)


def all_rejected(run: CoinRun) -> str | None:
    """Why a run that read records but could use none of them failed (None when it did not)."""
    read = sum(run.rows_read.values())
    if read and run.quarantined and not run.rows_written.get("hourly"):
        return (
            f"every record read was rejected: {run.quarantined} quarantined "
            f"(first: {run.first_rejection})"
        )
    return None


def termination_message(
    runs: Sequence[CoinRun],
    errors: Mapping[str, str],
    fatal: str = "",
    limit: int = MESSAGE_LIMIT,
) -> str:
    """The run's outcome for the operator, written as the container's termination message
    (``coinfeed.hourly_status``: at most ``limit`` bytes, each coin's ok-state and newest hour
    written to ``hourly`` for up to ``MAX_COINS`` coins, then as much detail as fits)."""
    outcomes: dict[str, CoinOutcome] = {}
    for run in runs:
        outcomes[run.coin] = CoinOutcome(
            ok=True,
            newest_hour=run.latest.hour_start if run.latest else None,
            hours=len(run.hours),
            amended=len(run.amended_hours),
            late=run.late_records,
        )
    for coin, error in errors.items():
        # A coin can fail after writing (e.g. the metrics push): keep its newest hour.
        outcomes[coin] = replace(outcomes.get(coin, CoinOutcome(ok=False)), ok=False, error=error)
    return encode(outcomes, fatal, limit)


_JAVA_EXC = re.compile(
    r"^(?:Caused by: )?((?:[a-z_$][\w$]*\.)+([A-Z][\w$]*(?:Exception|Error)))(?::\s*(.*))?$"
)


def describe_error(exc: BaseException) -> str:
    """A failure in one line a person can act on: for a Java error through py4j (its text is a
    whole stack trace), the outermost Java exception and its root cause; else ``Type: message``.

    "Py4JJavaError: An error occurred while calling o330.persist. : ...KafkaException: Failed to
    create new KafkaAdminClient ... Caused by: ...ConfigException: No resolvable bootstrap urls"
    becomes "KafkaException: Failed to create new KafkaAdminClient (caused by ConfigException: No
    resolvable bootstrap urls given in bootstrap.servers)".
    """
    text = str(exc)
    found: list[str] = []
    for raw in text.splitlines():
        line = raw.strip().removeprefix(": ")
        match = _JAVA_EXC.match(line)
        if match:
            name, message = match.group(2), (match.group(3) or "").strip()
            found.append(f"{name}: {message}" if message else name)
    if not found:
        first = text.strip().splitlines()[0] if text.strip() else ""
        return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    if len(found) == 1 or found[-1] == found[0]:
        return found[0]
    return f"{found[0]} (caused by {found[-1]})"


def success_registry(run: CoinRun, finished_at: float) -> CollectorRegistry:
    """Every HOURLY_* gauge of a successful run (grouping key job + coin is added on push)."""
    reg = CollectorRegistry()
    coin = run.coin

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, ("coin", *labels), registry=reg)

    read = gauge(m.HOURLY_ROWS_READ, "Records read from Kafka by the last run.", ("kind",))
    for kind, n in sorted(run.rows_read.items()):
        read.labels(coin, kind).set(n)
    written = gauge(m.HOURLY_ROWS_WRITTEN, "Rows written by the last run.", ("dataset",))
    for dataset, n in sorted(run.rows_written.items()):
        written.labels(coin, dataset).set(n)
    dups = gauge(m.HOURLY_DUPLICATES, "Duplicates dropped by the last run.", ("kind",))
    for kind, n in sorted(run.duplicates.items()):
        dups.labels(coin, kind).set(n)
    gauge(m.HOURLY_ROWS_QUARANTINED, "Records quarantined by the last run.").labels(coin).set(
        run.quarantined
    )
    gauge(m.HOURLY_HOURS_PROCESSED, "Hours processed by the last run.").labels(coin).set(
        len(run.hours)
    )
    gauge(m.HOURLY_HOURS_AMENDED, "Earlier hours recomputed for late records.").labels(coin).set(
        len(run.amended_hours)
    )
    gauge(m.HOURLY_LATE_RECORDS, "Late records merged by the last run.").labels(coin).set(
        run.late_records
    )
    gauge(m.HOURLY_DURATION, "Wall time of the last run.").labels(coin).set(run.duration_seconds)
    gauge(m.HOURLY_LAST_SUCCESS, "When the last successful run finished.").labels(coin).set(
        finished_at
    )
    latest = run.latest
    if latest is not None:
        gauge(m.HOURLY_NEWEST_HOUR, "Start of the newest completed hour.").labels(coin).set(
            latest.hour_start.timestamp()
        )
        gauge(m.HOURLY_TWEET_COUNT, "Tweets in the newest hour.").labels(coin).set(
            latest.tweet_count
        )
        values = {
            m.HOURLY_CLOSE_PRICE: ("Close price of the newest hour.", latest.close),
            m.HOURLY_LOG_RETURN: ("Log return of the newest hour.", latest.log_return),
            m.HOURLY_VOLATILITY: (
                "Realised volatility of the newest hour.",
                latest.realized_volatility,
            ),
            m.HOURLY_SENTIMENT_MEAN: (
                "Mean VADER compound of the newest hour.",
                latest.sentiment_mean,
            ),
        }
        for name, (doc, value) in values.items():
            # An hour without tweets has no sentiment: leave the series out rather than report 0.
            if value is not None:
                gauge(name, doc).labels(coin).set(value)
        if latest.platform_posts:
            posts = gauge(m.HOURLY_PLATFORM_POSTS, "Posts in the newest hour.", ("platform",))
            sentiment = gauge(
                m.HOURLY_PLATFORM_SENTIMENT,
                "Mean VADER compound of the newest hour.",
                ("platform",),
            )
            for platform, n in sorted(latest.platform_posts.items()):
                posts.labels(coin, platform).set(n)
                mean = latest.platform_sentiment.get(platform)
                if mean is not None:
                    sentiment.labels(coin, platform).set(mean)
    return reg


def failure_registry(coin: str, failed_at: float) -> CollectorRegistry:
    reg = CollectorRegistry()
    Gauge(m.HOURLY_LAST_FAILURE, "When the last failed run ended.", ("coin",), registry=reg).labels(
        coin
    ).set(failed_at)
    return reg


def push(gateway: str, registry: CollectorRegistry, coin: str, replace: bool) -> None:
    """PUT (replace the coin's group) after success; POST after failure so the last success stays."""
    from prometheus_client import push_to_gateway, pushadd_to_gateway

    send = push_to_gateway if replace else pushadd_to_gateway
    send(gateway, job=m.HOURLY_JOB_NAME, registry=registry, grouping_key={"coin": coin}, timeout=10)


def rows_read_by_coin(
    arrivals: Iterable[tuple[str, str, datetime, int]],
    hours_by_coin: Mapping[str, Sequence[datetime]],
    kinds: Sequence[str],
) -> dict[str, dict[str, int]]:
    """Coin -> kind -> records read whose Kafka timestamp is in one of the coin's hours, from
    ``(kind, coin, arrival hour, records)`` counts: one small aggregation for every coin and kind,
    filtered here once the hours late records amend are known."""
    wanted = {coin: set(hours) for coin, hours in hours_by_coin.items()}
    out = {coin: dict.fromkeys(kinds, 0) for coin in hours_by_coin}
    for kind, coin, hour, n in arrivals:
        if hour in wanted.get(coin, ()):
            out[coin][kind] += n
    return out


def first_rejections(
    groups: Iterable[tuple[str, int, tuple[Any, ...], str]],
) -> dict[str, tuple[int, str]]:
    """Coin -> (records quarantined, reason of its first one by Kafka position), from
    ``(coin, records, first position, its reason)`` of each quarantine partition."""
    totals: dict[str, int] = {}
    first: dict[str, tuple[tuple[Any, ...], str]] = {}
    for coin, n, position, reason in groups:
        totals[coin] = totals.get(coin, 0) + n
        if coin not in first or tuple(position) < first[coin][0]:
            first[coin] = (tuple(position), reason)
    return {coin: (n, first[coin][1]) for coin, n in totals.items()}
