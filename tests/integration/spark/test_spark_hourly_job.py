"""The hourly job as a real subprocess against the real Kafka cluster and Pushgateway.

One known two-hour data set (duplicates, a late record, a too-late record, malformed JSON, a
wrong-typed field, non-UTF-8 bytes, an oversized text) -> the hourly table and the quarantine
equal the expected rows exactly; reruns, a rerun after a kill and a gap backfill leave the same
content (see :func:`snapshot`). Spark starts take ~20 s here, so the scenarios share one test and one lake.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from coinfeed.hourly_status import parse
from coinfeed.kafka import make_admin, make_producer
from coinfeed.schemas import PriceTick, Tweet
from coinfeed.topics import feed_topics

COIN = "sparkit"
TOPICS = feed_topics(COIN)
NOW = "2024-01-01T02:10:00Z"  # hours 00 and 01 are closed (grace 5 min)
JOB_ARGS = [
    "--coin",
    COIN,
    "--now",
    NOW,
    "--master",
    "local[2]",
    "--shuffle-partitions",
    "2",
    "--driver-memory",
    "512m",
    "--retention-hours",
    "3",  # keeps the gap search to hours 00 and 01
    # Late data off (grace only): this data set's "too late" record stays quarantined. Late data
    # within a bound is covered by test_spark_late_and_many_feeds.py.
    "--max-lateness-hours",
    "0",
]


def at(hh: int, mm: int = 0) -> datetime:
    return datetime(2024, 1, 1, hh, mm, tzinfo=UTC)


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def tick(hh: int, mm: int, price: float, source: str = "binance") -> bytes:
    return PriceTick(
        coin=COIN, source=source, pair="BTC/USDT", ts=at(hh, mm), price=price
    ).to_json()


def tweet(
    tid: str,
    mm: int,
    text: str,
    author: str,
    likes: int = 0,
    rts: int = 0,
    tags: tuple[str, ...] = (),
) -> bytes:
    return Tweet(
        coin=COIN,
        id=tid,
        created_at=at(0, mm),
        text=text,
        author_id=author,
        like_count=likes,
        retweet_count=rts,
        hashtags=list(tags),
    ).to_json()


def as_version_1(record: bytes) -> bytes:
    """A tweet exactly as a version-1 producer wrote it (before platform and observed_at)."""
    data = json.loads(record)
    del data["platform"], data["observed_at"]
    return json.dumps({**data, "schema_version": 1}).encode()


GOOD_TICK = json.loads(tick(0, 20, 1.0))
# (topic kind, value, Kafka timestamp)
RECORDS: list[tuple[str, bytes, datetime]] = [
    ("prices", tick(0, 0, 100.0), at(0, 0)),
    ("prices", tick(0, 15, 110.0), at(0, 15)),
    ("prices", tick(0, 15, 110.0), at(0, 16)),  # duplicate (same source and ts)
    ("prices", tick(0, 30, 105.0, "coingecko"), at(0, 30)),
    ("prices", tick(0, 59, 120.0), at(1, 2)),  # late, within grace: counts in hour 00
    ("prices", tick(1, 0, 120.0), at(1, 0)),
    ("prices", tick(1, 30, 90.0), at(1, 30)),
    ("prices", tick(1, 45, 95.0), at(1, 45)),
    ("prices", tick(0, 40, 500.0), at(1, 20)),  # too late: quarantined in hour 01
    ("prices", b'{"coin": "sparkit", "price": ', at(0, 10)),  # malformed JSON
    ("prices", json.dumps({**GOOD_TICK, "price": "abc"}).encode(), at(0, 20)),  # wrong type
    ("prices", b"\xff\xfe\x00\x81 not utf-8", at(1, 10)),  # non-UTF-8
    ("tweets", tweet("11", 1, "good", "1", likes=2, rts=1, tags=("BTC", "moon")), at(0, 1)),
    # already in Kafka from before schema version 2: read and counted like the others
    ("tweets", as_version_1(tweet("12", 2, "bad", "2")), at(0, 2)),
    ("tweets", tweet("11", 1, "good", "1", likes=4, rts=1, tags=("BTC", "moon")), at(0, 30)),
    (
        "tweets",
        tweet("13", 3, "great news for bitcoin", "3", likes=10, rts=5, tags=("Moon",)),
        at(0, 3),
    ),
    (
        "tweets",
        json.dumps(json.loads(tweet("14", 4, "x", "4")) | {"text": "y" * 4001}).encode(),
        at(0, 5),
    ),
]

V0 = math.sqrt(math.log(110 / 100) ** 2 + math.log(105 / 110) ** 2 + math.log(120 / 105) ** 2)
V1 = math.sqrt(math.log(90 / 120) ** 2 + math.log(95 / 90) ** 2)
EXPECTED_HOURLY = [
    {
        "coin": COIN,
        "date": "2024-01-01",
        "hour": 0,
        "open": 100.0,
        "high": 120.0,
        "low": 100.0,
        "close": 120.0,
        "mean_price": 108.75,
        "tick_count": 4,
        "log_return": math.log(1.2),
        "realized_volatility": V0,
        "tweet_count": 3,
        "unique_authors": 3,
        "sentiment_mean": (0.4404 - 0.5423 + 0.6249) / 3,
        "share_positive": 2 / 3,
        "share_negative": 1 / 3,
        "share_neutral": 0.0,
        "sentiment_weighted": (6 * 0.4404 - 0.5423 + 16 * 0.6249) / 23,
        "likes_total": 14,
        "retweets_total": 6,
        "top_hashtags": ["moon", "btc"],
        # per-platform columns (schema v2): all three posts are X posts (one of them version 1)
        "x_post_count": 3,
        "x_sentiment_mean": (0.4404 - 0.5423 + 0.6249) / 3,
        "bluesky_post_count": 0,
        "bluesky_sentiment_mean": None,
    },
    {
        "coin": COIN,
        "date": "2024-01-01",
        "hour": 1,
        "open": 120.0,
        "high": 120.0,
        "low": 90.0,
        "close": 95.0,
        "mean_price": (120 + 90 + 95) / 3,
        "tick_count": 3,
        "log_return": math.log(95 / 120),
        "realized_volatility": V1,
        "tweet_count": 0,
        "unique_authors": 0,
        "sentiment_mean": None,
        "share_positive": None,
        "share_negative": None,
        "share_neutral": None,
        "sentiment_weighted": None,
        "likes_total": 0,
        "retweets_total": 0,
        "top_hashtags": [],
        "x_post_count": 0,
        "x_sentiment_mean": None,
        "bluesky_post_count": 0,
        "bluesky_sentiment_mean": None,
    },
]
# (hour, kind, value, reason fragment)
EXPECTED_QUARANTINE = [
    (0, "prices", b'{"coin": "sparkit", "price": ', "PriceTick.<record>: malformed JSON"),
    (0, "prices", RECORDS[10][1], "PriceTick.price: Input should be a valid number"),
    (0, "tweets", RECORDS[16][1], "Tweet.text: String should have at most 4000 characters"),
    (
        1,
        "prices",
        RECORDS[8][1],
        "late: event time 2024-01-01T00:40:00.000Z arrived at 2024-01-01T01:20:00.000Z",
    ),
    (1, "prices", b"\xff\xfe\x00\x81 not utf-8", "PriceTick.<record>: not UTF-8"),
]


@pytest.fixture(scope="module")
def feed(kafka_cluster: Any) -> Iterator[str]:
    from kafka.admin import NewTopic

    bootstrap = kafka_cluster.bootstrap
    admin = make_admin(bootstrap)
    admin.create_topics(
        [
            NewTopic(
                t,
                num_partitions=3,
                replication_factor=3,
                # Records are stamped in 2024: never let retention delete them mid-test.
                topic_configs={"retention.ms": "-1", "min.insync.replicas": "2"},
            )
            for t in TOPICS.values()
        ]
    )
    admin.close()
    producer = make_producer(bootstrap)
    for i, (kind, value, ts) in enumerate(RECORDS):
        producer.send(TOPICS[kind], value=value, partition=i % 3, timestamp_ms=ms(ts)).get(
            timeout=60
        )
    producer.flush()
    producer.close()
    yield bootstrap


def run_job(bootstrap: str, lake: Path, *extra: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "coinfeed",
        "hourly",
        *JOB_ARGS,
        "--bootstrap",
        bootstrap,
        "--lake",
        str(lake),
        *extra,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith('{"')]
    assert len(lines) == 1, done.stdout
    summary: dict[str, Any] = json.loads(lines[0])
    return summary


def snapshot(lake: Path) -> dict[str, str]:
    """Partition dir -> fingerprint of its one Parquet file (asserting there is exactly one).

    The fingerprint covers the schema, the file's key-value metadata, every row in file order and
    the column statistics. Not the raw bytes: parquet-mr writes each column chunk's encodings from
    a hash set, so their order in the footer differs between JVMs although nothing else does.
    """
    out = {}
    for part in sorted(lake.glob("**/hour=*")):
        files = sorted(part.glob("*.parquet"))
        assert len(files) == 1, (part, files)
        meta = pq.read_metadata(files[0])
        stats = [
            meta.row_group(g).column(c).statistics.to_dict()
            for g in range(meta.num_row_groups)
            for c in range(meta.num_columns)
            if meta.row_group(g).column(c).statistics is not None
        ]
        table = pq.read_table(files[0])
        content = repr((table.schema, meta.metadata, table.to_pylist(), stats)).encode()
        out[str(part.relative_to(lake))] = hashlib.sha256(content).hexdigest()
    return out


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = pq.read_table(path, partitioning="hive").to_pylist()
    for r in rows:
        r["hour"] = int(r["hour"])
        r["coin"], r["date"] = str(r["coin"]), str(r["date"])
    return rows


def assert_hourly_equal(actual: list[dict[str, Any]]) -> None:
    actual = sorted(actual, key=lambda r: r["hour"])
    assert len(actual) == len(EXPECTED_HOURLY)
    for got, want in zip(actual, EXPECTED_HOURLY, strict=True):
        # Spark writes INT96 timestamps: read back naive, in UTC (the session time zone).
        assert got.pop("hour_start") == datetime(2024, 1, 1, want["hour"]), want["hour"]
        assert set(got) == set(want)
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-12), key
            else:
                assert got[key] == value, key


def pushed_metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("coinfeed_hourly_") and f'coin="{COIN}"' in line:
            name_labels, value = line.rsplit(" ", 1)
            out[name_labels] = float(value)
    return out


def test_hourly_job_end_to_end(feed: str, pushgateway: str, tmp_path: Path) -> None:
    lake = tmp_path / "lake"

    # 1. First run: the expected tables, metrics in the Pushgateway, and the outcome the operator
    #    reads back as the pod's termination message.
    termination_log = tmp_path / "termination-log"
    summary = run_job(
        feed,
        lake,
        "--lookback-hours",
        "2",
        "--pushgateway",
        pushgateway.removeprefix("http://"),
        "--termination-log",
        str(termination_log),
    )
    assert parse(termination_log.read_text()) == {
        "summary": "hourly",
        "ok": True,
        "coins": {COIN: {"ok": True, "hours": 2, "newest_hour": "2024-01-01T01:00:00Z"}},
    }
    assert summary["hours"] == ["2024-01-01T00", "2024-01-01T01"]
    assert summary["rows_read"] == {"prices": 12, "tweets": 5}
    assert summary["duplicates"] == {"prices": 1, "tweets": 1}
    assert summary["quarantined"] == 5
    assert summary["rows_written"] == {
        "hourly": 2,
        "quarantine": 5,
        "raw/prices": 7,
        "raw/tweets": 3,
    }
    assert_hourly_equal(read_rows(lake / "hourly"))

    quarantine = sorted(
        read_rows(lake / "quarantine"), key=lambda r: (r["hour"], r["kafka_timestamp"])
    )
    assert [(r["hour"], r["kind"], r["value"]) for r in quarantine] == [
        (h, k, v)
        for h, k, v, _ in sorted(
            EXPECTED_QUARANTINE,
            key=lambda e: (e[0], RECORDS[[x[1] for x in RECORDS].index(e[2])][2]),
        )
    ]
    for row in quarantine:
        want = next(e for e in EXPECTED_QUARANTINE if e[2] == row["value"])
        assert want[3] in row["reason"], row["reason"]
        assert row["kafka_topic"] == TOPICS[row["kind"]]
        assert row["kafka_offset"] is not None and row["kafka_partition"] is not None

    raw_tweets = {r["id"]: r for r in read_rows(lake / "raw" / "tweets")}
    assert sorted(raw_tweets) == ["11", "12", "13"]
    assert (raw_tweets["12"]["schema_version"], raw_tweets["12"]["platform"]) == (1, "x")
    assert raw_tweets["11"]["like_count"] == 4  # the newest observation of a duplicate wins

    metrics = pushed_metrics(pushgateway)
    labels = f'coin="{COIN}",instance="",job="coinfeed_hourly"'
    assert metrics[f"coinfeed_hourly_close_price{{{labels}}}"] == 95.0
    assert metrics[f"coinfeed_hourly_tweet_count{{{labels}}}"] == 0.0
    assert metrics[f"coinfeed_hourly_rows_quarantined{{{labels}}}"] == 5.0
    assert metrics[f"coinfeed_hourly_hours_processed{{{labels}}}"] == 2.0
    assert (
        metrics[f"coinfeed_hourly_newest_hour_timestamp_seconds{{{labels}}}"] == at(1).timestamp()
    )
    assert (
        metrics[
            f'coinfeed_hourly_duplicates_dropped{{coin="{COIN}",instance="",job="coinfeed_hourly",kind="tweets"}}'
        ]
        == 1.0
    )
    assert not any(k.startswith("coinfeed_hourly_sentiment_mean") for k in metrics)
    first = snapshot(lake)
    assert (
        len(first) == 2 + 2 + 2 + 1
    )  # hourly 00,01; quarantine 00,01; raw/prices 00,01; raw/tweets 00

    # 2. Same hours again: identical files (schema, metadata, rows in order, statistics).
    run_job(feed, lake, "--lookback-hours", "2")
    assert snapshot(lake) == first

    # 3. A missing hourly partition is found and backfilled although only hour 01 is requested.
    hour0 = lake / "hourly" / f"coin={COIN}" / "date=2024-01-01" / "hour=0"
    for f in hour0.iterdir():
        f.unlink()
    hour0.rmdir()
    summary = run_job(feed, lake, "--lookback-hours", "1")
    assert summary["hours"] == ["2024-01-01T00", "2024-01-01T01"]
    assert snapshot(lake) == first

    # 4. Killed while writing, then rerun: the same bytes.
    cmd = [
        sys.executable,
        "-m",
        "coinfeed",
        "hourly",
        *JOB_ARGS,
        "--bootstrap",
        feed,
        "--lake",
        str(lake),
        "--lookback-hours",
        "2",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        while not any((lake / "raw" / "prices").glob(".spark-staging*")):
            assert proc.poll() is None, "the job finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    run_job(feed, lake, "--lookback-hours", "2")
    assert snapshot(lake) == first


def log_record(stderr: str, msg: str) -> dict[str, Any]:
    """The job's one JSON log record with this ``msg`` (e.g. "driver JVM profile", or "Python
    workers loaded": the background warm-up finished)."""
    records = [json.loads(ln) for ln in stderr.splitlines() if ln.startswith("{")]
    found = [r for r in records if r.get("msg") == msg]
    assert len(found) == 1, stderr[-4000:]
    record: dict[str, Any] = found[0]
    return record


def test_quick_and_full_profiles_write_the_same_lake(feed: str, tmp_path: Path) -> None:
    """auto estimates this small input from Kafka's offsets and runs quick (C1 JIT, no code
    generation, pydantic validation alone); full (native checks first) writes the very same
    content."""
    from coinfeed.spark.hourly import estimate_records

    assert estimate_records(feed, list(TOPICS.values()), at(0), at(2, 10)) == len(RECORDS)
    assert estimate_records(feed, list(TOPICS.values()), at(1, 46), at(2, 10)) == 0
    assert estimate_records(feed, ["coinfeed.nosuchcoin.tweets"], at(0), at(2, 10)) == 0
    outcomes = {}
    for profile in ("auto", "full"):
        lake = tmp_path / profile
        cmd = [sys.executable, "-m", "coinfeed", "hourly", *JOB_ARGS, "--bootstrap", feed]
        cmd += ["--lake", str(lake), "--lookback-hours", "2", "--jvm-profile", profile]
        cmd += ["--validation", "native"] if profile == "full" else []
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        outcomes[profile] = (
            log_record(done.stderr, "driver JVM profile"),
            snapshot(lake),
            log_record(done.stderr, "Python workers loaded"),
        )
    (auto, auto_lake, auto_warm), (full, full_lake, full_warm) = outcomes["auto"], outcomes["full"]
    # Gap search from the oldest retained hour (00) to now: every record of the data set.
    assert (auto["profile"], auto["records_estimate"]) == ("quick", len(RECORDS))
    assert (full["profile"], full["records_estimate"]) == ("full", None)
    # A small run validates with pydantic alone, a big one natively first: the same lake.
    assert (auto["validation"], full["validation"]) == ("pydantic", "native")
    # Only a big (or unknown) run splits its Kafka reads: the same lake too.
    assert (auto["split_reads"], full["split_reads"]) == (False, True)
    # Both started their Python workers in the background before the first task needed them.
    assert all(w["workers"] >= 1 for w in (auto_warm, full_warm)), (auto_warm, full_warm)
    assert len(full_lake) == 7
    assert auto_lake == full_lake


def test_a_split_kafka_read_has_more_tasks_and_the_same_rows(feed: str, spark: Any) -> None:
    """A big run reads Kafka in READ_TASKS_PER_CORE tasks per core (the validation tasks then
    end together); the rows are the same as with one task per topic-partition."""
    from coinfeed.spark.hourly import READ_TASKS_PER_CORE, _read_kafka
    from coinfeed.spark.hours import read_windows

    windows = read_windows([at(0), at(1)])  # neighbouring hours: one merged window
    assert len(windows) == 1
    # One kind per read, as the job reads: the prices topic's 3 partitions hold 4 records each.
    one = _read_kafka(spark, feed, [TOPICS["prices"]], windows)
    split = _read_kafka(spark, feed, [TOPICS["prices"]], windows, split=True)
    assert one.rdd.getNumPartitions() == 3  # one task per topic-partition
    tasks = READ_TASKS_PER_CORE * spark.sparkContext.defaultParallelism
    assert tasks > 3
    assert split.rdd.getNumPartitions() >= tasks
    rows = sorted(one.collect())
    assert len(rows) == sum(kind == "prices" for kind, _, _ in RECORDS)
    assert sorted(split.collect()) == rows
