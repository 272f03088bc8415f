"""Per (coin, hour) post figures from deduplicated, sentiment-scored posts (X and Bluesky).

The figures cover every platform together; ``<platform>_post_count`` and
``<platform>_sentiment_mean`` split volume and mean sentiment per platform (one pair per entry of
:data:`coinfeed.schemas.PLATFORMS`). VADER rounds the compound score to 4 decimals, so sums run on
exact integers (score x 10^4) and are divided once at the end: the result never depends on the
order Spark merges partial sums.
"""

from __future__ import annotations

from typing import Final

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

from coinfeed.schemas import PLATFORMS
from coinfeed.spark.sentiment import NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD

TOP_HASHTAGS: Final = 5
_SCALE: Final = 10_000

TWEET_COLUMNS = (
    "tweet_count",
    "unique_authors",
    "sentiment_mean",
    "share_positive",
    "share_negative",
    "share_neutral",
    "sentiment_weighted",
    "likes_total",
    "retweets_total",
    "top_hashtags",
)


def platform_columns(platform: str) -> tuple[str, str]:
    """The hourly table's per-platform columns: post count and mean sentiment."""
    return f"{platform}_post_count", f"{platform}_sentiment_mean"


PLATFORM_COLUMNS = tuple(c for p in PLATFORMS for c in platform_columns(p))
POST_COLUMNS = (*TWEET_COLUMNS, *PLATFORM_COLUMNS)


def top_hashtags(tweets: DataFrame, n: int = TOP_HASHTAGS) -> DataFrame:
    """``coin, hour_start, top_hashtags``: the ``n`` hashtags used by most tweets of the hour.

    Lower-cased, counted once per tweet, ties broken alphabetically so the list is deterministic.
    """
    tags = tweets.select(
        "coin",
        "hour_start",
        F.explode(F.array_distinct(F.transform("hashtags", lambda t: F.lower(t)))).alias("tag"),
    )
    counted = tags.groupBy("coin", "hour_start", "tag").agg(F.count(F.lit(1)).alias("uses"))
    rank = Window.partitionBy("coin", "hour_start").orderBy(F.col("uses").desc(), F.col("tag"))
    best = counted.withColumn("_rank", F.row_number().over(rank)).where(F.col("_rank") <= n)
    return best.groupBy("coin", "hour_start").agg(
        F.transform(
            F.array_sort(F.collect_list(F.struct("_rank", "tag"))), lambda x: x["tag"]
        ).alias("top_hashtags")
    )


def tweet_hourly(tweets: DataFrame) -> DataFrame:
    """``coin, hour_start`` + :data:`POST_COLUMNS` from posts with a ``sentiment`` column.

    ``unique_authors`` counts distinct (platform, author): ids of different platforms never
    collide anyway. A platform without posts in the hour has count 0 and null sentiment.

    ``sentiment_weighted`` is the engagement-weighted mean compound score with weight
    ``1 + like_count + retweet_count`` per tweet (the 1 keeps tweets nobody engaged with).
    Shares use VADER's thresholds: positive ``>= 0.05``, negative ``<= -0.05``, neutral between.
    """
    score = F.round(F.col("sentiment") * _SCALE).cast("long")
    weight = F.lit(1) + F.col("like_count") + F.col("retweet_count")
    n = F.count(F.lit(1))
    per_platform = []
    for platform in PLATFORMS:
        mine = F.col("platform") == platform
        count_name, _ = platform_columns(platform)
        per_platform += [
            F.sum(F.when(mine, 1).otherwise(0)).cast("long").alias(count_name),
            F.sum(F.when(mine, score)).alias(f"_score_{platform}"),
        ]
    stats = tweets.groupBy("coin", "hour_start").agg(
        n.alias("tweet_count"),
        F.countDistinct("platform", "author_id").alias("unique_authors"),
        F.sum(score).alias("_score"),
        F.sum(F.when(F.col("sentiment") >= POSITIVE_THRESHOLD, 1).otherwise(0)).alias("_pos"),
        F.sum(F.when(F.col("sentiment") <= NEGATIVE_THRESHOLD, 1).otherwise(0)).alias("_neg"),
        F.sum(weight * score).alias("_wscore"),
        F.sum(weight).alias("_weight"),
        F.sum("like_count").alias("likes_total"),
        F.sum("retweet_count").alias("retweets_total"),
        *per_platform,
    )
    count = F.col("tweet_count").cast("double")
    platform_figures: list[Column | str] = []
    for platform in PLATFORMS:
        count_col, mean_col = platform_columns(platform)
        platform_figures += [
            count_col,
            (
                F.col(f"_score_{platform}").cast("double")
                / (F.col(count_col).cast("double") * _SCALE)
            ).alias(mean_col),
        ]
    stats = stats.select(
        "coin",
        "hour_start",
        "tweet_count",
        "unique_authors",
        (F.col("_score").cast("double") / (count * _SCALE)).alias("sentiment_mean"),
        (F.col("_pos") / count).alias("share_positive"),
        (F.col("_neg") / count).alias("share_negative"),
        ((F.col("tweet_count") - F.col("_pos") - F.col("_neg")) / count).alias("share_neutral"),
        (F.col("_wscore").cast("double") / (F.col("_weight").cast("double") * _SCALE)).alias(
            "sentiment_weighted"
        ),
        "likes_total",
        "retweets_total",
        *platform_figures,
    )
    tags = top_hashtags(tweets)
    return stats.join(tags, ["coin", "hour_start"], "left").select(
        "coin",
        "hour_start",
        *[
            F.coalesce(F.col(c), F.array().cast("array<string>")).alias(c)
            if c == "top_hashtags"
            else F.col(c)
            for c in POST_COLUMNS
        ],
    )
