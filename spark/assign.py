"""Assign parsed records to the hours being processed (see :mod:`coinfeed.spark.hours`).

A valid record counts in its event hour ``E`` when its Kafka timestamp ``k`` is in
``[E, E+1h+grace)``. Otherwise it is quarantined in its *arrival* hour (the hour of ``k``) with the
reason — too late for its hour, or stamped in a later hour than it arrived — so nothing is lost
silently. Rejected (invalid) records are quarantined in their arrival hour too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

from coinfeed.spark.hours import DEFAULT_GRACE, HOUR
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


def _in_hours(col: Column, hours: Sequence[datetime]) -> Column:
    return col.isin([F.lit(h) for h in hours])


def _grace_seconds(grace: timedelta) -> int:
    return int(grace.total_seconds())


def on_time_records(
    parsed: Parsed, kind: TopicKind, hours: Sequence[datetime], grace: timedelta = DEFAULT_GRACE
) -> DataFrame:
    """Valid records of the processed hours, with ``hour_start``/``date``/``hour`` of event time."""
    df = with_hour(parsed.records, F.col(EVENT_TIME[kind]))
    k = F.col("kafka_timestamp")
    deadline = F.col("hour_start") + F.expr(f"INTERVAL {_grace_seconds(HOUR + grace)} SECONDS")
    return df.where(
        _in_hours(F.col("hour_start"), hours) & (k >= F.col("hour_start")) & (k < deadline)
    ).drop("key", "value")


def quarantined(
    parsed: Parsed, kind: TopicKind, hours: Sequence[datetime], grace: timedelta = DEFAULT_GRACE
) -> DataFrame:
    """Rejected records and misplaced valid ones, partitioned by their arrival hour."""
    k = F.col("kafka_timestamp")
    event_hour = F.date_trunc("hour", F.col(EVENT_TIME[kind]))
    deadline = event_hour + F.expr(f"INTERVAL {_grace_seconds(HOUR + grace)} SECONDS")
    stamp = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
    reason = F.when(
        k >= deadline,
        F.format_string(
            "late: event time %s arrived at %s, after its hour closed (grace %s min)",
            F.date_format(F.col(EVENT_TIME[kind]), stamp),
            F.date_format(k, stamp),
            F.lit(int(grace.total_seconds() // 60)),
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
    coin = F.split(F.col("kafka_topic"), r"\.").getItem(1)
    out = with_hour(both, k).where(_in_hours(F.col("hour_start"), hours))
    return out.withColumn("coin", coin).withColumn("kind", F.lit(kind)).select(*QUARANTINE_COLUMNS)
