from __future__ import annotations

import math
from datetime import datetime

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
    return on_time_records(parse_records(kafka_rows(spark, topic, values), kind), kind, HOURS)  # type: ignore[arg-type]


def test_dedup_keeps_the_newest_observation(spark: SparkSession) -> None:
    tweets = _records(
        spark,
        "tweets",
        [
            tweet("7", 0, 1, "good", likes=1),
            tweet("8", 0, 2, "bad"),
            tweet("7", 0, 1, "good", likes=5),
        ],
    )
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
    "sentiment_weighted double, likes_total long, retweets_total long, top_hashtags array<string>"
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
            ),
            ("btc", datetime(2024, 1, 1, 1), 1, 1, -0.4767, 0.0, 1.0, 0.0, -0.4767, 0, 0, []),
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
