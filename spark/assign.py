"""Assign parsed records to the hours being processed (see :mod:`coinfeed.spark.hours`).

A valid record counts in its event hour ``E`` when its Kafka timestamp ``k`` is in
``[E, E+1h+bound)``, ``bound`` being the lateness bound (``hours.lateness_bound``; ``grace`` when
late data is off). A record later than ``grace`` but within the bound is *late*: it still lands in
its event hour, and that hour is recomputed ("amended") by the run that reads it. Otherwise it is
quarantined in its *arrival* hour (the hour of ``k``) with the reason — later than the bound, or
stamped in a later hour than it arrived — so nothing is lost silently. Rejected (invalid) records
are quarantined in their arrival hour too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

from coinfeed.spark.hours import DEFAULT_GRACE, HOUR, group_by_plan
from coinfeed.spark.parse import EVENT_TIME, Parsed
from coinfeed.topics import TopicKind

QUARANTINE_COLUMNS = (
    "coin",
    "date",
    "hour",
    "kind",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "key",
    "value",
    "reason",
)


def with_hour(df: DataFrame, ts: Column) -> DataFrame:
    """Add ``hour_start`` (UTC) and the partition columns ``date`` (yyyy-MM-dd) and ``hour``."""
    start = F.date_trunc("hour", ts)
    return (
        df.withColumn("hour_start", start)
        .withColumn("date", F.date_format(start, "yyyy-MM-dd"))
        .withColumn("hour", F.hour(start))
    )


# The hours a pass processes, per coin: coins of one batched pass may amend different earlier
# hours, and a coin's records are told by their topic.
Hours = Mapping[str, Sequence[datetime]]


def _in_hours(col: Column, hours: Sequence[datetime]) -> Column:
    return col.isin([F.lit(h) for h in hours])


def topic_coin(topic: Column) -> Column:
    """The coin of a ``coinfeed.<coin>.<kind>`` topic name (a record of a batched read belongs to
    the coin of the topic it came from; the checks reject a record whose coin differs)."""
    return F.split(topic, r"\.").getItem(1)


def in_coin_hours(
    coin: Column, hour: Column, hours_by_coin: Mapping[str, Sequence[datetime]]
) -> Column:
    """True where ``hour`` is one of ``coin``'s hours (coins with the same hours share one test)."""
    test = F.lit(False)
    for hours, coins in group_by_plan(hours_by_coin):
        if hours:
            test = test | (coin.isin(coins) & _in_hours(hour, hours))
    return test


def _in_plan(hour: Column, hours: Hours) -> Column:
    return in_coin_hours(topic_coin(F.col("kafka_topic")), hour, hours)


def _grace_seconds(grace: timedelta) -> int:
    return int(grace.total_seconds())


def _bound(grace: timedelta, lateness: timedelta | None) -> timedelta:
    return max(grace, lateness or grace)


def on_time_records(
    parsed: Parsed,
    kind: TopicKind,
    hours: Hours,
    grace: timedelta = DEFAULT_GRACE,
    lateness: timedelta | None = None,
) -> DataFrame:
    """Valid records of the processed hours (late ones within ``lateness`` included), with
    ``hour_start``/``date``/``hour`` of event time."""
    df = with_hour(parsed.records, F.col(EVENT_TIME[kind]))
    k = F.col("kafka_timestamp")
    bound = _bound(grace, lateness)
    deadline = F.col("hour_start") + F.expr(f"INTERVAL {_grace_seconds(HOUR + bound)} SECONDS")
    return df.where(
        _in_plan(F.col("hour_start"), hours) & (k >= F.col("hour_start")) & (k < deadline)
    ).drop("key", "value")


def late_event_hours(
    parsed: Parsed,
    kind: TopicKind,
    hours: Hours,
    grace: timedelta,
    lateness: timedelta,
    oldest: datetime,
    now: datetime,
) -> DataFrame:
    """``hour_start`` of closed hours outside each coin's ``hours`` (not older than ``oldest``) that valid
    records arriving after ``grace`` but within ``lateness`` belong to, as ``coin, hour_start``:
    the hours each coin amends."""
    df = with_hour(parsed.records, F.col(EVENT_TIME[kind]))
    k, start = F.col("kafka_timestamp"), F.col("hour_start")
    closed_by = F.expr(f"INTERVAL {_grace_seconds(HOUR + grace)} SECONDS")
    bound = F.expr(f"INTERVAL {_grace_seconds(HOUR + _bound(grace, lateness))} SECONDS")
    late = (k >= start + closed_by) & (k < start + bound)
    wanted = late & (start >= F.lit(oldest)) & (start + closed_by <= F.lit(now))
    found = df.where(wanted & ~_in_plan(start, hours))
    return found.select(topic_coin(F.col("kafka_topic")).alias("coin"), "hour_start").distinct()


def late_merged(counted: DataFrame, grace: timedelta) -> Column:
    """Per counted record: 1 when it arrived after its hour closed (a late record merged)."""
    closed_by = F.expr(f"INTERVAL {_grace_seconds(HOUR + grace)} SECONDS")
    return F.when(F.col("kafka_timestamp") >= F.col("hour_start") + closed_by, 1).otherwise(0)


def quarantined(
    parsed: Parsed,
    kind: TopicKind,
    hours: Hours,
    grace: timedelta = DEFAULT_GRACE,
    lateness: timedelta | None = None,
    oldest: datetime | None = None,
) -> DataFrame:
    """Rejected records and misplaced valid ones, partitioned by their arrival hour. A record of
    an hour older than ``oldest`` (partly gone from Kafka: it cannot be amended) counts as late."""
    k = F.col("kafka_timestamp")
    event_hour = F.date_trunc("hour", F.col(EVENT_TIME[kind]))
    bound = _bound(grace, lateness)
    deadline = event_hour + F.expr(f"INTERVAL {_grace_seconds(HOUR + bound)} SECONDS")
    closed_by = event_hour + F.expr(f"INTERVAL {_grace_seconds(HOUR + grace)} SECONDS")
    too_late = k >= deadline
    if oldest is not None:
        too_late = too_late | ((k >= closed_by) & (event_hour < F.lit(oldest)))
    stamp = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
    limit = (
        f"grace {int(grace.total_seconds() // 60)} min"
        if bound == grace
        else f"lateness bound {bound.total_seconds() / 3600:g} h"
    )
    reason = F.when(
        too_late,
        F.format_string(
            "late: event time %s arrived at %s, after its hour closed (%s)",
            F.date_format(F.col(EVENT_TIME[kind]), stamp),
            F.date_format(k, stamp),
            F.lit(limit),
        ),
    ).when(
        k < event_hour,
        F.format_string(
            "early: event time %s is in a later hour than its Kafka timestamp %s",
            F.date_format(F.col(EVENT_TIME[kind]), stamp),
            F.date_format(k, stamp),
        ),
    )
    misplaced = parsed.records.withColumn("reason", reason).where(F.col("reason").isNotNull())
    cols = [
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
        "kafka_timestamp",
        "key",
        "value",
        "reason",
    ]
    both = misplaced.select(*cols).unionByName(parsed.rejected.select(*cols))
    out = with_hour(both, k).where(_in_plan(F.col("hour_start"), hours))
    coin = topic_coin(F.col("kafka_topic"))
    return out.withColumn("coin", coin).withColumn("kind", F.lit(kind)).select(*QUARANTINE_COLUMNS)
