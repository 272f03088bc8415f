"""Drop duplicate records: posts by ``(platform, id)``, price ticks by ``(source, ts)``, per coin.

Producers deliver at least once, and a tweet can be fetched twice with newer engagement counts, so
the newest observation wins: highest Kafka timestamp, then partition and offset (a total order, so
the surviving row never depends on how Spark happened to split the input). One hash aggregation per
key (``max_by``) picks it: no sort of the records, and partial aggregation before the shuffle.
"""

from __future__ import annotations

from typing import Final

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

from coinfeed.topics import TopicKind

DEDUP_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "prices": ("coin", "source", "ts"),
    "tweets": ("coin", "platform", "id"),  # version-1 records read as platform x
}


def deduplicate(records: DataFrame, kind: TopicKind) -> DataFrame:
    """One row per dedup key of ``kind``; the newest observation by Kafka position wins."""
    keys = DEDUP_KEYS[kind]
    position = F.struct("kafka_timestamp", "kafka_partition", "kafka_offset")
    newest = F.max_by(F.struct(*records.columns), position).alias("_row")
    return records.groupBy(*keys).agg(newest).select("_row.*")
