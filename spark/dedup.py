"""Drop duplicate records: posts by ``(platform, id)``, price ticks by ``(source, ts)``, per coin.

Producers deliver at least once, and a tweet can be fetched twice with newer engagement counts, so
the newest observation wins: highest Kafka timestamp, then partition and offset (a total order, so
the surviving row never depends on how Spark happened to split the input). One hash aggregation per
key (``max_by``) picks it: no sort of the records, and partial aggregation before the shuffle.
"""

from __future__ import annotations

from typing import Final

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

from coinfeed.topics import TopicKind

DEDUP_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "prices": ("coin", "source", "ts"),
    "tweets": ("coin", "platform", "id"),  # version-1 records read as platform x
}


def deduplicate(records: DataFrame, kind: TopicKind, **sums: Column) -> DataFrame:
    """One row per dedup key of ``kind``; the newest observation by Kafka position wins.

    ``sums`` (name -> per-record column) add each key's sum of that column after the record's
    own columns: figures over every record before dedup (records per key, late ones) then come out
    of the same aggregation instead of another pass over the records."""
    keys = DEDUP_KEYS[kind]
    position = F.struct("kafka_timestamp", "kafka_partition", "kafka_offset")
    newest = F.max_by(F.struct(*records.columns), position).alias("_row")
    totals = [F.sum(col).alias(name) for name, col in sums.items()]
    return records.groupBy(*keys).agg(newest, *totals).select("_row.*", *sums)
