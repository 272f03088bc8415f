from __future__ import annotations

import math
from datetime import datetime

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from coinfeed.schemas import PriceTick, Tweet
from coinfeed.spark.assign import on_time_records
from coinfeed.spark.dedup import deduplicate
from coinfeed.spark.join import HOURLY_COLUMNS, hourly_stats
from coinfeed.spark.parse import parse_records
from coinfeed.spark.prices import price_hourly
from coinfeed.spark.sentiment import with_sentiment
from coinfeed.spark.tweets import tweet_hourly
from tests.unit.spark.rows import kafka_rows, t, tick, tweet

HOURS = [t(0), t(1), t(2)]


def _records(spark: SparkSession, kind: str, recs: list[PriceTick] | list[Tweet]) -> DataFrame:
    topic = f"coinfeed.btc.{kind}"
    field = "ts" if kind == "prices" else "created_at"
    values = [(r.to_json(), getattr(r, field)) for r in recs]
    return on_time_records(
        parse_records(kafka_rows(spark, topic, values), kind), kind, {"btc": HOURS}
    )  # type: ignore[arg-type]


def _repeated_tweets() -> list[Tweet]:
    """Post 7 observed twice (1, then 5 likes) around post 8."""
    return [
        tweet("7", 0, 1, "good", likes=1),
        tweet("8", 0, 2, "bad"),
        tweet("7", 0, 1, "good", likes=5),
    ]


def test_dedup_keeps_the_newest_observation(spark: SparkSession) -> None:
    tweets = _records(spark, "tweets", _repeated_tweets())
    out = deduplicate(tweets, "tweets").select("id", "like_count", "kafka_offset")
    assertDataFrameEqual(
        out,
        spark.createDataFrame(
            [("7", 5, 2), ("8", 0, 1)], "id string, like_count long, kafka_offset long"
        ),
    )
    ticks = _records(
        spark,
        "prices",
        [tick(0, 1, 10.0), tick(0, 1, 11.0, source="coingecko"), tick(0, 1, 12.0)],
    )
    out = deduplicate(ticks, "prices").select("source", "price")
    assertDataFrameEqual(
        out,
        spark.createDataFrame(
            [("binance", 12.0), ("coingecko", 11.0)], "source string, price double"
        ),
    )


def test_dedup_sums_count_every_record_of_a_key(spark: SparkSession) -> None:
    from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

    tweets = _records(spark, "tweets", [*_repeated_tweets(), tweet("7", 0, 3, "good", likes=2)])
    liked = F.when(F.col("like_count") > 1, 1).otherwise(0)
    out = deduplicate(tweets, "tweets", copies=F.lit(1), liked=liked)
    # The sums come after the record's own columns, which are those of a plain dedup.
    assert out.columns == [*deduplicate(tweets, "tweets").columns, "copies", "liked"]
    assertDataFrameEqual(
        out.select("id", "like_count", "copies", "liked"),
        spark.createDataFrame(
            [("7", 2, 3, 2), ("8", 0, 1, 0)],
            "id string, like_count long, copies long, liked long",
        ),
    )


def test_price_hourly_figures(spark: SparkSession) -> None:
    ticks = _records(
        spark,
        "prices",
        [
            tick(0, 20, 99.0),
            tick(0, 0, 100.0),
            tick(0, 10, 105.0, source="coingecko"),
            tick(0, 10, 110.0),
            tick(1, 30, 200.0),
        ],
    )
    out = price_hourly(ticks)
    vol = math.sqrt(math.log(110 / 100) ** 2 + math.log(105 / 110) ** 2 + math.log(99 / 105) ** 2)
    expected = spark.createDataFrame(
        [
            (
                "btc",
                datetime(2024, 1, 1, 0),
                100.0,
                110.0,
                99.0,
                99.0,
                103.5,
                4,
                math.log(0.99),
                vol,
            ),
            ("btc", datetime(2024, 1, 1, 1), 200.0, 200.0, 200.0, 200.0, 200.0, 1, 0.0, 0.0),
        ],
        "coin string, hour_start timestamp, open double, high double, low double, close double, "
        "mean_price double, tick_count long, log_return double, realized_volatility double",
    )
    assertDataFrameEqual(out, expected)


def test_sentiment_scores_with_vader(spark: SparkSession) -> None:
    df = spark.createDataFrame([("good",), ("bad",), ("the table",)], "text string")
    assertDataFrameEqual(
        with_sentiment(df),
        spark.createDataFrame(
            [("good", 0.4404), ("bad", -0.5423), ("the table", 0.0)],
            "text string, sentiment double",
        ),
        rtol=0,
        atol=0,
    )


TWEETS = [
    tweet("1", 0, 1, "good", author="1", likes=2, rts=1, tags=["BTC", "moon"]),
    tweet("2", 0, 2, "bad", author="2", tags=["btc"]),
    tweet("3", 0, 3, "the table", author="1", likes=1, tags=["Moon", "hodl", "btc", "BTC"]),
    tweet(
        "4",
        0,
        4,
        "great news for bitcoin",
        author="3",
        likes=10,
        rts=5,
        tags=["zz", "c", "b", "a", "hodl"],
    ),
    tweet("5", 1, 0, "this is terrible", author="9"),
]
TWEET_SCHEMA = (
    "coin string, hour_start timestamp, tweet_count long, unique_authors long, "
    "sentiment_mean double, share_positive double, share_negative double, share_neutral double, "
    "sentiment_weighted double, likes_total long, retweets_total long, top_hashtags array<string>, "
    # per platform (schema v2): every tweet here is an X post, so Bluesky has 0 and no sentiment
    "x_post_count long, x_sentiment_mean double, bluesky_post_count long, "
    "bluesky_sentiment_mean double"
)


def test_tweet_hourly_figures(spark: SparkSession) -> None:
    tweets = with_sentiment(_records(spark, "tweets", TWEETS))
    weighted = (4 * 0.4404 + 1 * -0.5423 + 2 * 0.0 + 16 * 0.6249) / 23
    expected = spark.createDataFrame(
        [
            (
                "btc",
                datetime(2024, 1, 1, 0),
                4,
                3,
                0.523 / 4,
                0.5,
                0.25,
                0.25,
                weighted,
                13,
                6,
                ["btc", "hodl", "moon", "a", "b"],
                4,
                0.523 / 4,
                0,
                None,
            ),
            (
                "btc",
                datetime(2024, 1, 1, 1),
                1,
                1,
                -0.4767,
                0.0,
                1.0,
                0.0,
                -0.4767,
                0,
                0,
                [],
                1,
                -0.4767,
                0,
                None,
            ),
        ],
        TWEET_SCHEMA,
    )
    assertDataFrameEqual(tweet_hourly(tweets), expected)


def test_hourly_stats_keeps_hours_without_tweets_or_prices(spark: SparkSession) -> None:
    prices = price_hourly(_records(spark, "prices", [tick(0, 0, 100.0), tick(1, 0, 200.0)]))
    tweets = tweet_hourly(
        with_sentiment(
            _records(spark, "tweets", [tweet("1", 0, 1, "good"), tweet("2", 2, 1, "bad")])
        )
    )
    out = hourly_stats(prices, tweets)
    assert tuple(out.columns) == HOURLY_COLUMNS
    rows = {r.hour: r for r in out.collect()}
    assert sorted(rows) == [0, 1, 2]
    assert (rows[0].date, rows[0].close, rows[0].tweet_count, rows[0].sentiment_mean) == (
        "2024-01-01",
        100.0,
        1,
        0.4404,
    )
    assert (rows[1].close, rows[1].tick_count, rows[1].tweet_count, rows[1].likes_total) == (
        200.0,
        1,
        0,
        0,
    )
    assert (rows[1].sentiment_mean, rows[1].share_positive, rows[1].top_hashtags) == (
        None,
        None,
        [],
    )
    assert (rows[2].open, rows[2].tick_count, rows[2].tweet_count, rows[2].sentiment_mean) == (
        None,
        0,
        1,
        -0.5423,
    )


BSKY = "did:plc:abcdefghijklmnopqrstuvwx"


def bsky_post(rkey: str, mm: int, text: str, author: str = BSKY) -> Tweet:
    return Tweet(
        platform="bluesky",
        coin="btc",
        id=f"at://{author}/app.bsky.feed.post/{rkey}",
        created_at=t(0, mm),
        text=text,
        author_id=author,
        observed_at=t(0, mm, 1),
    )


def test_version_1_and_2_posts_of_both_platforms_aggregate_per_platform(
    spark: SparkSession,
) -> None:
    """Version-1 records already in Kafka next to version-2 X and Bluesky posts: one model reads
    all, duplicates are dropped per (platform, id), and the hour is split by platform."""
    v1 = tweet("11", 0, 1, "good", author="1").model_copy(update={"schema_version": 1})
    v2_same_id = tweet("11", 0, 1, "good", author="1", likes=3)  # the same X post, observed later
    posts = [
        v1,
        tweet("12", 0, 2, "bad", author="2"),
        v2_same_id,
        bsky_post("3ka", 3, "great news for bitcoin"),
        bsky_post("3kb", 4, "this is terrible", author="did:plc:zyxwvutsrqponmlkjihgfedc"),
        bsky_post("3ka", 3, "great news for bitcoin"),  # Jetstream replay after a reconnect
    ]
    records = _records(spark, "tweets", posts)
    assert records.where("schema_version = 1").count() == 1
    unique = deduplicate(records, "tweets")
    assert unique.count() == 4
    assert unique.where("id = '11'").first().like_count == 3  # type: ignore[union-attr]
    row = tweet_hourly(with_sentiment(unique)).first()
    assert row is not None
    assert (row.tweet_count, row.unique_authors) == (4, 4)
    assert (row.x_post_count, row.bluesky_post_count) == (2, 2)
    assert row.x_sentiment_mean == pytest.approx((0.4404 - 0.5423) / 2, abs=1e-12)
    assert row.bluesky_sentiment_mean == pytest.approx((0.6249 - 0.4767) / 2, abs=1e-12)
    assert row.sentiment_mean == pytest.approx((0.4404 - 0.5423 + 0.6249 - 0.4767) / 4, abs=1e-12)
