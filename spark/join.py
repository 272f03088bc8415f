"""One row per coin and hour: price figures joined with tweet figures."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

from coinfeed.schemas import PLATFORMS
from coinfeed.spark.prices import PRICE_COLUMNS
from coinfeed.spark.tweets import POST_COLUMNS, platform_columns

HOURLY_COLUMNS = ("coin", "date", "hour", "hour_start", *PRICE_COLUMNS, *POST_COLUMNS)

# An hour nobody posted in has zero posts and engagement, but no sentiment (undefined, not 0).
_ZERO_WHEN_MISSING = (
    "tick_count",
    "tweet_count",
    "unique_authors",
    "likes_total",
    "retweets_total",
    *(platform_columns(p)[0] for p in PLATFORMS),
)


def hourly_stats(prices: DataFrame, tweets: DataFrame) -> DataFrame:
    """Full outer join on ``(coin, hour_start)``: an hour with prices but no tweets (or the
    reverse) still has its row. Adds the ``date``/``hour`` partition columns."""
    joined = prices.join(tweets, ["coin", "hour_start"], "full_outer")
    cols = []
    for c in HOURLY_COLUMNS:
        if c == "date":
            cols.append(F.date_format("hour_start", "yyyy-MM-dd").alias("date"))
        elif c == "hour":
            cols.append(F.hour("hour_start").alias("hour"))
        elif c in _ZERO_WHEN_MISSING:
            cols.append(F.coalesce(F.col(c), F.lit(0).cast("long")).alias(c))
        elif c == "top_hashtags":
            cols.append(F.coalesce(F.col(c), F.array().cast("array<string>")).alias(c))
        else:
            cols.append(F.col(c))
    return joined.select(*cols)
