"""Drop duplicate records: posts by ``(platform, id)``, price ticks by ``(source, ts)``, per coin.

Producers deliver at least once, and a tweet can be fetched twice with newer engagement counts, so
the newest observation wins: highest Kafka timestamp, then partition and offset (a total order, so
the surviving row never depends on how Spark happened to split the input).
"""

from __future__ import annotations

from typing import Final

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

from coinfeed.topics import TopicKind

DEDUP_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "prices": ("coin", "source", "ts"),
    "tweets": ("coin", "platform", "id"),  # version-1 records read as platform x
}


def deduplicate(records: DataFrame, kind: TopicKind) -> DataFrame:
    """One row per dedup key of ``kind``; the newest observation by Kafka position wins."""
    newest_first = Window.partitionBy(*DEDUP_KEYS[kind]).orderBy(
        F.col("kafka_timestamp").desc(),
        F.col("kafka_partition").desc(),
        F.col("kafka_offset").desc(),
    )
    return (
        records.withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .drop("_rank")
    )
