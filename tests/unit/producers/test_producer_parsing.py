"""Pure parsing: good bodies become records; each kind of bad input becomes one counted skip."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from coinfeed.producers import batch as b
from coinfeed.producers import prices, tweets
from coinfeed.producers.batch import BodyError
from tests.unit.producers.fakes import x_tweet, x_user

# --- ccxt --------------------------------------------------------------------------------------


def test_ccxt_ticker_becomes_a_tick() -> None:
    out = prices.parse_ccxt_ticker(
        "btc",
        "BTC/USDT",
        "binance",
        {"last": 67000.5, "timestamp": 1711356300000, "baseVolume": 12.0},
    )
    assert not out.skips
    (tick,) = out.records
    assert (tick.coin, tick.source, tick.pair, tick.price, tick.volume) == (
        "btc",
        "binance",
        "BTC/USDT",
        67000.5,
        12.0,
    )
    assert tick.ts == datetime(2024, 3, 25, 8, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ticker", "reason"),
    [
        ({"last": 1.0}, b.MISSING_FIELD),
        ({"last": None, "close": None, "timestamp": 1711356300000}, b.NULL_FIELD),
        ({"last": "abc", "timestamp": 1711356300000}, b.INVALID_FIELD),
        ({"last": -5.0, "timestamp": 1711356300000}, b.INVALID_FIELD),
        ("<html>", b.UNEXPECTED_SHAPE),
    ],
)
def test_ccxt_ticker_bad_input_is_skipped_with_reason(ticker: object, reason: str) -> None:
    out = prices.parse_ccxt_ticker("btc", "BTC/USDT", "binance", ticker)
    assert not out.records
    assert [s.reason for s in out.skips] == [reason]


def test_ohlcv_emits_only_closed_candles_newer_than_the_last() -> None:
    t0 = 1_700_000_040_000
    rows = [[t0 + i * 60_000, 1, 2, 0.5, 100.0 + i, 3.0] for i in range(4)]
    now = t0 + 3 * 60_000 + 30_000  # the 4th candle is still open
    out = prices.parse_ccxt_ohlcv("btc", "BTC/USDT", "binance", rows, now, after_ms=t0 + 60_000)
    assert [r.price for r in out.records] == [101.0, 102.0]  # first candle already sent, last open
    assert out.records[0].ts.timestamp() * 1000 == t0 + 2 * 60_000


def test_ohlcv_bad_rows_are_skipped_and_the_rest_kept() -> None:
    t0 = 1_700_000_040_000
    rows = [[t0, 1, 2, 0.5, 100.0, 3.0], ["x"], [t0 + 60_000, 1, 2, 0.5, None, 3.0]]
    out = prices.parse_ccxt_ohlcv("btc", "BTC/USDT", "binance", rows, t0 + 600_000, None)
    assert [r.price for r in out.records] == [100.0]
    assert sorted(s.reason for s in out.skips) == [b.NULL_FIELD, b.UNEXPECTED_SHAPE]


# --- CoinGecko ---------------------------------------------------------------------------------


def test_coingecko_simple_price() -> None:
    body = json.dumps({"bitcoin": {"usd": 67187.33, "last_updated_at": 1711356300}}).encode()
    (tick,) = prices.parse_coingecko_simple("btc", "BTC/USDT", body, "application/json").records
    assert (tick.price, tick.source, tick.ts.timestamp()) == (67187.33, "coingecko", 1711356300)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", b.HTML_BODY),
        (b'{"bitcoin": {"usd": 671', b.MALFORMED_JSON),
        (b'{"bitcoin": {"usd": 1, "last_updated_at": 17113\xff}}', b.NOT_UTF8),
    ],
)
def test_coingecko_unusable_bodies_raise_body_error(body: bytes, reason: str) -> None:
    with pytest.raises(BodyError) as info:
        prices.parse_coingecko_simple("btc", "BTC/USDT", body)
    assert info.value.skip.reason == reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit"}},
            b.ERROR_BODY,
        ),
        ({"bitcoin": {"usd": 1.0}}, b.MISSING_FIELD),
        ({"bitcoin": {"usd": None, "last_updated_at": 1711356300}}, b.NULL_FIELD),
        ({"bitcoin": {"usd": "a lot", "last_updated_at": 1711356300}}, b.INVALID_FIELD),
        ({"ethereum": {"usd": 1.0, "last_updated_at": 1711356300}}, b.MISSING_FIELD),
    ],
)
def test_coingecko_bad_fields_are_skips(data: object, reason: str) -> None:
    out = prices.parse_coingecko_simple("btc", "BTC/USDT", json.dumps(data).encode())
    assert not out.records
    assert [s.reason for s in out.skips] == [reason]


def test_coingecko_market_chart_points_after_the_last() -> None:
    body = json.dumps({"prices": [[1000, 1.5], [2000, 2.5], ["x", 1], [3000, 3.5]]}).encode()
    out = prices.parse_coingecko_market_chart("eth", "ETH/USDT", body, after_ms=1000)
    assert [r.price for r in out.records] == [2.5, 3.5]
    assert [s.reason for s in out.skips] == [b.UNEXPECTED_SHAPE]


def test_vs_currency_maps_stablecoins_to_fiat() -> None:
    assert prices.vs_currency("BTC/USDT") == "usd"
    assert prices.vs_currency("BTC/EUR") == "eur"
    assert prices.coingecko_id("eth") == "ethereum"


# --- X API v2 ----------------------------------------------------------------------------------


def test_query_from_keywords_cashtags_languages() -> None:
    q = tweets.build_query(["bitcoin", "spot etf"], ["btc"], ["en", "es"])
    assert q == '(bitcoin OR "spot etf" OR $BTC) (lang:en OR lang:es) -is:retweet'
    assert tweets.build_query(["eth"], [], []) == "eth -is:retweet"


def test_query_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="at least one keyword"):
        tweets.build_query([" "], [], ["en"])
    with pytest.raises(ValueError, match="512"):
        tweets.build_query([f"keyword{i}" for i in range(100)], [], [])


def _page(data: list[object], users: list[object], meta: dict[str, object]) -> bytes:
    return json.dumps({"data": data, "includes": {"users": users}, "meta": meta}).encode()


def test_search_page_flattens_tweet_and_author() -> None:
    body = _page([x_tweet(20, author=5)], [x_user(5)], {"newest_id": "20", "next_token": "abc"})
    page = tweets.parse_search_page("btc", body, "application/json")
    (tw,) = page.batch.records
    assert (tw.id, tw.author_id, tw.author_username, tw.author_followers) == (
        "20",
        "5",
        "user5",
        1005,
    )
    assert (tw.like_count, tw.retweet_count, tw.reply_count) == (7, 2, 1)
    assert (tw.hashtags, tw.cashtags, tw.lang, tw.source) == (["Bitcoin"], ["BTC"], "en", "x-api")
    assert (page.next_token, page.newest_id) == ("abc", "20")


def test_search_page_bad_items_skipped_good_kept() -> None:
    missing = x_tweet(11)
    del missing["created_at"]
    null_text = x_tweet(12)
    null_text["text"] = None
    items = [
        x_tweet(10),
        missing,
        null_text,
        x_tweet(13, public_metrics={"like_count": "many"}),
        x_tweet(14, created_at="yesterday"),
        "not an object",
        x_tweet(15),
    ]
    page = tweets.parse_search_page("btc", _page(items, [x_user(1)], {"newest_id": "15"}))
    assert [t.id for t in page.batch.records] == ["10", "15"]
    assert sorted(s.reason for s in page.batch.skips) == sorted(
        [b.MISSING_FIELD, b.NULL_FIELD, b.INVALID_FIELD, b.INVALID_FIELD, b.INVALID_FIELD]
    )
    assert any("id=11" in s.detail and "created_at" in s.detail for s in page.batch.skips)


def test_search_page_without_author_keeps_tweet_with_zero_followers() -> None:
    page = tweets.parse_search_page("btc", _page([x_tweet(10, author=9)], [], {}))
    assert page.batch.records[0].author_followers == 0
    assert page.newest_id == "10"  # derived from the data when meta lacks it


@pytest.mark.parametrize(
    ("body", "ctype", "reason"),
    [
        (b"<html><head><title>Over capacity</title></head></html>", "text/html", b.HTML_BODY),
        (b'{"data": [{"id": "1", "text": "tru', "application/json", b.MALFORMED_JSON),
        (b'{"data": [], "meta": {"result_count": 0}, "x": "\xc3\x28"}', None, b.NOT_UTF8),
        (
            json.dumps({"errors": [{"message": "Invalid Request", "code": 214}]}).encode(),
            "application/json",
            b.ERROR_BODY,
        ),
        (
            json.dumps({"title": "Unauthorized", "detail": "Unauthorized", "status": 401}).encode(),
            None,
            b.ERROR_BODY,
        ),
        (b"[1, 2]", None, b.UNEXPECTED_SHAPE),
        (json.dumps({"data": {"id": "1"}, "meta": {}}).encode(), None, b.UNEXPECTED_SHAPE),
    ],
)
def test_unusable_search_bodies(body: bytes, ctype: str | None, reason: str) -> None:
    with pytest.raises(BodyError) as info:
        tweets.parse_search_page("btc", body, ctype)
    assert info.value.skip.reason == reason


def test_empty_result_page_is_not_an_error() -> None:
    page = tweets.parse_search_page("btc", b'{"meta": {"result_count": 0}}')
    assert page.batch.records == [] and page.batch.skips == [] and page.next_token is None


def test_stream_lines() -> None:
    line = json.dumps({"data": x_tweet(42), "includes": {"users": [x_user(1)]}}).encode()
    assert [t.id for t in tweets.parse_stream_line("btc", line).records] == ["42"]
    assert tweets.parse_stream_line("btc", b"\r\n").records == []  # keep-alive
    assert [s.reason for s in tweets.parse_stream_line("btc", b"{trunc").skips] == [
        b.MALFORMED_JSON
    ]


def test_max_id_compares_numerically() -> None:
    assert tweets.max_id(["9", "10", "100"]) == "100"
    assert tweets.max_id([]) is None
