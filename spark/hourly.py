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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

if __name__ == "__main__" and not __package__:
    # spark-submit runs this file as a script: import the package, not this folder's modules.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    if os.path.isdir(os.path.join(os.path.dirname(_here), "coinfeed")):
        sys.path.insert(0, os.path.dirname(_here))

from coinfeed import job_env as jenv
from coinfeed.kafka import BOOTSTRAP_ENV, bootstrap_servers
from coinfeed.kafka_security import KafkaSecurityError, security_from_env, spark_kafka_options
from coinfeed.spark import background, cds
from coinfeed.spark.background import Background
from coinfeed.spark.jit import (
    QUICK_MAX_RECORDS,
    VALIDATION_CHOICES,
    Validation,
    choose,
    choose_validation,
    profile_conf,
    split_reads_for,
)
from coinfeed.topics import InvalidCoinError, TopicKind, normalize_coin, topic_name

log = logging.getLogger("coinfeed.spark.hourly")

LAKE_ENV = "COINFEED_LAKE"
PUSHGATEWAY_ENV = "COINFEED_PUSHGATEWAY"
TERMINATION_LOG_ENV = jenv.TERMINATION_LOG
# Kafka consumer's fetch.max.wait.ms for the job's batch reads (see _read_kafka).
FETCH_MAX_WAIT_MS = 10
# A big run reads Kafka in at least this many tasks per core (the source's minPartitions): with
# one task per topic-partition, 3 validation tasks on 2 cores left the last one running alone
# for ~7 s of a 1M-tweet hour (the machine at 1.1 busy cores). Measured on 2 cores, 1M tweets,
# 6 alternating pairs: read_validate 35.0-43.8 s against 41.2-51.9 s (6 of 6 shorter, mean
# -12 %), the job 108.8 against 114.6 s on average (4 of 6 faster). Small runs keep one task per
# topic-partition (their tasks are mostly fixed cost).
READ_TASKS_PER_CORE = 3


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
        "--no-batch",
        action="store_true",
        help=(
            "process the coins one at a time (one Kafka read and one pass each), as before "
            "batching; by default coins with the same hours to process share one pass"
        ),
    )
    p.add_argument(
        "--jvm-profile",
        choices=("auto", "quick", "full"),
        default="auto",
        help=(
            "how much the driver JVM compiles: quick (C1 JIT only, no whole-stage code "
            "generation; less CPU for small hours), full (C2 for hot code only; for big ones), "
            "or auto: quick when Kafka's offsets say the run reads at most --quick-max-records "
            "records (default auto)"
        ),
    )
    p.add_argument(
        "--validation",
        choices=VALIDATION_CHOICES,
        default="auto",
        help=(
            "how records are validated: native (Spark-native checks generated from the record "
            "models, the pydantic model only for what they leave pending; for big hours), "
            "pydantic (every record through the model; less fixed work for small hours), or "
            "auto: pydantic when the estimate is at most --quick-max-records (default auto)"
        ),
    )
    p.add_argument(
        "--quick-max-records",
        type=int,
        default=QUICK_MAX_RECORDS,
        metavar="N",
        help=(
            "largest estimated input, in records, that auto runs quick and validates with "
            f"pydantic alone (default {QUICK_MAX_RECORDS})"
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


def _read_kafka(
    spark: Any,
    bootstrap: str,
    topics: str | Sequence[str],
    windows: Sequence[Any],
    split: bool = False,
) -> Any:
    """Raw rows of ``topics`` whose Kafka timestamp falls in one of ``windows`` (one read of all
    the topics per window: ``subscribe`` takes a comma list). ``split``: read each window in at
    least :data:`READ_TASKS_PER_CORE` tasks per core (a big run: see the constant)."""
    topic = topics if isinstance(topics, str) else ",".join(topics)
    if not windows:
        # A caller with nothing to read must skip the read: an empty union has no schema.
        raise ValueError(f"no Kafka timestamp window to read for topic {topic}")
    # Security (SASL/TLS) from the COINFEED_KAFKA_* variables and mounted files: passed as
    # reader options in-process, never on the spark-submit command line.
    security = spark_kafka_options(security_from_env())
    from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

    frames = []
    for w in windows:
        reader = (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", topic)
            .option("startingTimestamp", str(w.start_ms))
            .option("endingTimestamp", str(w.end_ms))
            # A window newer than every record starts at the end instead of failing.
            .option("startingOffsetsByTimestampStrategy", "latest")
            .option("failOnDataLoss", "false")
            # The broker holds a fetch that finds no new data this long: at the end of every
            # partition's range, i.e. once per topic-partition read (default 500 ms, most of
            # an added coin's read time). Data present is returned at once either way.
            .option("kafka.fetch.max.wait.ms", str(FETCH_MAX_WAIT_MS))
            .options(**security)
        )
        if split:
            # The source splits each topic-partition's range in proportion to its share.
            tasks = READ_TASKS_PER_CORE * int(spark.sparkContext.defaultParallelism)
            reader = reader.option("minPartitions", str(tasks))
        df = reader.load()
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


def estimate_records(
    bootstrap: str, topics: Sequence[str], start: datetime, end: datetime
) -> int | None:
    """How many records ``topics`` hold with a Kafka timestamp in [start, end), from offsets
    (kafka-python, before Spark starts); None when Kafka cannot say. An estimate: it counts
    aborted and compacted-away offsets, and timestamps need not be ordered within a partition."""
    from kafka import TopicPartition

    from coinfeed.kafka import make_consumer

    try:
        # An optimisation: a Kafka that cannot be reached costs seconds, not the default 30.
        consumer = make_consumer(
            bootstrap=bootstrap, security=security_from_env(), bootstrap_timeout_ms=5000
        )
        try:
            partitions = [
                TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
            ]
            if not partitions:
                return 0
            ends = consumer.end_offsets(partitions)
            bounds = []
            for ms in (int(start.timestamp() * 1000), int(end.timestamp() * 1000)):
                found = consumer.offsets_for_times(dict.fromkeys(partitions, ms))
                # No record at/after the time: the partition's end.
                bounds.append(
                    {tp: found[tp].offset if found[tp] else ends[tp] for tp in partitions}
                )
            return int(sum(max(0, bounds[1][tp] - bounds[0][tp]) for tp in partitions))
        finally:
            consumer.close()
    except Exception as exc:  # an optimisation: without it the job runs "full"
        log.warning(
            "could not estimate the input size from Kafka; the full JVM profile is used",
            extra={"error": f"{type(exc).__name__}: {exc}"},
        )
        return None


def overlap(*actions: Callable[[], Any]) -> list[Any]:
    """Run independent Spark actions at once, one driver thread each; their results in order.

    A small hour's jobs spend much of their time in the driver (planning, scheduling, committing
    files): with the quick JVM profile, overlapping them took a 10k hour from 28.6 to 27.0 s (a
    CPU-bound run gains nothing). Every action runs to its end; then the first failure, in the
    order given, is raised."""
    from pyspark import InheritableThread

    results: list[Any] = [None] * len(actions)
    errors: list[BaseException | None] = [None] * len(actions)

    def run(i: int) -> None:
        try:
            results[i] = actions[i]()
        except BaseException as exc:  # re-raised in the calling thread below
            errors[i] = exc

    threads = [InheritableThread(target=run, args=(i,)) for i in range(1, len(actions))]
    for t in threads:
        t.start()
    run(0)  # the first in this thread: one thread fewer
    for t in threads:
        t.join()
    for exc in errors:
        if exc is not None:
            raise exc
    return results


def settle(spec: Background, valid: bool) -> dict[str, Any] | None:
    """Wait for plans built in the background (``background.start``) while the calling thread
    ran a job; them when they are ``valid`` (built for the inputs the caller ended with) and were
    built, else ``None`` once the frames they persisted (under "kept") are released: the caller
    builds them again, and a failed build then raises in the caller's thread."""
    spec.thread.join()
    if valid and spec.error is None and spec.value is not None:
        return cast(dict[str, Any], spec.value)
    for df in (spec.value or {}).get("kept", []):
        df.unpersist()
    return None


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


def missing_topic_errors(spark: Any, bootstrap: str, coins: Sequence[str]) -> dict[str, str]:
    """Coin -> why it cannot run, for the ``coins`` whose topics Kafka lacks (one admin call)."""
    kinds: tuple[TopicKind, ...] = ("prices", "tweets")
    missing = set(
        missing_topics(
            spark,
            bootstrap,
            [topic_name(c, k) for c in coins for k in kinds],
            spark_kafka_options(security_from_env()),
        )
    )
    errors: dict[str, str] = {}
    for coin in coins:
        gone = [t for t in (topic_name(coin, k) for k in kinds) if t in missing]
        if gone:
            errors[coin] = f"topic {', '.join(gone)} does not exist in Kafka"
    return errors


def fallback_coins(coins: Sequence[str], failed: bool) -> list[str]:
    """The coins to re-run one at a time after a batched pass: all of them when the pass raised
    (one coin must never fail another), none when it succeeded; a pass of one coin already was
    the per-coin path, so its error is that coin's own."""
    return list(coins) if failed and len(coins) > 1 else []


def process_coin(
    spark: Any,
    args: argparse.Namespace,
    coin: str,
    hours: list[datetime],
    grace: timedelta,
    now: datetime | None = None,
    validation: Validation = "native",
    split_reads: bool = False,
) -> Any:
    """Run the pipeline for one coin's hours (plus the earlier hours late records amend); returns
    its :class:`CoinRun`. A missing topic raises ``LookupError`` naming it."""
    bootstrap = ",".join(bootstrap_servers(args.bootstrap))
    error = missing_topic_errors(spark, bootstrap, [coin]).get(coin)
    if error:
        raise LookupError(error)
    return process_batch(spark, args, [coin], hours, grace, now, validation, split_reads)[coin]


def process_batch(
    spark: Any,
    args: argparse.Namespace,
    coins: Sequence[str],
    hours: list[datetime],
    grace: timedelta,
    now: datetime | None = None,
    validation: Validation = "native",
    split_reads: bool = False,
    reader: Callable[..., Any] = _read_kafka,
) -> dict[str, Any]:
    """Run the pipeline once for ``coins`` that share the same ``hours`` and whose topics exist:
    one Kafka read per kind over all their topics, one validation/dedup/aggregation pass and one
    write per dataset. Each coin keeps its own hours (the earlier hours its late records amend)
    and gets its own :class:`CoinRun`; the pass's stage seconds are shared out equally.
    ``validation``: the records' path (:func:`coinfeed.spark.parse.check`); ``split_reads``:
    Kafka is read in :data:`READ_TASKS_PER_CORE` tasks per core (``jit.split_reads_for``);
    ``reader``: :func:`_read_kafka`'s stand-in (``cds.train`` feeds generated rows)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

    from coinfeed.spark import hours as hr
    from coinfeed.spark import lake
    from coinfeed.spark.assign import (
        late_event_hours,
        late_merged,
        on_time_records,
        quarantined,
        topic_coin,
    )
    from coinfeed.spark.dedup import deduplicate
    from coinfeed.spark.join import hourly_stats
    from coinfeed.spark.parse import check, split
    from coinfeed.spark.prices import price_hourly
    from coinfeed.spark.sentiment import with_sentiment
    from coinfeed.spark.summary import (
        CoinRun,
        LatestHour,
        first_rejections,
        platform_figures,
        rows_read_by_coin,
    )
    from coinfeed.spark.tweets import tweet_hourly

    coins = list(coins)
    retention = timedelta(hours=args.retention_hours)
    lateness = hr.lateness_bound(
        timedelta(hours=getattr(args, "max_lateness_hours", 0)), retention, grace
    )
    late_on = now is not None and lateness > grace
    oldest = hr.oldest_retained_hour(now, retention) if now is not None else None
    runs = {coin: CoinRun(coin=coin, hours=list(hours)) for coin in coins}
    windows = (
        hr.read_windows(hours, grace, lateness, now) if late_on else hr.read_windows(hours, grace)
    )
    bootstrap = ",".join(bootstrap_servers(args.bootstrap))
    if len(coins) > 1:
        log.info(
            "batched pass",
            extra={"coins": coins, "hours": [f"{h:%Y-%m-%dT%H}" for h in hours]},
        )
    persisted: list[Any] = []
    stage_seconds: dict[str, float] = {}
    mark = [time.monotonic()]

    def stage(name: str) -> None:
        # Stage times are measured between actions (count/write), so each covers the lazy work
        # that action triggered.
        now_ = time.monotonic()
        stage_seconds[name] = stage_seconds.get(name, 0.0) + now_ - mark[0]
        mark[0] = now_

    adding = threading.Lock()

    def timed(name: str, action: Callable[[], Any]) -> Callable[[], Any]:
        # Overlapping actions each add their own wall time: stage seconds then add up to more
        # than the run. Three writes run at once under "write": the lock keeps every addition.
        def run() -> Any:
            started = time.monotonic()
            try:
                return action()
            finally:
                with adding:
                    stage_seconds[name] = stage_seconds.get(name, 0.0) + time.monotonic() - started

        return run

    def keep(df: Any) -> Any:
        # Tried (session 24): localCheckpoint(eager=False) here and in plan_outputs' own()
        # instead of persist: a tie at 10k, and a lost executor would fail the run.
        persisted.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return df

    def union(frames: Sequence[Any]) -> Any:
        out = frames[0]
        for f in frames[1:]:
            out = out.unionByName(f)
        return out

    def arrivals(frame: Any, kind: str) -> Any:
        # Rows read per coin and arrival hour: filtered by each coin's hours once they are known.
        return frame.select(
            F.lit("read").alias("what"),
            F.lit(kind).alias("kind"),
            topic_coin(F.col("topic")).alias("coin"),
            F.date_trunc("hour", F.col("timestamp")).alias("hour_start"),
        )

    def collect_hour_counts(frame: Any) -> list[tuple[str, str, str, datetime, int]]:
        # Epoch seconds, not the timestamp: collect() renders timestamps in the local zone.
        grouped = frame.groupBy("what", "kind", "coin", "hour_start").agg(
            F.count(F.lit(1)).alias("n")
        )
        rows = grouped.select(
            "what", "kind", "coin", F.unix_timestamp("hour_start").alias("e"), "n"
        ).collect()
        return [(r.what, r.kind, r.coin, datetime.fromtimestamp(r.e, UTC), int(r.n)) for r in rows]

    def plan_outputs(
        checked_: Mapping[str, Any], hours_: Mapping[str, list[datetime]]
    ) -> dict[str, Any]:
        # Every query after the first collect, built (and their inputs persisted) for the
        # records in ``checked_`` and each coin's ``hours_``; its persisted frames under "kept".
        kept: list[Any] = []

        def own(df: Any) -> Any:
            kept.append(df.persist(StorageLevel.MEMORY_AND_DISK))
            return df

        deduped: dict[str, Any] = {}
        quarantine_parts = []
        for kind in kinds:
            parsed = split(checked_[kind], kind)
            counted = on_time_records(parsed, kind, hours_, grace, lateness if late_on else None)
            # Records per key and late ones come out of the dedup aggregation itself.
            unique = deduplicate(counted, kind, _copies=F.lit(1), _late=late_merged(counted, grace))
            if kind == "tweets":
                unique = with_sentiment(unique)
            deduped[kind] = own(unique)
            quarantine_parts.append(
                quarantined(
                    parsed,
                    kind,
                    hours_,
                    grace,
                    lateness if late_on else None,
                    oldest if late_on else None,
                )
            )
        # One job for both kinds: unique rows, all rows and late ones per coin and partition (the
        # partitions the raw datasets will have).
        counts_by_partition = union(
            [
                deduped[kind]
                .groupBy("coin", "date", "hour")
                .agg(
                    F.count(F.lit(1)).alias("unique"),
                    F.sum("_copies").alias("all"),
                    F.sum("_late").alias("late"),
                )
                .withColumn("kind", F.lit(kind))
                for kind in kinds
            ]
        )
        q = own(quarantine_parts[0].unionByName(quarantine_parts[1]))
        # Per coin, the reason of its first record by Kafka position (all its topics sort together).
        position = F.struct("kafka_topic", "kafka_partition", "kafka_offset")
        q_counts = q.groupBy("coin", "date", "hour").agg(
            F.count(F.lit(1)).alias("n"),
            F.min(position).alias("position"),
            F.min_by("reason", position).alias("first"),
        )
        hourly = own(hourly_stats(price_hourly(deduped["prices"]), tweet_hourly(deduped["tweets"])))
        return {
            "deduped": deduped,
            "counts_by_partition": counts_by_partition,
            "q": q,
            "q_counts": q_counts,
            "hourly": hourly,
            "kept": kept,
        }

    kinds: tuple[TopicKind, ...] = ("prices", "tweets")
    topics = {kind: [topic_name(c, kind) for c in coins] for kind in kinds}
    checked: dict[str, Any] = {}
    for kind in kinds:
        raw = reader(spark, bootstrap, topics[kind], windows, split_reads)
        checked[kind] = keep(check(raw, kind, validation))
    all_hours: dict[str, list[datetime]] = {c: list(hours) for c in coins}
    # The later queries are built while the first collect runs (building and planning them is
    # driver work a small hour waits for), for the usual case: no late records amend an earlier
    # hour. When some do, they are built again for the amended hours.
    first_hours = {c: list(h) for c, h in all_hours.items()}
    first_checked = dict(checked)  # taken here: an extra read replaces entries of ``checked``
    speculative = background.start(
        "speculative plans", lambda: plan_outputs(first_checked, first_hours)
    )
    try:
        # One Spark job for every coin and both kinds: rows read per arrival hour and (late data on)
        # the earlier hours of each coin that late records belong to.
        frames = [arrivals(checked[kind], kind) for kind in kinds]
        if late_on and now is not None and oldest is not None:
            frames += [
                late_event_hours(
                    split(checked[kind], kind), kind, all_hours, grace, lateness, oldest, now
                ).select(
                    F.lit("late").alias("what"), F.lit(kind).alias("kind"), "coin", "hour_start"
                )
                for kind in kinds
            ]
        counts = collect_hour_counts(union(frames))
        if late_on and now is not None:
            # Late records of earlier hours: those hours (each coin's own) are recomputed from their
            # full window.
            amended: dict[str, set[datetime]] = {c: set() for c in coins}
            for what, _, coin, hour, _ in counts:
                if what == "late":
                    amended[coin].add(hour)
            for coin in coins:
                if amended[coin]:
                    runs[coin].amended_hours = sorted(amended[coin])
                    all_hours[coin] = sorted(set(hours) | amended[coin])
            every_amended = sorted(set().union(*amended.values()))
            extra = hr.subtract_windows(
                hr.read_windows(every_amended, grace, lateness, now), windows
            )
            # An amended hour inside the merged read window needs no extra read: its records are in.
            if extra:
                more = {
                    k: check(reader(spark, bootstrap, topics[k], extra, split_reads), k, validation)
                    for k in kinds
                }
                for kind in kinds:
                    checked[kind] = keep(checked[kind].unionByName(more[kind]))
                # The extra windows do not overlap the first ones: their rows add up.
                counts += collect_hour_counts(union([arrivals(more[k], k) for k in kinds]))
        read = rows_read_by_coin(
            [(kind, coin, hour, n) for what, kind, coin, hour, n in counts if what == "read"],
            all_hours,
            kinds,
        )
        for coin, run in runs.items():
            run.rows_read = read[coin]
        stage("read_validate")
    except BaseException:
        settle(speculative, valid=False)  # nothing of it runs after a failed first collect
        raise

    planned = settle(speculative, valid=all_hours == first_hours)
    if planned is None:
        planned = plan_outputs(checked, all_hours)
    persisted += planned["kept"]
    deduped, counts_by_partition = planned["deduped"], planned["counts_by_partition"]
    q, q_counts, hourly = planned["q"], planned["q_counts"], planned["hourly"]
    # Independent of each other: their jobs overlap (see overlap).
    per_partition, q_parts = overlap(
        timed("dedup_sentiment", counts_by_partition.collect),
        timed("quarantine", q_counts.collect),
    )
    present: dict[str, list[tuple[str, str, int]]] = {}
    raw_dataset = {"prices": lake.RAW_PRICES, "tweets": lake.RAW_TWEETS}
    uniques: dict[str, dict[str, int]] = {c: dict.fromkeys(kinds, 0) for c in coins}
    for run in runs.values():
        run.duplicates = dict.fromkeys(kinds, 0)
    for r in per_partition:
        present.setdefault(raw_dataset[r.kind], []).append((r.coin, r.date, int(r.hour)))
        uniques[r.coin][r.kind] += int(r.unique)
        runs[r.coin].duplicates[r.kind] += int(r["all"]) - int(r.unique)
        runs[r.coin].late_records += int(r.late or 0)
    present[lake.QUARANTINE] = [(r.coin, r.date, int(r.hour)) for r in q_parts]
    rejected = first_rejections([(r.coin, int(r.n), r.position, r.first) for r in q_parts])
    for coin, (n, first) in rejected.items():
        runs[coin].quarantined = n
        runs[coin].first_rejection = first

    # One row per coin and hour: small enough to collect whole (its partitions, its rows per
    # coin, each coin's newest hour). Epoch seconds: collect() renders timestamps in local time.
    collect_hourly = hourly.withColumn("_epoch", F.unix_timestamp("hour_start")).collect
    helpers = ("hour_start", "_copies", "_late")

    def write(df: Any, dataset: str, order: Sequence[str]) -> Callable[[], Any]:
        # Every dataset is rewritten for exactly each coin's hours: a partition the output lacks
        # is removed.
        return timed(
            "write",
            lambda: lake.write_partitions(
                df,
                lake.dataset_path(args.lake, dataset),
                order,
                hours_by_coin=all_hours,
                present=present.get(dataset, []),
            ),
        )

    # Raw and quarantine first, hourly last: an hourly partition means the hour is complete, so a
    # run killed in between leaves a gap that the next run fills. The hourly rows are computed
    # meanwhile.
    hourly_rows, *_ = overlap(
        timed("aggregate", collect_hourly),
        write(deduped["prices"].drop(*helpers), lake.RAW_PRICES, ("ts", "source")),
        write(deduped["tweets"].drop(*helpers), lake.RAW_TWEETS, ("created_at", "id")),
        write(q, lake.QUARANTINE, ("kind", "kafka_topic", "kafka_partition", "kafka_offset")),
    )
    present[lake.HOURLY] = [(r.coin, r.date, int(r.hour)) for r in hourly_rows]
    write(hourly, lake.HOURLY, ("hour_start",))()
    hourly_count: dict[str, int] = {}
    newest: dict[str, Any] = {}
    for r in hourly_rows:
        hourly_count[r.coin] = hourly_count.get(r.coin, 0) + 1
        if r.coin not in newest or r._epoch > newest[r.coin]._epoch:
            newest[r.coin] = r
    for coin, run in runs.items():
        run.rows_written = {
            lake.RAW_PRICES: uniques[coin]["prices"],
            lake.RAW_TWEETS: uniques[coin]["tweets"],
            lake.QUARANTINE: run.quarantined,
            lake.HOURLY: hourly_count.get(coin, 0),
        }
    for coin, r in newest.items():
        runs[coin].latest = LatestHour(
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
    for run in runs.values():
        run.stage_seconds = {k: v / len(coins) for k, v in stage_seconds.items()}
    return runs


def job_conf(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str]:
    """The run's Spark settings. Reads nothing from the repository: pinned versions ship in the
    package (``coinfeed.pinned_versions``); the connector jars and the class-data archive
    (:mod:`coinfeed.spark.cds`) come from ``$COINFEED_CACHE``.

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
    conf = spark_conf(
        master=master,
        shuffle_partitions=args.shuffle_partitions,
        driver_memory=args.driver_memory,
        extra=env_conf(env, master),
    )
    if "PYSPARK_GATEWAY_PORT" in env:
        return conf  # spark-submit started the driver JVM already: its options are set
    # The driver JVM maps Spark's classes from the class-data archive, when there is one.
    return cds.with_archive(conf, env)


class _Outcome:
    """What the run did, for the termination message (written however the run ends)."""

    def __init__(self) -> None:
        self.runs: list[Any] = []  # CoinRun of each coin that finished
        self.errors: dict[str, str] = {}  # coin -> why it failed
        self.fatal = ""  # why the run could not start
        self.order: list[str] = []  # the coins as given

    def message(self) -> str:
        """The termination message, coins in the order given: batched passes finish them in
        another order, and the message must not depend on it."""
        from coinfeed.spark.summary import termination_message

        rank = {coin: i for i, coin in enumerate(self.order)}
        runs = sorted(self.runs, key=lambda r: rank.get(r.coin, len(rank)))
        errors = dict(sorted(self.errors.items(), key=lambda e: rank.get(e[0], len(rank))))
        return termination_message(runs, errors, self.fatal)


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
        outcome.order = coins
        if not args.lake:
            usage_error(f"--lake is required (or set ${LAKE_ENV})")
        bootstrap_servers(args.bootstrap)  # validate early, with a clear message
        try:
            security_from_env()
        except KafkaSecurityError as exc:
            usage_error(str(exc))
        now = hr.parse_instant(args.now) if args.now else datetime.now(UTC)
        grace = timedelta(minutes=args.grace_minutes)
        if args.quick_max_records < 0:
            usage_error(f"--quick-max-records must be 0 or more, got {args.quick_max_records}")
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

    from coinfeed.spark.lake import existing_hours_by_coin
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
    gap_search = not explicit and not args.no_gaps
    records: int | None = None
    if "auto" in (args.jvm_profile, args.validation):
        # Every hour this run may read arrived between the oldest hour it may process and now.
        oldest = (
            hr.oldest_retained_hour(now, timedelta(hours=args.retention_hours))
            if gap_search
            else min(requested, default=now)
        )
        kinds: tuple[TopicKind, ...] = ("prices", "tweets")
        records = estimate_records(
            ",".join(bootstrap_servers(args.bootstrap)),
            [topic_name(c, k) for c in coins for k in kinds],
            oldest,
            now,
        )
    profile = choose(args.jvm_profile, records, args.quick_max_records)
    validation = choose_validation(args.validation, records, args.quick_max_records)
    split_reads = split_reads_for(records, args.quick_max_records)
    log.info(
        "driver JVM profile",
        extra={
            "profile": profile,
            "requested": args.jvm_profile,
            "validation": validation,
            "split_reads": split_reads,
            "records_estimate": records,
            "quick_max_records": args.quick_max_records,
        },
    )
    conf = profile_conf(profile, conf)
    spark = build_session("coinfeed-hourly", conf)
    unmapped = cds.unused_archive(spark, conf)
    if unmapped:
        log.warning(unmapped)
    warming: list[Any] = []

    def warm_up() -> None:
        # Once per run, and only when there is something to process: the Python workers load
        # the UDFs' modules while the driver checks topics and builds and plans the queries.
        from coinfeed.spark import warmup

        if not warming:
            warming.append(warmup.start(spark))

    def finish(coin: str, run: Any, seconds: float) -> None:
        """Report one coin's run; a run whose every record was rejected fails that coin alone."""
        try:
            run.skipped_open_hours = skips[coin]
            run.duration_seconds = seconds
            rejected = all_rejected(run)
            print(run.report(), flush=True)
            if rejected:
                # Quarantine is written; the feed still fails, alone and with its reason.
                raise ValueError(rejected)
            outcome.runs.append(run)
            if args.pushgateway:
                push(args.pushgateway, success_registry(run, time.time()), coin, replace=True)
        except Exception as exc:
            fail(coin, exc)

    def fail(coin: str, exc: BaseException) -> None:
        outcome.errors[coin] = describe_error(exc)
        log.error("hourly run failed", exc_info=exc, extra={"coin": coin})
        if args.pushgateway:
            try:
                push(args.pushgateway, failure_registry(coin, time.time()), coin, replace=False)
            except OSError:
                log.exception("could not push the failure metric", extra={"coin": coin})

    def run_alone(coin: str, todo: list[datetime]) -> None:
        """The per-coin path: topic check + a pass of this coin alone."""
        started = time.monotonic()
        if todo:
            warm_up()
        try:
            run = (
                process_coin(spark, args, coin, todo, grace, now, validation, split_reads)
                if todo
                else CoinRun(coin=coin)
            )
        except Exception as exc:
            fail(coin, exc)
            return
        finish(coin, run, planning[coin] + time.monotonic() - started)

    def run_pass(coins: list[str], todo: list[datetime]) -> None:
        """One batched pass of ``coins`` (same hours); if it raises, each coin runs alone."""
        started = time.monotonic()
        warm_up()
        present = coins
        try:
            missing = missing_topic_errors(
                spark, ",".join(bootstrap_servers(args.bootstrap)), coins
            )
            for coin, error in missing.items():
                fail(coin, LookupError(error))
            present = [c for c in coins if c not in missing]
            runs = (
                process_batch(spark, args, present, todo, grace, now, validation, split_reads)
                if present
                else {}
            )
        except Exception as exc:
            alone = fallback_coins(present, failed=True)
            if not alone:
                for coin in present:
                    fail(coin, exc)
                return
            log.warning(
                "batched pass failed, its coins run one at a time",
                exc_info=exc,
                extra={"coins": alone},
            )
            for coin in alone:
                run_alone(coin, todo)
            return
        # The pass's time, shared out equally: the reports' durations still add up to the run.
        share = (time.monotonic() - started) / max(len(present), 1)
        for coin in present:
            finish(coin, runs[coin], planning[coin] + share)

    plans: dict[str, list[datetime]] = {}
    skips: dict[str, list[datetime]] = {}
    planning: dict[str, float] = {}  # seconds each coin's gap search took
    try:
        listed: dict[str, list[datetime]] = {}
        started = time.monotonic()
        if gap_search:
            try:
                # One listing of the lake for every coin, not one per coin.
                listed = existing_hours_by_coin(spark, args.lake, coins)
            except Exception as exc:
                for coin in coins:  # each coin's own listing would have failed alike
                    fail(coin, exc)
                return 1
        listing_share = (time.monotonic() - started) / max(len(coins), 1)
        for coin in coins:
            started = time.monotonic()
            skips[coin] = []
            try:
                gaps: list[datetime] = []
                if gap_search:
                    gaps = hr.gap_hours(
                        now, listed[coin], timedelta(hours=args.retention_hours), grace
                    )
                plans[coin], skips[coin] = hr.plan_hours(requested, gaps, now, grace)
            except Exception as exc:
                fail(coin, exc)
                continue
            for h in skips[coin]:
                log.warning(
                    "hour not closed yet, skipped",
                    extra={"coin": coin, "hour": f"{h:%Y-%m-%dT%H}"},
                )
            planning[coin] = listing_share + time.monotonic() - started
            if args.no_batch:
                run_alone(coin, plans[coin])
        if not args.no_batch:
            for todo, group in hr.group_by_plan(plans):
                if todo and len(group) > 1:
                    run_pass(group, todo)
                else:
                    for coin in group:
                        run_alone(coin, todo)
    finally:
        spark.stop()
    return 1 if outcome.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
