"""Live sources against a local HTTP server answering with the documented API shapes; ccxt,
requests and tweepy talk real HTTP to it (tweepy through a transport adapter, nothing patched)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from coinfeed.producers import batch as b
from coinfeed.producers.batch import Batch
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.retry import RetryPolicy
from coinfeed.producers.sources import CcxtPriceSource, CoinGeckoPriceSource, not_ready_reason
from coinfeed.producers.xapi import XRecentSearchSource, make_client
from tests.unit.producers.fakes import (
    BINANCE_EXCHANGE_INFO,
    FakeX,
    Scripted,
    binance_kline,
    binance_ticker,
    x_tweet,
)

FAST = RetryPolicy(base=0.01, cap=0.05, max_wait=2.0, max_attempts=5)
TOKEN = "AAAAAAAAAAAAAAAAAAAAAFakeBearerToken123"


def requests_total(m: ProducerMetrics, outcome: str) -> float:
    v = m.registry.get_sample_value(
        "coinfeed_producer_source_requests_total",
        {"coin": m.coin, "kind": m.kind, "source": m.source, "outcome": outcome},
    )
    return v or 0.0


# --- ccxt (binance) ----------------------------------------------------------------------------


def _binance(
    httpserver: HTTPServer, mode: str = "ticker"
) -> tuple[CcxtPriceSource, ProducerMetrics]:
    httpserver.expect_request("/api/v3/exchangeInfo").respond_with_json(BINANCE_EXCHANGE_INFO)
    m = ProducerMetrics("btc", "prices", "binance")
    src = CcxtPriceSource(
        "btc", "BTC/USDT", "binance", mode, 10, m, FAST, api_url=httpserver.url_for("/")
    )
    return src, m


def test_binance_ticker_through_ccxt(httpserver: HTTPServer) -> None:
    src, m = _binance(httpserver)
    httpserver.expect_request(
        "/api/v3/ticker/24hr", query_string="symbol=BTCUSDT"
    ).respond_with_json(binance_ticker("67187.33", 1711356300000))
    (tick,) = src.poll().records
    assert (tick.price, tick.volume, tick.source, tick.ts.timestamp()) == (
        67187.33,
        12345.678,
        "binance",
        1711356300,
    )
    assert src.poll().records == []  # same observation again: not re-sent
    assert requests_total(m, "ok") == 2 and src.ready()


def test_binance_ohlcv_closed_candles(httpserver: HTTPServer) -> None:
    src, _ = _binance(httpserver, "ohlcv")
    now_min = int(time.time() // 60) * 60_000
    rows = [
        binance_kline(now_min - 180_000, "1.5"),
        binance_kline(now_min - 120_000, "2.5"),
        binance_kline(now_min, "9.9"),
    ]
    httpserver.expect_request("/api/v3/klines").respond_with_json(rows)
    assert [r.price for r in src.poll().records] == [1.5, 2.5]  # the open candle (9.9) waits


@pytest.mark.parametrize(
    ("status", "body", "ctype", "outcome"),
    [
        (503, "<html><body>503 Service Unavailable</body></html>", "text/html", "server_error"),
        (429, '{"code":-1003,"msg":"Too many requests."}', "application/json", "rate_limited"),
        (200, '{"symbol": "BTCUSDT", "lastPr', "application/json", "bad_body"),
    ],
)
def test_binance_failures_are_counted_and_backed_off(
    httpserver: HTTPServer, status: int, body: str, ctype: str, outcome: str
) -> None:
    src, m = _binance(httpserver)
    httpserver.expect_request("/api/v3/ticker/24hr").respond_with_data(
        body, status=status, content_type=ctype
    )
    assert src.poll().records == []
    assert requests_total(m, outcome) == 1
    assert not src.ready()


# Binance's documented answer to a request from a restricted location (the US among them).
BINANCE_451 = json.dumps(
    {
        "code": 0,
        "msg": "Service unavailable from a restricted location according to 'b. Eligibility' in "
        "https://www.binance.com/en/terms. Please contact customer service if you believe you "
        "received this message in error.",
    }
)


def test_binance_451_is_geo_blocked_with_its_own_reason(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    m = ProducerMetrics("btc", "prices", "binance")
    # Binance refuses every endpoint, market metadata included.
    httpserver.expect_request("/api/v3/exchangeInfo").respond_with_data(
        BINANCE_451, status=451, content_type="application/json"
    )
    src = CcxtPriceSource(
        "btc", "BTC/USDT", "binance", "ticker", 10, m, FAST, api_url=httpserver.url_for("/")
    )
    assert src.poll().records == []
    assert requests_total(m, "geo_blocked") == 1 and requests_total(m, "server_error") == 0
    assert not src.ready()
    reason = not_ready_reason(src)
    assert "HTTP 451" in reason and "coingecko" in reason
    (rec,) = [r for r in caplog.records if "HTTP 451" in r.getMessage()]
    assert rec.levelname == "ERROR"


def test_coingecko_451_is_geo_blocked_too(httpserver: HTTPServer) -> None:
    src, m = _gecko(httpserver)
    httpserver.expect_request("/api/v3/simple/price").respond_with_data("", status=451)
    assert src.poll().records == []
    assert requests_total(m, "geo_blocked") == 1
    assert "HTTP 451" in not_ready_reason(src)


# --- CoinGecko ---------------------------------------------------------------------------------


def _gecko(httpserver: HTTPServer) -> tuple[CoinGeckoPriceSource, ProducerMetrics]:
    m = ProducerMetrics("btc", "prices", "coingecko")
    return CoinGeckoPriceSource(
        "btc", "BTC/USDT", "simple", 10, m, FAST, httpserver.url_for("/")
    ), m


def test_coingecko_simple_price(httpserver: HTTPServer) -> None:
    src, m = _gecko(httpserver)
    httpserver.expect_request(
        "/api/v3/simple/price",
        query_string={"ids": "bitcoin", "vs_currencies": "usd", "include_last_updated_at": "true"},
    ).respond_with_json({"bitcoin": {"usd": 67187.33, "last_updated_at": 1711356300}})
    (tick,) = src.poll().records
    assert (tick.price, tick.source) == (67187.33, "coingecko")
    assert requests_total(m, "ok") == 1


def test_coingecko_429_honours_retry_after(httpserver: HTTPServer) -> None:
    src, m = _gecko(httpserver)
    httpserver.expect_request("/api/v3/simple/price").respond_with_json(
        {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}},
        status=429,
        headers={"Retry-After": "1.5"},
    )
    assert src.poll().records == []
    assert requests_total(m, "rate_limited") == 1
    assert src.next_wait() >= 1.5


@pytest.mark.parametrize(
    ("body", "ctype", "reason"),
    [
        (b"<!DOCTYPE html><title>Just a moment...</title>", "text/html", b.HTML_BODY),
        (b'{"bitcoin": {"usd": 6718', "application/json", b.MALFORMED_JSON),
        (
            b'{"bitcoin": {"usd": 1.0, "last_updated_at": 1}, "n": "\xe9t\xe9"}',
            "application/json",
            b.NOT_UTF8,
        ),
        (
            b'{"status": {"error_code": 10002, "error_message": "API Key Missing"}}',
            "application/json",
            b.ERROR_BODY,
        ),
        (
            b'{"bitcoin": {"usd": null, "last_updated_at": 1711356300}}',
            "application/json",
            b.NULL_FIELD,
        ),
    ],
)
def test_coingecko_bad_200_bodies_become_skips(
    httpserver: HTTPServer, body: bytes, ctype: str, reason: str
) -> None:
    src, m = _gecko(httpserver)
    httpserver.expect_request("/api/v3/simple/price").respond_with_data(body, content_type=ctype)
    out = src.poll()
    assert out.records == [] and [s.reason for s in out.skips] == [reason]
    assert requests_total(m, "bad_body") == 1


# --- X API v2 through tweepy -------------------------------------------------------------------


class Sleeps:
    """Stop-aware sleep stand-in: records the waits instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return True


# The FakeX tweets are posted from 2025-03-03T00:00Z on: "now" is an hour later.
NOW = datetime(2025, 3, 3, 1, 0, tzinfo=UTC).timestamp()


def _x(
    httpserver: HTTPServer,
    fake: FakeX,
    since_id: str | None = None,
    policy: RetryPolicy = FAST,
    interval: float = 60,
    **kwargs: Any,
) -> tuple[XRecentSearchSource, ProducerMetrics, Sleeps]:
    fake.install(httpserver)
    m = ProducerMetrics("btc", "tweets", "x-api")
    sleeps = Sleeps()
    client = make_client(TOKEN, httpserver.url_for("/"))
    src = XRecentSearchSource(
        client,
        "btc",
        "(btc OR $BTC) -is:retweet",
        interval,
        m,
        policy,
        sleeps,
        since_id=since_id,
        max_results=kwargs.pop("max_results", 10),
        clock=kwargs.pop("clock", lambda: NOW),
        **kwargs,
    )
    return src, m, sleeps


def poll_search(src: XRecentSearchSource) -> Batch:
    """Poll until a wait is due (the search is complete or its page cap reached)."""
    out = Batch()
    while True:
        out.extend(src.poll())
        if src.next_wait() > 0:
            return out


def test_search_paginates_oldest_first_and_advances_since_id(httpserver: HTTPServer) -> None:
    fake = FakeX()
    fake.add(*[x_tweet(1000 + i, author=1 + i % 3) for i in range(25)])
    src, m, _ = _x(httpserver, fake)
    pages = [src.poll(), src.poll(), src.poll()]
    # page by page as they come, newest page first, each page's records oldest first
    assert [[int(t.id) for t in p.records] for p in pages] == [
        list(range(1015, 1025)),
        list(range(1005, 1015)),
        list(range(1000, 1005)),
    ]
    assert src.next_wait() > 0  # the search is complete: the next one after the poll interval
    assert len(fake.requests) == 3  # 10 + 10 + 5, following next_token
    assert [r.get("next_token") for r in fake.requests] == [None, "10", "20"]
    # the first search of an empty topic starts an hour (the lookback) before now
    assert [r.get("start_time") for r in fake.requests] == ["2025-03-03T00:00:00Z"] * 3
    assert all("since_id" not in r for r in fake.requests)
    assert fake.requests[0]["tweet.fields"] == "created_at,lang,public_metrics,entities,author_id"
    assert fake.requests[0]["expansions"] == "author_id"
    assert fake.requests[0]["user.fields"] == "username,public_metrics"
    assert fake.auth_headers[0] == f"Bearer {TOKEN}"
    assert src.since_id == "1024"
    # every record says which search it came from and whether its page was the last
    heads = [dict(h) for p in pages for h in p.headers]
    assert {h["x_newest_id"] for h in heads} == {b"1024"}
    assert [h["x_last_page"] for h in heads] == [b"0"] * 20 + [b"1"] * 5
    assert {h["x_start_time"] for h in heads} == {b"2025-03-03T00:00:00Z"}
    fake.add(x_tweet(1030), x_tweet(1031))
    assert [t.id for t in src.poll().records] == ["1030", "1031"]
    assert fake.requests[-1]["since_id"] == "1024"
    assert src.poll().records == []
    rl = m.registry.get_sample_value(
        "coinfeed_producer_ratelimit_remaining",
        {"coin": "btc", "kind": "tweets", "source": "x-api"},
    )
    assert rl == fake.remaining
    reset = m.registry.get_sample_value(
        "coinfeed_producer_ratelimit_reset_timestamp_seconds",
        {"coin": "btc", "kind": "tweets", "source": "x-api"},
    )
    assert reset is not None and 0 < reset - time.time() <= fake.reset_in


def test_429_waits_for_the_reset_then_retries(httpserver: HTTPServer) -> None:
    fake = FakeX()
    fake.add(x_tweet(5))
    reset = int(time.time()) + 30
    fake.script.append(
        Scripted(
            429,
            json.dumps({"title": "Too Many Requests", "status": 429}).encode(),
            {
                "x-rate-limit-limit": "450",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset),
            },
        )
    )
    policy = RetryPolicy(base=0.01, cap=0.05, max_wait=1000, max_attempts=5)
    src, m, sleeps = _x(httpserver, fake, policy=policy)
    assert [t.id for t in src.poll().records] == ["5"]
    assert requests_total(m, "rate_limited") == 1 and requests_total(m, "ok") == 1
    assert len(sleeps.waits) == 1 and 25 <= sleeps.waits[0] <= 32  # until the reset, not hammering


def test_rate_limit_wait_is_bounded_by_max_wait(httpserver: HTTPServer) -> None:
    fake = FakeX(remaining=1)
    fake.reset_in = 3600
    fake.add(x_tweet(5))
    src, _, sleeps = _x(httpserver, fake)
    src.poll()  # remaining drops to 0 on this response
    fake.add(x_tweet(6))
    assert [t.id for t in src.poll().records] == ["6"]
    assert sleeps.waits and max(sleeps.waits) <= FAST.max_wait  # waited before asking, bounded


def test_5xx_retried_with_backoff(httpserver: HTTPServer) -> None:
    fake = FakeX()
    fake.add(x_tweet(7))
    fake.script += [
        Scripted(503, b"<html>Service Unavailable</html>", content_type="text/html"),
        Scripted(500, b"{}"),
    ]
    src, m, sleeps = _x(httpserver, fake)
    assert [t.id for t in src.poll().records] == ["7"]
    assert requests_total(m, "server_error") == 2
    assert len(sleeps.waits) == 2 and all(0 <= w <= FAST.cap for w in sleeps.waits)


@pytest.mark.parametrize(
    ("scripted", "reason"),
    [
        (
            Scripted(
                200, b"<html><body>Something went wrong</body></html>", content_type="text/html"
            ),
            b.HTML_BODY,
        ),
        (Scripted(200, b'{"data": [{"id": "1", "te'), b.MALFORMED_JSON),
        (Scripted(200, b'{"data": [], "meta": {"result_count": 0}, "bad": "\xff"}'), b.NOT_UTF8),
        (
            Scripted(
                200,
                json.dumps({"errors": [{"message": "Rate limit exceeded", "code": 88}]}).encode(),
            ),
            b.ERROR_BODY,
        ),
    ],
)
def test_malformed_200_skipped_and_polled_again(
    httpserver: HTTPServer, scripted: Scripted, reason: str
) -> None:
    fake = FakeX()
    fake.add(x_tweet(8))
    fake.script.append(scripted)
    src, m, _ = _x(httpserver, fake, since_id="3")
    out = src.poll()
    assert out.records == [] and [s.reason for s in out.skips] == [reason]
    assert src.since_id == "3" and not src.ready()  # nothing lost: the next poll asks again
    assert not_ready_reason(src) == f"X API body unusable ({reason})"
    assert requests_total(m, "bad_body") == 1
    assert [t.id for t in src.poll().records] == ["8"]
    assert src.ready()


def test_bad_tweets_skipped_with_reasons_good_ones_kept(httpserver: HTTPServer) -> None:
    fake = FakeX()
    broken = x_tweet(21)
    del broken["author_id"]
    fake.add(x_tweet(20), broken, x_tweet(22, lang=123), x_tweet(23))
    src, _, _ = _x(httpserver, fake)
    out = src.poll()
    assert [t.id for t in out.records] == ["20", "23"]
    assert sorted(s.reason for s in out.skips) == [b.INVALID_FIELD, b.MISSING_FIELD]
    assert src.since_id == "23"


def test_401_is_a_counted_client_error_not_a_crash(httpserver: HTTPServer) -> None:
    fake = FakeX()
    fake.script.append(
        Scripted(
            401,
            json.dumps(
                {
                    "title": "Unauthorized",
                    "type": "about:blank",
                    "status": 401,
                    "detail": "Unauthorized",
                }
            ).encode(),
        )
    )
    src, m, _ = _x(httpserver, fake)
    assert src.poll().records == []
    assert requests_total(m, "client_error") == 1 and not src.ready()


def test_first_search_of_an_empty_topic_is_bounded_by_the_lookback(httpserver: HTTPServer) -> None:
    """Without a since_id the search starts ``lookback`` before now, not 7 days back."""
    fake = FakeX()
    # one tweet two hours before "now" (outside the default hour), two inside it
    old, new1, new2 = (x_tweet(tid) for tid in (1000, 4000, 4001))
    old["created_at"], new1["created_at"], new2["created_at"] = (
        "2025-03-02T23:00:00.000Z",
        "2025-03-03T00:30:00.000Z",
        "2025-03-03T00:45:00.000Z",
    )
    fake.add(old, new1, new2)
    src, _, _ = _x(httpserver, fake, lookback_s=3600)
    assert [t.id for t in poll_search(src).records] == ["4000", "4001"]
    assert fake.requests[0]["start_time"] == "2025-03-03T00:00:00Z"
    assert src.since_id == "4001" and src.start_time is None
    src.poll()
    assert fake.requests[-1]["since_id"] == "4001" and "start_time" not in fake.requests[-1]
    # never earlier than recent search's 7-day window, whatever the lookback
    far, _, _ = _x(httpserver, FakeX(), lookback_s=30 * 86400)
    far.poll()
    assert fake.requests[-1]["start_time"] >= "2025-02-24T01:05:00Z"


def test_page_cap_continues_the_search_at_the_next_poll(httpserver: HTTPServer) -> None:
    fake = FakeX()
    fake.add(*[x_tweet(2000 + i) for i in range(45)])
    src, _, _ = _x(httpserver, fake, since_id="1", max_pages=2)
    first = poll_search(src)  # two pages, then the poll interval
    assert len(fake.requests) == 2
    assert sorted(int(t.id) for t in first.records) == list(range(2025, 2045))
    assert src.next_wait() > 50  # the rest waits for the next poll
    assert src.since_id == "1"  # not complete yet: a restart would search the range again
    second = poll_search(src)
    assert src.since_id == "1" and len(fake.requests) == 4
    third = poll_search(src)
    assert [r.get("next_token") for r in fake.requests] == [None, "10", "20", "30", "40"]
    assert sorted(int(t.id) for t in second.records + third.records) == list(range(2000, 2025))
    assert all(r["since_id"] == "1" for r in fake.requests)
    assert src.since_id == "2044"


def test_large_result_is_sent_page_by_page_in_bounded_memory(httpserver: HTTPServer) -> None:
    """20,000 tweets (200 pages): each poll returns one page, so the source holds one page at a
    time. Measured with tracemalloc: holding every page's records (the old behaviour) takes
    ~40 MB for these tweets; page by page stays under half of that (a few MB, plus garbage the
    collector has not reclaimed yet)."""
    import gc
    import tracemalloc

    fake = FakeX()
    fake.add(*[x_tweet(10_000 + i, text=f"$BTC {i} " + "lorem ipsum " * 20) for i in range(20_000)])
    # An hour's poll interval: under tracemalloc on a loaded machine the 200 pages can take more
    # than a minute, and a 60 s interval would then (rightly) start the next poll at once.
    src, _, _ = _x(httpserver, fake, since_id="1", interval=3600, max_results=100, max_pages=1000)
    gc.collect()
    tracemalloc.start()
    try:
        sent = 0
        base = tracemalloc.get_traced_memory()[0]
        peak_growth = 0
        while True:
            page = src.poll()  # the caller sends and drops it, as the runner does
            sent += len(page.records)
            del page
            httpserver.clear_log()  # the test server's own request log is not the producer's
            current = tracemalloc.get_traced_memory()[0]
            peak_growth = max(peak_growth, current - base)
            if src.next_wait() > 0:
                break
    finally:
        tracemalloc.stop()
    assert sent == 20_000 and len(fake.requests) == 200
    assert peak_growth < 20_000_000, f"memory grew by {peak_growth / 1e6:.1f} MB"
