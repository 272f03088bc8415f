"""Record schemas: good records round-trip; every bad record is rejected naming field and value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from coinfeed.schemas import (
    PLATFORMS,
    SCHEMA_VERSIONS,
    PriceTick,
    RecordError,
    Tweet,
    decode_record,
    format_ts,
    record_fields,
    validate_record,
)

TICK: dict[str, Any] = {
    "coin": "BTC",
    "source": "binance",
    "pair": "BTC/USDT",
    "ts": "2024-05-01T12:00:00Z",
    "price": 64000.5,
}
TWEET: dict[str, Any] = {
    "coin": "eth",
    "id": "1785000000000000001",
    "created_at": "2024-05-01T12:00:00.123Z",
    "text": "ETH looks strong $ETH",
    "author_id": "42",
}


def _without(record: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != field}


def test_price_tick_round_trips_through_json() -> None:
    tick = validate_record(PriceTick, TICK)
    assert tick.coin == "btc"  # normalised
    assert tick.ts == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert tick.schema_version == SCHEMA_VERSIONS["prices"] == 1
    wire = tick.to_json()
    assert b'"ts":"2024-05-01T12:00:00.000Z"' in wire
    assert decode_record(PriceTick, wire) == tick


def test_tweet_round_trips_through_json() -> None:
    tweet = validate_record(Tweet, TWEET)
    assert decode_record(Tweet, tweet.to_json()) == tweet
    assert tweet.like_count == 0 and tweet.source == "x-api"
    assert (tweet.schema_version, tweet.platform) == (SCHEMA_VERSIONS["tweets"], "x") == (2, "x")


BSKY_DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
BSKY_POST: dict[str, Any] = {
    "platform": "bluesky",
    "coin": "btc",
    "id": f"at://{BSKY_DID}/app.bsky.feed.post/3l3qo2vuowo2b",
    "created_at": "2024-09-09T19:46:02.102Z",
    "text": "$BTC to the moon",
    "author_id": BSKY_DID,
    "author_username": "alice.example.com",
    "observed_at": "2024-09-09T19:46:02.329Z",
}


def test_version_1_tweets_still_validate_as_x_posts() -> None:
    """Records written before Bluesky (schema_version 1, no platform) read as X posts."""
    v1 = {**TWEET, "schema_version": 1}
    tweet = validate_record(Tweet, v1)
    assert (tweet.schema_version, tweet.platform, tweet.observed_at) == (1, "x", None)
    assert decode_record(Tweet, tweet.to_json()) == tweet  # canonical form keeps version 1


def test_bluesky_post_ids_are_at_uris_and_authors_dids() -> None:
    post = validate_record(Tweet, BSKY_POST)
    assert post.platform == "bluesky" and post.id.startswith("at://did:plc:")
    assert post.observed_at == datetime(2024, 9, 9, 19, 46, 2, 329000, tzinfo=UTC)
    assert decode_record(Tweet, post.to_json()) == post
    assert set(PLATFORMS) == {"x", "bluesky"}


def test_offset_timestamps_are_converted_to_utc() -> None:
    tick = validate_record(PriceTick, {**TICK, "ts": "2024-05-01T14:00:00+02:00"})
    assert tick.ts == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert format_ts(tick.ts) == "2024-05-01T12:00:00.000Z"


def test_timestamps_before_year_1000_keep_four_digits_and_round_trip() -> None:
    # strftime("%Y") writes year 1 as "1", which neither pydantic nor Spark reads back: such a
    # record (valid to the model) once crashed the hourly job's parse of its canonical form.
    tweet = validate_record(Tweet, {**TWEET, "created_at": "0001-01-01T00:00:00.5Z"})
    assert format_ts(tweet.created_at) == "0001-01-01T00:00:00.500Z"
    assert decode_record(Tweet, tweet.to_json()) == tweet
    assert format_ts(datetime(999, 12, 31, 23, 59, tzinfo=UTC)) == "0999-12-31T23:59:00.000Z"


BAD_RECORDS = [
    # (model, record, field named, value named, words in the message)
    (PriceTick, _without(TICK, "price"), "price", "<missing>", "required field is missing"),
    (PriceTick, {**TICK, "price": "cheap"}, "price", "cheap", "valid number"),
    (PriceTick, {**TICK, "price": -3}, "price", -3, "greater than 0"),
    (PriceTick, {**TICK, "ts": "2024-05-01T12:00:00"}, "ts", "2024-05-01T12:00:00", "naive"),
    (PriceTick, {**TICK, "coin": "bitcoin!!"}, "coin", "bitcoin!!", "invalid coin symbol"),
    (PriceTick, {**TICK, "coin": "x"}, "coin", "x", "2-10 characters"),
    (PriceTick, {**TICK, "coin": "averyveryverylongcoin"}, "coin", "averyveryverylongcoin", "2-10"),
    (PriceTick, {**TICK, "coin": 7}, "coin", 7, "string"),
    (PriceTick, {**TICK, "whale": True}, "whale", True, "unknown field"),
    (PriceTick, {**TICK, "schema_version": 2}, "schema_version", 2, "1"),
    (Tweet, _without(TWEET, "text"), "text", "<missing>", "required field is missing"),
    (Tweet, {**TWEET, "id": "abc"}, "id", "abc", "an X post id must match"),
    (Tweet, {**TWEET, "author_id": "did:plc:x"}, "author_id", "did:plc:x", "X user id"),
    (Tweet, {**TWEET, "schema_version": 3}, "schema_version", 3, "1 or 2"),
    (Tweet, {**TWEET, "platform": "mastodon"}, "platform", "mastodon", "'x' or 'bluesky'"),
    (
        Tweet,
        {**TWEET, "schema_version": 1, "platform": "bluesky"},
        "platform",
        "bluesky",
        "X posts",
    ),
    (Tweet, {**BSKY_POST, "id": "1234"}, "id", "1234", "at://<did>/app.bsky.feed.post/<rkey>"),
    (
        Tweet,
        {**BSKY_POST, "author_id": "did:plc:someoneelse"},
        "author_id",
        "did:plc:someoneelse",
        "must be the DID in the post's at:// URI",
    ),
    (Tweet, {**BSKY_POST, "author_id": "alice"}, "author_id", "alice", "is a DID"),
    (Tweet, {**TWEET, "created_at": "2024-05-01 12:00"}, "created_at", "2024-05-01 12:00", "naive"),
    (Tweet, {**TWEET, "like_count": "many"}, "like_count", "many", "valid integer"),
    # The lake's integers are 64-bit: a bigger count could never be written (it crashed the job).
    (Tweet, {**TWEET, "like_count": 2**63}, "like_count", 2**63, "less than or equal to"),
    (Tweet, {**TWEET, "coin": "$btc"}, "coin", "$btc", "invalid coin symbol"),
]


@pytest.mark.parametrize(
    ("model", "record", "field", "value", "words"),
    BAD_RECORDS,
    ids=[f"{m.__name__}-{f}-{w}" for m, _, f, _, w in BAD_RECORDS],
)
def test_bad_record_rejected_naming_field_and_value(
    model: type[PriceTick] | type[Tweet], record: dict[str, Any], field: str, value: Any, words: str
) -> None:
    with pytest.raises(RecordError) as err:
        validate_record(model, record)
    assert err.value.field == field
    assert err.value.value == value
    message = str(err.value)
    assert message.startswith(f"{model.__name__}.{field}: ")
    assert words in message
    assert repr(value) in message


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "expected a JSON object"),
    ],
)
def test_undecodable_wire_record_rejected(raw: bytes, words: str) -> None:
    with pytest.raises(RecordError, match=words) as err:
        decode_record(PriceTick, raw)
    assert err.value.field == "<record>"


def test_record_fields_follow_the_models() -> None:
    fields = {f.name: f for f in record_fields(PriceTick)}
    assert list(fields) == ["schema_version", "coin", "source", "pair", "ts", "price", "volume"]
    assert fields["ts"].type == "timestamp" and not fields["ts"].nullable
    assert fields["price"].type == "double"
    assert fields["volume"].nullable
    tweet_fields = {f.name: f.type for f in record_fields(Tweet)}
    assert tweet_fields["hashtags"] == "array<string>"
    assert tweet_fields["like_count"] == "long"
    assert tweet_fields["platform"] == "string"  # a Literal of strings
    assert tweet_fields["schema_version"] == "long"
    assert tweet_fields["observed_at"] == "timestamp"
