"""Local stand-ins for the external HTTP APIs, answering with their documented response shapes.

FakeX serves ``GET /2/tweets/search/recent`` (X API v2): newest first, ``since_id``,
``start_time``, ``max_results``, ``next_token`` pagination, ``includes.users`` for the author expansion and the
``x-rate-limit-*`` headers. Scripted responses (429, 503, malformed bodies) are served first.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

SEARCH_PATH = "/2/tweets/search/recent"


@dataclass
class Scripted:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def x_tweet(tid: int, author: int = 1, text: str | None = None, **over: Any) -> dict[str, Any]:
    created = datetime(2025, 3, 3, tzinfo=UTC) + timedelta(seconds=tid % 100_000)
    tweet: dict[str, Any] = {
        "id": str(tid),
        "text": text or f"$BTC looks great today #Bitcoin {tid}",
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "author_id": str(author),
        "lang": "en",
        "edit_history_tweet_ids": [str(tid)],
        "public_metrics": {
            "retweet_count": 2,
            "reply_count": 1,
            "like_count": 7,
            "quote_count": 0,
            "bookmark_count": 0,
            "impression_count": 100,
        },
        "entities": {
            "hashtags": [{"start": 25, "end": 33, "tag": "Bitcoin"}],
            "cashtags": [{"start": 0, "end": 4, "tag": "BTC"}],
        },
    }
    tweet.update(over)
    return tweet


def x_user(uid: int) -> dict[str, Any]:
    return {
        "id": str(uid),
        "name": f"User {uid}",
        "username": f"user{uid}",
        "public_metrics": {
            "followers_count": 1000 + uid,
            "following_count": 10,
            "tweet_count": 5,
            "listed_count": 0,
            "like_count": 3,
        },
    }


class FakeX:
    def __init__(self, remaining: int = 450, limit: int = 450) -> None:
        self.tweets: list[dict[str, Any]] = []
        self.script: list[Scripted] = []
        self.requests: list[dict[str, str]] = []
        self.auth_headers: list[str] = []
        self.remaining, self.limit = remaining, limit
        self.reset_in = 900
        self._lock = threading.Lock()

    def add(self, *tweets: dict[str, Any]) -> None:
        with self._lock:
            self.tweets.extend(tweets)

    def install(self, server: HTTPServer) -> FakeX:
        server.expect_request(SEARCH_PATH, method="GET").respond_with_handler(self.handle)
        return self

    def rl_headers(self) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(self.limit),
            "x-rate-limit-remaining": str(self.remaining),
            "x-rate-limit-reset": str(int(time.time()) + self.reset_in),
        }

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(dict(request.args))
            self.auth_headers.append(request.headers.get("Authorization", ""))
            if self.script:
                s = self.script.pop(0)
                return Response(
                    s.body, status=s.status, headers=s.headers, content_type=s.content_type
                )
            self.remaining = max(0, self.remaining - 1)
            since = int(request.args.get("since_id", "0"))
            # start_time: YYYY-MM-DDTHH:mm:ssZ; created_at has milliseconds: compare the seconds.
            start_time = request.args.get("start_time", "")
            size = int(request.args.get("max_results", "10"))
            start = int(request.args.get("next_token", "0") or 0)
            matching = sorted(
                (
                    t
                    for t in self.tweets
                    if int(t["id"]) > since and t["created_at"][:19] >= start_time[:19]
                ),
                key=lambda t: -int(t["id"]),
            )
            page = matching[start : start + size]
            meta: dict[str, Any] = {"result_count": len(page)}
            if page:
                meta["newest_id"], meta["oldest_id"] = page[0]["id"], page[-1]["id"]
            if start + size < len(matching):
                meta["next_token"] = str(start + size)
            body: dict[str, Any] = {"meta": meta}
            if page:
                body["data"] = page
                authors = sorted({t["author_id"] for t in page if "author_id" in t})
                body["includes"] = {"users": [x_user(int(a)) for a in authors if a.isdigit()]}
            return Response(
                json.dumps(body),
                status=200,
                headers=self.rl_headers(),
                content_type="application/json",
            )


BINANCE_EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 1711356300000,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [],
            "permissions": ["SPOT"],
        }
    ],
}


def binance_ticker(last: str = "67187.33", close_time: int = 1711356300000) -> dict[str, Any]:
    """``GET /api/v3/ticker/24hr?symbol=BTCUSDT`` (FULL response)."""
    return {
        "symbol": "BTCUSDT",
        "priceChange": "100.00",
        "priceChangePercent": "0.150",
        "weightedAvgPrice": "67000.00",
        "prevClosePrice": "67087.33",
        "lastPrice": last,
        "lastQty": "0.01",
        "bidPrice": "67187.32",
        "bidQty": "1.0",
        "askPrice": "67187.34",
        "askQty": "1.0",
        "openPrice": "67087.33",
        "highPrice": "67500.00",
        "lowPrice": "66500.00",
        "volume": "12345.678",
        "quoteVolume": "827000000.0",
        "openTime": close_time - 86_400_000,
        "closeTime": close_time,
        "firstId": 1,
        "lastId": 2,
        "count": 2,
    }


def binance_kline(open_ms: int, close: str = "67100.5") -> list[Any]:
    """One row of ``GET /api/v3/klines``."""
    return [
        open_ms,
        "67000.0",
        "67200.0",
        "66900.0",
        close,
        "12.5",
        open_ms + 59_999,
        "0",
        10,
        "0",
        "0",
        "0",
    ]
