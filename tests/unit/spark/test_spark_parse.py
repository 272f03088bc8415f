from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)
from pyspark.testing import assertDataFrameEqual

from coinfeed.spark.assign import on_time_records, quarantined
from coinfeed.spark.parse import check, check_record, parse_records, split
from tests.unit.spark.rows import kafka_rows, t, tick, tweet

PRICES = "coinfeed.btc.prices"
TWEETS = "coinfeed.btc.tweets"


def test_check_record_accepts_valid_and_returns_canonical_json() -> None:
    raw = json.dumps(
        {
            "coin": "BTC",
            "source": "binance",
            "pair": "BTC/USDT",
            "ts": "2024-01-01T00:00:00+00:00",
            "price": 42000,
        }
    ).encode()
    canonical, reason = check_record("prices", PRICES, raw)
    assert reason is None
    assert canonical is not None
    assert json.loads(canonical) == {
        "schema_version": 1,
        "coin": "btc",
        "source": "binance",
        "pair": "BTC/USDT",
        "ts": "2024-01-01T00:00:00.000Z",
        "price": 42000.0,
        "volume": None,
    }


def test_check_record_reasons_name_the_problem() -> None:
    good = tick(0, 1, 100.0).to_dict()
    cases = {
        b"{not json": "malformed JSON",
        b"\xff\xfe\x00bad": "not UTF-8",
        json.dumps({**good, "price": "abc"}).encode(): "PriceTick.price",
        json.dumps({**good, "price": -1}).encode(): "PriceTick.price",
        json.dumps({k: v for k, v in good.items() if k != "ts"}).encode(): "PriceTick.ts",
        json.dumps({**good, "ts": "yesterday"}).encode(): "PriceTick.ts",
        json.dumps({**good, "coin": "eth"}).encode(): "does not match topic",
    }
    for raw, expected in cases.items():
        canonical, reason = check_record("prices", PRICES, raw)
        assert canonical is None, raw
        assert reason is not None and expected in reason, (raw, reason)
    oversized = tweet("1", 0, 1, "x").to_dict() | {"text": "x" * 4001}
    _, reason = check_record("tweets", TWEETS, json.dumps(oversized).encode())
    assert reason is not None and "Tweet.text" in reason
    assert check_record("tweets", TWEETS, None)[1] == "Tweet.<record>: empty value (tombstone)"


def test_parse_records_splits_typed_records_and_rejects(spark: SparkSession) -> None:
    good = tick(0, 1, 100.5)
    raw = kafka_rows(
        spark,
        PRICES,
        [(good.to_json(), t(0, 1)), (b"{oops", t(0, 2)), (b"\xff", t(0, 3))],
    )
    parsed = parse_records(raw, "prices")
    rows = parsed.records.drop("key", "value").collect()
    assert [r.asDict() for r in rows] == [
        {
            "schema_version": 1,
            "coin": "btc",
            "source": "binance",
            "pair": "BTC/USDT",
            "ts": datetime(2024, 1, 1, 0, 1),
            "price": 100.5,
            "volume": None,
            "kafka_topic": PRICES,
            "kafka_partition": 0,
            "kafka_offset": 0,
            "kafka_timestamp": datetime(2024, 1, 1, 0, 1),
        }
    ]
    rejected = parsed.rejected.select("kafka_offset", "value", "reason").collect()
    assert [(r.kafka_offset, bytes(r.value)) for r in rejected] == [(1, b"{oops"), (2, b"\xff")]
    assert "malformed JSON" in rejected[0].reason
    assert "not UTF-8" in rejected[1].reason


def test_a_wire_form_record_is_persisted_once_and_its_bytes_given_back(
    spark: SparkSession,
) -> None:
    wire = tick(0, 10, 1.0).to_json()  # the producers' exact form
    spaced = json.dumps(json.loads(tick(0, 11, 2.0).to_json())).encode()  # valid, not that form
    raw = kafka_rows(spark, PRICES, [(wire, t(0, 10)), (spaced, t(0, 11)), (b"{oops", t(0, 12))])
    checked = check(raw, "prices")
    # The checked rows (persisted by the job) hold a wire-form record only as the typed record.
    kept = {r.offset: r.value for r in checked.select("offset", "value").collect()}
    assert kept == {0: None, 1: bytearray(spaced), 2: bytearray(b"{oops")}
    parsed = split(checked, "prices")
    values = {r.kafka_offset: bytes(r.value) for r in parsed.records.collect()}
    assert values == {0: wire, 1: spaced}
    # A valid record quarantined as late keeps the bytes it was sent with.
    late = kafka_rows(spark, PRICES, [(wire, t(1, 20))])
    q = quarantined(parse_records(late, "prices"), "prices", {"btc": [t(1)]})
    assert [(bytes(r.value), r.reason[:5]) for r in q.collect()] == [(wire, "late:")]
    # Posts too: arrays, nullable fields and a text with escapes come back byte for byte.
    post = tweet("7", 0, 5, 'gm "btc" \u00e9\n #btc', likes=3, tags=["btc", "hodl"])
    posts = kafka_rows(spark, TWEETS, [(post.to_json(), t(0, 5))])
    checked_posts = check(posts, "tweets")
    assert [r.value for r in checked_posts.select("value").collect()] == [None]
    got = [bytes(r.value) for r in split(checked_posts, "tweets").records.collect()]
    assert got == [post.to_json()]


def test_records_are_assigned_to_event_hours_and_misplaced_ones_quarantined(
    spark: SparkSession,
) -> None:
    values = [
        (tick(0, 10, 1.0).to_json(), t(0, 10)),  # on time, hour 0
        (tick(0, 59, 2.0).to_json(), t(1, 3)),  # late but within the 5 min grace: hour 0
        (tick(0, 50, 3.0).to_json(), t(1, 20)),  # too late: quarantined in arrival hour 1
        (
            tick(1, 30, 4.0).to_json(),
            t(0, 58),
        ),  # stamped an hour ahead of arrival: hour 0 quarantine
        (tick(1, 5, 5.0).to_json(), t(1, 5)),  # on time, hour 1
        (b"[]", t(1, 6)),  # invalid, hour 1
        (tick(2, 0, 6.0).to_json(), t(2, 0)),  # hour 2 is not being processed
    ]
    parsed = parse_records(kafka_rows(spark, PRICES, values), "prices")
    hours = {"btc": [t(0), t(1)]}
    on_time = on_time_records(parsed, "prices", hours).select("price", "date", "hour")
    assertDataFrameEqual(
        on_time,
        spark.createDataFrame(
            [(1.0, "2024-01-01", 0), (2.0, "2024-01-01", 0), (5.0, "2024-01-01", 1)],
            "price double, date string, hour int",
        ),
    )
    q = quarantined(parsed, "prices", hours).select(
        "coin", "kind", "hour", "kafka_offset", "reason"
    )
    got = sorted((r.hour, r.kafka_offset, r.coin, r.kind, r.reason) for r in q.collect())
    assert [(h, o, c, k) for h, o, c, k, _ in got] == [
        (0, 3, "btc", "prices"),
        (1, 2, "btc", "prices"),
        (1, 5, "btc", "prices"),
    ]
    assert got[0][4] == (
        "early: event time 2024-01-01T01:30:00.000Z is in a later hour than its Kafka timestamp "
        "2024-01-01T00:58:00.000Z"
    )
    assert got[1][4] == (
        "late: event time 2024-01-01T00:50:00.000Z arrived at 2024-01-01T01:20:00.000Z, "
        "after its hour closed (grace 5 min)"
    )
    assert got[2][4].startswith("PriceTick.<record>: expected a JSON object")
    _ = UTC


def test_both_validation_paths_give_the_same_records_and_rejects(spark: SparkSession) -> None:
    """A small run validates with pydantic alone, a big one natively first: the typed records
    (with the bytes sent) and the rejects with their reasons are the same either way."""
    from tests.integration.spark.test_spark_hourly_job import RECORDS, TOPICS

    spaced = json.dumps(json.loads(tick(0, 11, 2.0).to_json())).encode()  # valid, not wire form
    for kind in ("prices", "tweets"):
        values: list[tuple[bytes | None, datetime]] = [(v, ts) for k, v, ts in RECORDS if k == kind]
        values += [(None, t(0, 1)), (b"{}", t(0, 2))]
        if kind == "prices":
            values.append((spaced, t(0, 11)))
        raw = kafka_rows(spark, TOPICS[kind], values)
        out = {}
        for validation in ("native", "pydantic"):
            parsed = parse_records(raw, kind, validation)  # type: ignore[arg-type]
            records = sorted(parsed.records.collect(), key=lambda r: r.kafka_offset)
            rejected = sorted(parsed.rejected.collect(), key=lambda r: r.kafka_offset)
            out[validation] = ([r.asDict(recursive=True) for r in records], rejected)
        assert out["native"] == out["pydantic"], kind
        records, rejected = out["pydantic"]
        assert len(records) + len(rejected) == len(values)
        assert records and len(rejected) >= 2  # both sides of the corpus are exercised


def test_records_the_lake_cannot_hold_are_quarantined_and_odd_valid_ones_kept(
    spark: SparkSession,
) -> None:
    """One record must never fail a run: a count beyond 64 bits (the model rejects it, naming
    the field) and a valid post from year 1 or with microseconds (kept, with the wire form's
    milliseconds) crashed both paths' parse of the canonical JSON before. Both paths agree."""
    base = json.loads(tweet("7", 0, 1, "gm").to_json())
    hostile = [
        {**base, "like_count": 2**63},
        {**base, "id": "8", "created_at": "0001-01-01T00:00:00.000Z"},
        {**base, "id": "9", "created_at": "2024-01-01T00:05:00.123456Z"},
        {**base, "id": "10", "author_followers": 2**63 - 1},
    ]
    values = [(json.dumps(r).encode(), t(0, 10)) for r in hostile]
    raw = kafka_rows(spark, TWEETS, values)
    out = {}
    for validation in ("native", "pydantic"):
        parsed = parse_records(raw, "tweets", validation)  # type: ignore[arg-type]
        records = sorted(
            (r.kafka_offset, str(r.created_at), r.author_followers)
            for r in parsed.records.select(
                "kafka_offset",
                F.col("created_at").cast("string").alias("created_at"),
                "author_followers",
            ).collect()
        )
        rejected = [(r.kafka_offset, r.reason) for r in parsed.rejected.collect()]
        out[validation] = (records, rejected)
    assert out["native"] == out["pydantic"]
    records, rejected = out["pydantic"]
    assert records == [
        (1, "0001-01-01 00:00:00", 0),
        (2, "2024-01-01 00:05:00.123", 0),
        (3, "2024-01-01 00:01:00", 2**63 - 1),
    ]
    assert len(rejected) == 1 and rejected[0][0] == 0
    assert rejected[0][1].startswith("Tweet.like_count: ")
    assert "less than or equal to 9223372036854775807" in rejected[0][1]


def test_check_rejects_an_unknown_validation_path(spark: SparkSession) -> None:
    raw = kafka_rows(spark, PRICES, [(tick(0, 1, 1.0).to_json(), t(0, 1))])
    with pytest.raises(ValueError, match="validation must be native or pydantic, got 'fast'"):
        check(raw, "prices", "fast")  # type: ignore[arg-type]
