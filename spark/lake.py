"""The lake layout (Parquet, partitioned coin/date/hour) and the only code that touches it.

Writes use dynamic partition overwrite, so only the partitions present in the output (the
processed hours) are replaced. Dynamic overwrite cannot remove a partition the output has no rows
for, so after each write the processed hours' partitions that the output lacks are deleted: a rerun
leaves exactly what the hours now yield (e.g. no quarantine partition once its bad records are
gone). Each partition is written by one task, sorted, as one file: a rerun of the same hours writes
the same rows in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from pyspark.sql import DataFrame

PARTITION_COLUMNS: Final = ("coin", "date", "hour")
RAW_PRICES: Final = "raw/prices"
RAW_TWEETS: Final = "raw/tweets"
HOURLY: Final = "hourly"
QUARANTINE: Final = "quarantine"
DATASETS: Final = (RAW_PRICES, RAW_TWEETS, QUARANTINE, HOURLY)


def dataset_path(lake: str, dataset: str) -> str:
    return f"{lake.rstrip('/')}/{dataset}"


def partition_dir(path: str, coin: str, hour: datetime) -> str:
    """The directory of one coin/date/hour partition (as Spark names it: ``hour=5``)."""
    h = hour.astimezone(UTC)
    return f"{path.rstrip('/')}/coin={coin}/date={h:%Y-%m-%d}/hour={h.hour}"


def stale_partitions(
    path: str, coin: str, hours: Iterable[datetime], present: Iterable[tuple[str, str, int]]
) -> list[str]:
    """Partition dirs of the processed ``hours`` of ``coin`` that the new output has no rows for
    (``present``: its ``(coin, date, hour)`` values); they would survive a dynamic overwrite."""
    have = {
        partition_dir(path, c, datetime.strptime(d, "%Y-%m-%d").replace(hour=h, tzinfo=UTC))
        for c, d, h in present
    }
    wanted = sorted({partition_dir(path, coin, h) for h in hours})
    return [p for p in wanted if p not in have]


def stale_coin_partitions(
    path: str,
    hours_by_coin: Mapping[str, Iterable[datetime]],
    present: Iterable[tuple[str, str, int]],
) -> list[str]:
    """:func:`stale_partitions` for several coins at once, each with its own processed hours (a
    batched pass: coins may amend different earlier hours)."""
    present = list(present)
    return [
        p
        for coin, hours in hours_by_coin.items()
        for p in stale_partitions(path, coin, hours, present)
    ]


def write_partitions(
    df: DataFrame,
    path: str,
    order: Sequence[str],
    hours_by_coin: Mapping[str, Iterable[datetime]],
    present: Iterable[tuple[str, str, int]] | None = None,
) -> None:
    """Replace exactly each coin's date/hour partitions of its hours (one sorted file each):
    those present in ``df`` are overwritten, those it has no rows for are deleted.

    ``present``: ``df``'s ``(coin, date, hour)`` values when the caller already knows them (the
    job counts its rows per partition anyway); else one more Spark job finds them. Known to be
    empty (``present`` given and empty: e.g. an hour without a quarantined record, the usual
    case), ``df`` is not written at all: a dynamic overwrite of no rows replaces nothing, and
    writing them would still cost a Spark job and a commit."""
    if present is not None:
        present = list(present)
    if present is None or present:
        (
            df.repartition(*PARTITION_COLUMNS)
            .sortWithinPartitions(*PARTITION_COLUMNS, *order)
            .write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(*PARTITION_COLUMNS)
            .parquet(path)
        )
    wanted = {c: list(h) for c, h in hours_by_coin.items() if h}
    if not wanted:
        return
    if present is None:
        present = [
            (r["coin"], r["date"], int(r["hour"]))
            for r in df.select(*PARTITION_COLUMNS).distinct().collect()
        ]
    delete_dirs(df.sparkSession, stale_coin_partitions(path, wanted, present))


def delete_dirs(spark: Any, dirs: Sequence[str]) -> None:
    """Remove directories through Hadoop's file system (local or s3a); a missing one is fine."""
    if not dirs:
        return
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for d in dirs:
        p = jvm.org.apache.hadoop.fs.Path(d)
        p.getFileSystem(conf).delete(p, True)


def existing_hours_by_coin(
    spark: Any, lake: str, coins: Sequence[str]
) -> dict[str, list[datetime]]:
    """Per coin of ``coins``, the hours that already have an ``hourly`` partition with data (local
    or s3a), from one listing of the dataset (a shared run lists the lake once, not per coin)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    pattern = jvm.org.apache.hadoop.fs.Path(
        f"{dataset_path(lake, HOURLY)}/coin=*/date=*/hour=*/*.parquet"
    )
    statuses = pattern.getFileSystem(conf).globStatus(pattern)
    found: dict[str, set[datetime]] = {coin: set() for coin in coins}
    for status in statuses or []:
        hour_dir = status.getPath().getParent()
        date_dir = hour_dir.getParent()
        coin = date_dir.getParent().getName().removeprefix("coin=")
        if coin not in found:
            continue
        date = date_dir.getName().removeprefix("date=")
        hour = int(hour_dir.getName().removeprefix("hour="))
        found[coin].add(datetime.strptime(date, "%Y-%m-%d").replace(hour=hour, tzinfo=UTC))
    return {coin: sorted(hours) for coin, hours in found.items()}
