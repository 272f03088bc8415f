"""The hourly job: Kafka -> deduplicated lake + one row per coin and hour (I/O lives only here).

Run as ``coinfeed hourly``, ``python -m coinfeed.spark.hourly`` or ``spark-submit spark/hourly.py``.
Every decision is made by the pure modules next to this one: which hours (``hours``), parsing
and quarantine (``parse``, ``assign``), duplicates (``dedup``), sentiment, aggregates and join.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

if __name__ == "__main__" and not __package__:
    # spark-submit runs this file as a script: import the package, not this folder's modules.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    if os.path.isdir(os.path.join(os.path.dirname(_here), "coinfeed")):
        sys.path.insert(0, os.path.dirname(_here))

from coinfeed import job_env as jenv
from coinfeed.kafka import BOOTSTRAP_ENV, bootstrap_servers
from coinfeed.kafka_security import KafkaSecurityError, security_from_env, spark_kafka_options
from coinfeed.topics import InvalidCoinError, TopicKind, normalize_coin, topic_name

log = logging.getLogger("coinfeed.spark.hourly")

LAKE_ENV = "COINFEED_LAKE"
PUSHGATEWAY_ENV = "COINFEED_PUSHGATEWAY"
TERMINATION_LOG_ENV = jenv.TERMINATION_LOG


def _coins(values: Sequence[str]) -> list[str]:
    coins: list[str] = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                coin = normalize_coin(part)
                if coin not in coins:
                    coins.append(coin)
    return coins


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coinfeed hourly",
        description=(
            "Read closed hours of coinfeed.<coin>.prices/tweets from Kafka by timestamp, "
            "quarantine bad records, deduplicate, score sentiment (VADER), aggregate per coin and "
            "hour and overwrite exactly those hour partitions of raw/prices, raw/tweets, hourly "
            "and quarantine in the lake. Without --from/--to it also backfills closed hours "
            "inside Kafka's retention that have no hourly partition yet, oldest first."
        ),
    )
    p.add_argument(
        "--coin",
        action="append",
        required=True,
        help="coin symbol; repeat or comma-separate (btc,eth)",
    )
    p.add_argument(
        "--lookback-hours",
        type=int,
        default=3,
        metavar="N",
        help="process the N newest closed hours (default 3)",
    )
    p.add_argument(
        "--from",
        dest="from_hour",
        metavar="HOUR",
        help="first hour of an explicit backfill, UTC (2024-01-01T00)",
    )
    p.add_argument(
        "--to",
        dest="to_hour",
        metavar="HOUR",
        help="last hour of the backfill, INCLUDED (2024-01-01T05 processes 00..05)",
    )
    p.add_argument(
        "--lake",
        default=os.environ.get(LAKE_ENV),
        help=f"lake root: local path or s3a://bucket/prefix (default ${LAKE_ENV})",
    )
    p.add_argument(
        "--bootstrap",
        default=None,
        help=f"Kafka bootstrap host:port,... (default ${BOOTSTRAP_ENV}, else localhost:9092-9094)",
    )
    p.add_argument(
        "--pushgateway",
        default=os.environ.get(PUSHGATEWAY_ENV),
        metavar="HOST:PORT",
        help=f"push job metrics here (default ${PUSHGATEWAY_ENV}; off when unset)",
    )
    p.add_argument(
        "--now",
        default=None,
        metavar="TIME",
        help="override the current time (ISO-8601, UTC), e.g. to replay a past sample",
    )
    p.add_argument(
        "--grace-minutes",
        type=int,
        default=5,
        help="how late a record may reach Kafka after its hour and still count (default 5)",
    )
    p.add_argument(
        "--max-lateness-hours",
        type=int,
        default=24,
        metavar="N",
        help=(
            "records up to N hours late still land in their event hour, which is recomputed "
            "(amended); later ones are quarantined. Never beyond retention; 0: only --grace-minutes "
            "(default 24)"
        ),
    )
    p.add_argument(
        "--retention-hours",
        type=int,
        default=24,
        help="Kafka retention: bound of the gap search (default 24)",
    )
    p.add_argument(
        "--no-gaps",
        action="store_true",
        help="do not backfill missing hours, only the requested ones",
    )
    p.add_argument(
        "--termination-log",
        default=os.environ.get(TERMINATION_LOG_ENV),
        metavar="PATH",
        help=(
            "write the run's outcome (JSON, < 4 KiB) here, however the run ends; on Kubernetes "
            f"/dev/termination-log, read back by the operator (default ${TERMINATION_LOG_ENV})"
        ),
    )
    p.add_argument(
        "--master",
        default=None,
        help="Spark master (default: spark-submit's, else local[*] on loopback)",
    )
    p.add_argument(
        "--shuffle-partitions", type=int, default=4, help="spark.sql.shuffle.partitions (default 4)"
    )
    p.add_argument(
        "--driver-memory",
        default="1g",
        help="driver JVM heap when this process starts Spark (default 1g)",
    )
    return p


def _read_kafka(spark: Any, bootstrap: str, topic: str, windows: Sequence[Any]) -> Any:
    """Raw rows of ``topic`` whose Kafka timestamp falls in one of ``windows``."""
    # Security (SASL/TLS) from the COINFEED_KAFKA_* variables and mounted files: passed as
    # reader options in-process, never on the spark-submit command line.
    security = spark_kafka_options(security_from_env())
    from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

    frames = []
    for w in windows:
        df = (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", topic)
            .option("startingTimestamp", str(w.start_ms))
            .option("endingTimestamp", str(w.end_ms))
            # A window newer than every record starts at the end instead of failing.
            .option("startingOffsetsByTimestampStrategy", "latest")
            .option("failOnDataLoss", "false")
            .options(**security)
            .load()
        )
        # Offsets come from the first record at/after each bound; producer-set timestamps need
        # not be monotonic within a partition, so filter on the timestamp itself as well.
        ts = F.col("timestamp")
        frames.append(
            df.where((ts >= F.lit(w.start)) & (ts < F.lit(w.end))).select(
                "key", "value", "topic", "partition", "offset", "timestamp"
            )
        )
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


def missing_topics(
    spark: Any, bootstrap: str, topics: Sequence[str], security: Mapping[str, str]
) -> list[str]:
    """The ``topics`` Kafka does not have (one admin call through the JVM's kafka-clients): a
    feed whose topic is missing fails alone, with a reason, instead of reading nothing.

    ``security`` holds the reader's ``kafka.``-prefixed options; the admin client takes the
    same settings without the prefix (a secured cluster refuses an unauthenticated admin).
    """
    jvm = spark.sparkContext._jvm
    props = jvm.java.util.Properties()
    props.put("bootstrap.servers", bootstrap)
    for key, value in security.items():
        props.put(key.removeprefix("kafka."), value)
    admin = jvm.org.apache.kafka.clients.admin.Admin.create(props)
    try:
        names = admin.listTopics().names().get(60, jvm.java.util.concurrent.TimeUnit.SECONDS)
        existing = {str(n) for n in names}
    finally:
        admin.close()
    return [t for t in topics if t not in existing]


def process_coin(
    spark: Any,
    args: argparse.Namespace,
    coin: str,
    hours: list[datetime],
    grace: timedelta,
    now: datetime | None = None,
) -> Any:
    """Run the pipeline for one coin's hours (plus the earlier hours late records amend); returns
    its :class:`CoinRun`."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

    from coinfeed.spark import hours as hr
    from coinfeed.spark import lake
    from coinfeed.spark.assign import late_event_hours, late_merged, on_time_records, quarantined
    from coinfeed.spark.dedup import deduplicate
    from coinfeed.spark.join import hourly_stats
    from coinfeed.spark.parse import check, split
    from coinfeed.spark.prices import price_hourly
    from coinfeed.spark.sentiment import with_sentiment
    from coinfeed.spark.summary import CoinRun, LatestHour, platform_figures
    from coinfeed.spark.tweets import tweet_hourly

    retention = timedelta(hours=args.retention_hours)
    lateness = hr.lateness_bound(
        timedelta(hours=getattr(args, "max_lateness_hours", 0)), retention, grace
    )
    late_on = now is not None and lateness > grace
    oldest = hr.oldest_retained_hour(now, retention) if now is not None else None
    run = CoinRun(coin=coin, hours=hours)
    windows = (
        hr.read_windows(hours, grace, lateness, now) if late_on else hr.read_windows(hours, grace)
    )
    bootstrap = ",".join(bootstrap_servers(args.bootstrap))
    missing = missing_topics(
        spark,
        bootstrap,
        [topic_name(coin, k) for k in ("prices", "tweets")],
        spark_kafka_options(security_from_env()),
    )
    if missing:
        raise LookupError(f"topic {', '.join(missing)} does not exist in Kafka")
    persisted: list[Any] = []

    mark = [time.monotonic()]

    def stage(name: str) -> None:
        # Stage times are measured between actions (count/write), so each covers the lazy work
        # that action triggered.
        now_ = time.monotonic()
        run.stage_seconds[name] = run.stage_seconds.get(name, 0.0) + now_ - mark[0]
        mark[0] = now_

    def keep(df: Any) -> Any:
        persisted.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return df

    kinds: tuple[TopicKind, ...] = ("prices", "tweets")
    checked: dict[str, Any] = {}
    for kind in kinds:
        checked[kind] = keep(
            check(_read_kafka(spark, bootstrap, topic_name(coin, kind), windows), kind)
        )
    all_hours = list(hours)
    if late_on and now is not None and oldest is not None:
        # Late records of earlier hours: those hours are recomputed from their full window.
        amended: set[datetime] = set()
        for kind in kinds:
            found = late_event_hours(
                split(checked[kind], kind), kind, hours, grace, lateness, oldest, now
            )
            amended |= _collect_hours(found)
        if amended:
            run.amended_hours = sorted(amended)
            all_hours = sorted(set(hours) | amended)
            extra = hr.subtract_windows(
                hr.read_windows(run.amended_hours, grace, lateness, now), windows
            )
            for kind in kinds:
                more = check(_read_kafka(spark, bootstrap, topic_name(coin, kind), extra), kind)
                checked[kind] = keep(checked[kind].unionByName(more))
    deduped: dict[str, Any] = {}
    quarantine_parts = []
    for kind in kinds:
        arrival = F.date_trunc("hour", F.col("timestamp"))
        run.rows_read[kind] = (
            checked[kind].where(arrival.isin([F.lit(h) for h in all_hours])).count()
        )
        stage(f"read_validate_{kind}")
        parsed = split(checked[kind], kind)
        # Not persisted: ``checked`` is, so counting these re-runs only from_json and filters.
        counted = keep(
            on_time_records(parsed, kind, all_hours, grace, lateness if late_on else None)
        )
        unique = deduplicate(counted, kind)
        if kind == "tweets":
            unique = with_sentiment(unique)
        deduped[kind] = keep(unique)
        totals = counted.agg(F.count(F.lit(1)), F.sum(late_merged(counted, grace))).first()
        run.late_records += int(totals[1] or 0)
        run.duplicates[kind] = int(totals[0]) - deduped[kind].count()
        stage("dedup_sentiment_tweets" if kind == "tweets" else "dedup_prices")
        quarantine_parts.append(
            quarantined(
                parsed,
                kind,
                all_hours,
                grace,
                lateness if late_on else None,
                oldest if late_on else None,
            )
        )

    q = keep(quarantine_parts[0].unionByName(quarantine_parts[1]))
    run.quarantined = q.count()
    if run.quarantined:
        first = q.orderBy("kafka_topic", "kafka_partition", "kafka_offset").select("reason").first()
        run.first_rejection = first.reason if first else None
    stage("quarantine")
    hourly = keep(hourly_stats(price_hourly(deduped["prices"]), tweet_hourly(deduped["tweets"])))
    hourly.count()
    stage("aggregate")

    # Raw and quarantine first, hourly last: an hourly partition means the hour is complete, so a
    # run killed in between leaves a gap that the next run fills.
    raw_prices = deduped["prices"].drop("hour_start")
    raw_tweets = deduped["tweets"].drop("hour_start")
    # Every dataset is rewritten for exactly these hours: a partition the output lacks is removed.
    lake.write_partitions(
        raw_prices,
        lake.dataset_path(args.lake, lake.RAW_PRICES),
        ("ts", "source"),
        coin=coin,
        hours=all_hours,
    )
    lake.write_partitions(
        raw_tweets,
        lake.dataset_path(args.lake, lake.RAW_TWEETS),
        ("created_at", "id"),
        coin=coin,
        hours=all_hours,
    )
    lake.write_partitions(
        q,
        lake.dataset_path(args.lake, lake.QUARANTINE),
        ("kind", "kafka_topic", "kafka_partition", "kafka_offset"),
        coin=coin,
        hours=all_hours,
    )
    lake.write_partitions(
        hourly,
        lake.dataset_path(args.lake, lake.HOURLY),
        ("hour_start",),
        coin=coin,
        hours=all_hours,
    )
    stage("write")
    run.rows_written = {
        lake.RAW_PRICES: raw_prices.count(),
        lake.RAW_TWEETS: raw_tweets.count(),
        lake.QUARANTINE: run.quarantined,
        lake.HOURLY: hourly.count(),
    }
    # Epoch seconds, not the timestamp: collect() renders timestamps in this process's local zone.
    newest = (
        hourly.withColumn("_epoch", F.unix_timestamp("hour_start"))
        .orderBy(F.col("hour_start").desc())
        .limit(1)
        .collect()
    )
    if newest:
        r = newest[0]
        run.latest = LatestHour(
            hour_start=datetime.fromtimestamp(r._epoch, UTC),
            close=r.close,
            log_return=r.log_return,
            realized_volatility=r.realized_volatility,
            tweet_count=int(r.tweet_count),
            sentiment_mean=r.sentiment_mean,
            **platform_figures(r.asDict()),
        )
    for df in persisted:
        df.unpersist()
    return run


def _collect_hours(hours: Any) -> set[datetime]:
    """``hour_start`` values as UTC datetimes (collect() renders timestamps in the local zone)."""
    from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

    rows = hours.select(F.unix_timestamp("hour_start").alias("e")).collect()
    return {datetime.fromtimestamp(r.e, UTC) for r in rows}


def job_conf(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str]:
    """The run's Spark settings. Reads nothing from the repository: pinned versions ship in the
    package (``coinfeed.pinned_versions``) and the connector jars come from ``$COINFEED_CACHE``.

    Raises ``LookupError`` (a missing pin) or ``OSError`` (no connector jars, or no Spark RPC
    key file although the operator named its Secret), naming what is missing.
    """
    from coinfeed.spark.session import env_conf, rpc_secret_file, spark_conf

    # Under spark-submit the master comes from its flags; run directly, Spark stays in this
    # process (local mode, loopback only).
    master = args.master or (None if "PYSPARK_GATEWAY_PORT" in env else "local[*]")
    secret_name = env.get(jenv.RPC_SECRET_NAME, "")
    if secret_name and (master or "").startswith("k8s://"):
        # The CronJob's volume is optional (a pod whose Secret is missing would never start, and
        # say why only in Events): fail here instead, naming the file, never Spark's own
        # "A secret key must be specified" after executors were started.
        path = rpc_secret_file(env)
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            raise OSError(
                f"Spark RPC key file {path} is missing or empty: is Secret {secret_name!r} in "
                f"this namespace, with key {jenv.RPC_SECRET_KEY!r}?"
            )
    return spark_conf(
        master=master,
        shuffle_partitions=args.shuffle_partitions,
        driver_memory=args.driver_memory,
        extra=env_conf(env, master),
    )


class _Outcome:
    """What the run did, for the termination message (written however the run ends)."""

    def __init__(self) -> None:
        self.runs: list[Any] = []  # CoinRun of each coin that finished
        self.errors: dict[str, str] = {}  # coin -> why it failed
        self.fatal = ""  # why the run could not start

    def message(self) -> str:
        from coinfeed.spark.summary import termination_message

        return termination_message(self.runs, self.errors, self.fatal)


def write_termination_log(path: str, text: str) -> None:
    """Best effort: Kubernetes shows this file as the container's termination message."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError:
        log.warning("could not write the termination message", extra={"path": path})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    outcome = _Outcome()
    try:
        return _run(parser, args, outcome)
    except SystemExit as exc:  # parser.error: argparse has printed why
        outcome.fatal = outcome.fatal or f"exit {exc.code}"
        raise
    except BaseException as exc:
        outcome.fatal = outcome.fatal or f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if args.termination_log:
            write_termination_log(args.termination_log, outcome.message())


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, outcome: _Outcome) -> int:
    from coinfeed.logs import configure
    from coinfeed.spark import hours as hr

    configure(os.environ.get("COINFEED_LOG_LEVEL", "INFO"))

    def usage_error(message: str) -> None:
        outcome.fatal = message
        parser.error(message)

    try:
        coins = _coins(args.coin)
        if not args.lake:
            usage_error(f"--lake is required (or set ${LAKE_ENV})")
        bootstrap_servers(args.bootstrap)  # validate early, with a clear message
        try:
            security_from_env()
        except KafkaSecurityError as exc:
            usage_error(str(exc))
        now = hr.parse_instant(args.now) if args.now else datetime.now(UTC)
        grace = timedelta(minutes=args.grace_minutes)
        if (args.from_hour is None) != (args.to_hour is None):
            usage_error("--from and --to go together")
        explicit = args.from_hour is not None
        requested = (
            hr.hour_range(hr.parse_hour(args.from_hour), hr.parse_hour(args.to_hour))
            if explicit
            else hr.lookback_hours(now, args.lookback_hours, grace)
        )
    except (InvalidCoinError, hr.HourRangeError, ValueError) as exc:
        outcome.fatal = str(exc)
        print(f"coinfeed hourly: {exc}", file=sys.stderr)
        return 2

    from coinfeed.spark.lake import existing_hours
    from coinfeed.spark.session import build_session
    from coinfeed.spark.summary import (
        CoinRun,
        all_rejected,
        describe_error,
        failure_registry,
        push,
        success_registry,
    )

    try:
        conf = job_conf(args, os.environ)
    except (LookupError, OSError) as exc:
        # A missing pin or connector jar: say which, not a traceback.
        outcome.fatal = f"cannot start: {exc}"
        print(f"coinfeed hourly: cannot start: {exc}", file=sys.stderr)
        return 2
    spark = build_session("coinfeed-hourly", conf)
    try:
        for coin in coins:
            started = time.monotonic()
            try:
                gaps: list[datetime] = []
                if not explicit and not args.no_gaps:
                    gaps = hr.gap_hours(
                        now,
                        existing_hours(spark, args.lake, coin),
                        timedelta(hours=args.retention_hours),
                        grace,
                    )
                todo, skipped = hr.plan_hours(requested, gaps, now, grace)
                for h in skipped:
                    log.warning(
                        "hour not closed yet, skipped",
                        extra={"coin": coin, "hour": f"{h:%Y-%m-%dT%H}"},
                    )
                run = (
                    process_coin(spark, args, coin, todo, grace, now)
                    if todo
                    else CoinRun(coin=coin)
                )
                run.skipped_open_hours = skipped
                run.duration_seconds = time.monotonic() - started
                rejected = all_rejected(run)
                if rejected:
                    # Quarantine is written; the feed still fails, alone and with its reason.
                    print(run.report(), flush=True)
                    raise ValueError(rejected)
                print(run.report(), flush=True)
                outcome.runs.append(run)
                if args.pushgateway:
                    push(args.pushgateway, success_registry(run, time.time()), coin, replace=True)
            except Exception as exc:
                outcome.errors[coin] = describe_error(exc)
                log.exception("hourly run failed", extra={"coin": coin})
                if args.pushgateway:
                    try:
                        push(
                            args.pushgateway,
                            failure_registry(coin, time.time()),
                            coin,
                            replace=False,
                        )
                    except OSError:
                        log.exception("could not push the failure metric", extra={"coin": coin})
    finally:
        spark.stop()
    return 1 if outcome.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
