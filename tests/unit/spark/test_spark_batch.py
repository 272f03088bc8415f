"""Batched passes (#14): grouping coins by plan, per-coin hours inside one pass, the fallback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

from coinfeed.spark.assign import in_coin_hours, topic_coin
from coinfeed.spark.hourly import _read_kafka, build_parser, fallback_coins
from coinfeed.spark.hours import ReadWindow, group_by_plan, read_windows, subtract_windows
from coinfeed.spark.lake import stale_coin_partitions
from coinfeed.spark.summary import first_rejections, rows_read_by_coin
from tests.unit.spark.rows import t


def test_group_by_plan_puts_coins_with_the_same_hours_in_one_pass() -> None:
    plans = {
        "btc": [t(2), t(0), t(1)],
        "eth": [t(3)],
        "sol": [t(0), t(1), t(2), t(1)],  # same hours, other order and a repeat
        "ada": [],
    }
    assert group_by_plan(plans) == [
        ([t(0), t(1), t(2)], ["btc", "sol"]),
        ([t(3)], ["eth"]),
        ([], ["ada"]),
    ]
    assert group_by_plan({}) == []


def test_fallback_reruns_every_coin_of_a_failed_pass_alone() -> None:
    assert fallback_coins(["btc", "eth"], failed=True) == ["btc", "eth"]
    assert fallback_coins(["btc", "eth"], failed=False) == []
    # A pass of one coin was already the per-coin path: its error is the coin's own.
    assert fallback_coins(["btc"], failed=True) == []
    assert fallback_coins([], failed=True) == []


def test_stale_coin_partitions_use_each_coins_own_hours() -> None:
    present = [("btc", "2024-01-01", 1), ("eth", "2024-01-01", 0)]
    got = stale_coin_partitions("/lake/q", {"btc": [t(0), t(1)], "eth": [t(0), t(2)]}, present)
    assert got == [
        "/lake/q/coin=btc/date=2024-01-01/hour=0",
        "/lake/q/coin=eth/date=2024-01-01/hour=2",
    ]


def test_topic_coin_and_in_coin_hours(spark: SparkSession) -> None:
    rows = [
        ("coinfeed.btc.prices", t(0)),
        ("coinfeed.btc.tweets", t(1)),
        ("coinfeed.eth.prices", t(0)),
        ("coinfeed.eth.tweets", t(1)),
        ("coinfeed.sol.prices", t(0)),
    ]
    df = spark.createDataFrame(rows, "topic string, hour timestamp").withColumn(
        "coin", topic_coin(F.col("topic"))
    )
    assert [r.coin for r in df.collect()] == ["btc", "btc", "eth", "eth", "sol"]
    # btc amended hour 01, eth did not: eth's hour-01 row stays out; sol is not in the pass.
    keep = in_coin_hours(F.col("coin"), F.col("hour"), {"btc": [t(0), t(1)], "eth": [t(0)]})
    got = sorted(r.topic for r in df.where(keep).collect())
    assert got == ["coinfeed.btc.prices", "coinfeed.btc.tweets", "coinfeed.eth.prices"]


def test_read_kafka_refuses_no_window() -> None:
    with pytest.raises(ValueError, match=r"coinfeed\.btc\.prices,coinfeed\.eth\.prices"):
        _read_kafka(None, "localhost:9092", ["coinfeed.btc.prices", "coinfeed.eth.prices"], [])


def test_amended_hour_inside_a_gapped_backfill_window_needs_no_extra_read() -> None:
    # Plan 00, 02, 03 (01 already in the lake) with a 4 h bound: one merged window covers 01, so
    # the late records that amend 01 were already read; the job skips the (empty) extra read.
    grace, bound, now = timedelta(minutes=5), timedelta(hours=4), t(4, 40)
    have = read_windows([t(0), t(2), t(3)], grace, bound, now)
    assert have == [ReadWindow(t(0), t(4, 40))]
    assert subtract_windows(read_windows([t(1)], grace, bound, now), have) == []


def test_no_batch_flag_is_documented() -> None:
    parser = build_parser()
    assert parser.parse_args(["--coin", "btc", "--no-batch"]).no_batch is True
    assert parser.parse_args(["--coin", "btc"]).no_batch is False
    assert "--no-batch" in parser.format_help()


def test_rows_read_count_only_each_coins_own_hours() -> None:
    # (kind, coin, arrival hour, records) of one aggregation over every coin of a pass.
    arrivals = [
        ("prices", "btc", t(0), 3),
        ("prices", "btc", t(1), 2),  # btc amended hour 01: counted
        ("tweets", "btc", t(2), 7),  # read for a later window, outside btc's hours
        ("prices", "eth", t(1), 4),  # eth did not amend 01
        ("tweets", "eth", t(0), 5),
    ]
    got = rows_read_by_coin(
        arrivals, {"btc": [t(0), t(1)], "eth": [t(0)], "sol": [t(0)]}, ("prices", "tweets")
    )
    assert got == {
        "btc": {"prices": 5, "tweets": 0},
        "eth": {"prices": 0, "tweets": 5},
        "sol": {"prices": 0, "tweets": 0},
    }


def test_first_rejection_is_the_first_by_kafka_position_over_all_partitions() -> None:
    groups = [
        ("btc", 2, ("coinfeed.btc.tweets", 0, 4), "tweet reason"),
        ("btc", 3, ("coinfeed.btc.prices", 1, 9), "price reason"),
        ("btc", 1, ("coinfeed.btc.prices", 1, 10), "later"),
        ("eth", 1, ("coinfeed.eth.prices", 0, 0), "eth reason"),
    ]
    assert first_rejections(groups) == {"btc": (6, "price reason"), "eth": (1, "eth reason")}
    assert first_rejections([]) == {}
