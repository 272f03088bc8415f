"""The lake layout (Parquet, partitioned coin/date/hour) and the only code that touches it.

Writes use dynamic partition overwrite, so only the partitions present in the output (the
processed hours) are replaced. Each partition is written by one task, sorted, as one file: a rerun
of the same hours writes the same rows in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def write_partitions(df: DataFrame, path: str, order: Sequence[str]) -> None:
    """Replace exactly the coin/date/hour partitions present in ``df`` (one sorted file each)."""
    (
        df.repartition(*PARTITION_COLUMNS)
        .sortWithinPartitions(*PARTITION_COLUMNS, *order)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(*PARTITION_COLUMNS)
        .parquet(path)
    )


def existing_hours(spark: Any, lake: str, coin: str) -> list[datetime]:
    """Hours that already have an ``hourly`` partition with data for ``coin`` (local or s3a)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    pattern = jvm.org.apache.hadoop.fs.Path(
        f"{dataset_path(lake, HOURLY)}/coin={coin}/date=*/hour=*/*.parquet"
    )
    statuses = pattern.getFileSystem(conf).globStatus(pattern)
    hours = set()
    for status in statuses or []:
        hour_dir = status.getPath().getParent()
        date = hour_dir.getParent().getName().removeprefix("date=")
        hour = int(hour_dir.getName().removeprefix("hour="))
        hours.add(datetime.strptime(date, "%Y-%m-%d").replace(hour=hour, tzinfo=UTC))
    return sorted(hours)
