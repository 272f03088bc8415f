"""Builders of raw Kafka rows and records for the Spark unit tests (from the shared schemas)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from coinfeed.schemas import PriceTick, Tweet
from coinfeed.spark.schema import KAFKA_ROW


def t(hh: int, mm: int = 0, ss: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 1, day, hh, mm, ss, tzinfo=UTC)


def tick(hh: int, mm: int, price: float, source: str = "binance", ss: int = 0) -> PriceTick:
    return PriceTick(coin="btc", source=source, pair="BTC/USDT", ts=t(hh, mm, ss), price=price)


def tweet(
    tid: str,
    hh: int,
    mm: int,
    text: str,
    author: str = "1",
    likes: int = 0,
    rts: int = 0,
    tags: list[str] | None = None,
) -> Tweet:
    return Tweet(
        coin="btc",
        id=tid,
        created_at=t(hh, mm),
        text=text,
        author_id=author,
        like_count=likes,
        retweet_count=rts,
        hashtags=tags or [],
    )


def kafka_rows(
    spark: SparkSession, topic: str, values: list[tuple[bytes | None, datetime]], partition: int = 0
) -> DataFrame:
    """Raw rows as the Kafka source returns them: one per (value, Kafka timestamp)."""
    data: list[Any] = [(None, v, topic, partition, i, ts) for i, (v, ts) in enumerate(values)]
    return spark.createDataFrame(data, KAFKA_ROW)
