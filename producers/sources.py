"""Sources behind one small interface: ``poll()`` returns a Batch, ``next_wait()`` says when to poll
again, ``done`` is True when a finite source (a replay file) is exhausted.

Parsing lives in prices.py / tweets.py / replay.py (pure); this module only does the I/O.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import requests

from coinfeed.producers import prices
from coinfeed.producers.batch import Batch, BodyError, Record
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.replay import (
    Rebase,
    due_offset,
    event_time,
    iter_lines,
    parse_line,
    rebase_shift,
    scan_span,
    with_event_time,
)
from coinfeed.producers.retry import RetryPolicy, retry_after
from coinfeed.topics import TopicKind

log = logging.getLogger("coinfeed.producers.sources")

# Stop-aware sleep: returns False when the process is stopping (the caller gives up the poll).
Sleep = Callable[[float], bool]


class Source(Protocol):
    name: str
    done: bool

    def poll(self) -> Batch: ...

    def next_wait(self) -> float: ...

    def ready(self) -> bool: ...

    def close(self) -> None: ...


def not_ready_reason(source: object) -> str:
    """Why a source is not ready, for /readyz (empty when it does not say)."""
    reason = getattr(source, "not_ready_reason", None)
    return str(reason()) if callable(reason) else ""


class ReplaySource:
    """A JSON-lines (or .gz) file of records, published at ``speed`` x real time (0 = at once)."""

    name = "replay"

    def __init__(
        self,
        kind: TopicKind,
        coin: str,
        path: Path,
        speed: float = 1.0,
        rebase: Rebase = "none",
        chunk: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"replay file {path} does not exist")
        self.kind, self.coin, self.path, self.speed = kind, coin, path, speed
        self.chunk = chunk
        self.clock = clock
        self.done = False
        span = scan_span(kind, coin, path) if rebase != "none" else None
        self.shift = rebase_shift(rebase, span, datetime.now(UTC))
        self._lines: Iterator[tuple[int, bytes]] = iter_lines(path)
        self._pending: Record | None = None
        self._first: datetime | None = None
        self._start = 0.0
        self._wait = 0.0

    def poll(self) -> Batch:
        out = Batch()
        self._wait = 0.0
        while len(out.records) < self.chunk:
            if self._pending is None:
                nxt = next(self._lines, None)
                if nxt is None:
                    self.done = True
                    break
                parsed = parse_line(self.kind, self.coin, *nxt)
                out.skips.extend(parsed.skips)
                if not parsed.records:
                    continue
                rec = parsed.records[0]
                if self.shift:
                    rec = with_event_time(rec, event_time(rec) + self.shift)
                self._pending = rec
            when = event_time(self._pending)
            if self._first is None:
                self._first, self._start = when, self.clock()
            due = self._start + due_offset(self._first, when, self.speed)
            now = self.clock()
            if due > now:
                self._wait = due - now
                break
            out.records.append(self._pending)
            self._pending = None
        return out

    def next_wait(self) -> float:
        return self._wait

    def ready(self) -> bool:
        return self.path.is_file()

    def close(self) -> None:
        close = getattr(self._lines, "close", None)
        if close is not None:
            close()


class _Polling:
    """Shared by live sources: fixed poll interval, readiness = the last request succeeded."""

    name = "live"
    done = False
    # Set when retrying cannot help (HTTP 451): the runner then stops and says why.
    refused = ""

    def __init__(self, interval: float, metrics: ProducerMetrics) -> None:
        self.interval = interval
        self.metrics = metrics
        self._ok = False
        self._reason = "no successful request yet"
        self._last_start = 0.0
        self._extra_wait = 0.0

    def not_ready_reason(self) -> str:
        return "" if self._ok else self._reason

    def next_wait(self) -> float:
        left = self.interval - (time.monotonic() - self._last_start)
        wait = max(0.0, left, self._extra_wait)
        self._extra_wait = 0.0
        return wait

    def ready(self) -> bool:
        return self._ok

    def close(self) -> None:
        return None


class _PricePolling(_Polling):
    """Shared by the live price sources: send each observation once, back off after failures."""

    policy: RetryPolicy

    def __init__(self, interval: float, metrics: ProducerMetrics) -> None:
        super().__init__(interval, metrics)
        self._last_ms: int | None = None
        self._failures = 0

    def _keep_newer(self, records: list[Record]) -> list[Record]:
        # A price that has not moved on since the last poll is the same observation: send it once.
        fresh = []
        for rec in records:
            ms = int(event_time(rec).timestamp() * 1000)
            if self._last_ms is None or ms > self._last_ms:
                fresh.append(rec)
                self._last_ms = ms
        return fresh

    def _failed(self, outcome: str, exc: Exception, why: str | None = None) -> Batch:
        self.metrics.request(outcome)
        self._ok = False
        self._reason = why or f"{self.name}: {outcome}"
        if outcome == GEO_BLOCKED:
            self.refused = self._reason
        self._extra_wait = self.policy.backoff(self._failures)
        self._failures += 1
        (log.error if why else log.warning)(
            why or "price source request failed",
            extra={"source": self.name, "outcome": outcome, "error": _short(exc)},
        )
        return Batch()


class CcxtPriceSource(_PricePolling):
    """Any ccxt exchange (default binance): ``ticker`` or closed 1-minute ``ohlcv`` candles."""

    def __init__(
        self,
        coin: str,
        pair: str,
        exchange_id: str,
        mode: str,
        interval: float,
        metrics: ProducerMetrics,
        policy: RetryPolicy,
        api_url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        timeout_ms: int = 10_000,
    ) -> None:
        import ccxt

        super().__init__(interval, metrics)
        if not hasattr(ccxt, exchange_id):
            raise ValueError(f"unknown ccxt exchange {exchange_id!r}")
        if mode not in ("ticker", "ohlcv"):
            raise ValueError(f"price mode must be ticker or ohlcv, got {mode!r}")
        self.name = exchange_id
        self.coin, self.pair, self.mode, self.policy = coin, pair, mode, policy
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
        if api_key:
            config["apiKey"] = api_key
        if api_secret:
            config["secret"] = api_secret
        self.exchange = getattr(ccxt, exchange_id)(config)
        if api_url:
            self.exchange.urls["api"] = rebase_urls(self.exchange.urls["api"], api_url)
        if exchange_id == "binance":
            # Only spot markets: the futures/options endpoints are other hosts and not needed.
            self.exchange.options["fetchMarkets"] = {"types": ["spot"]}

    def poll(self) -> Batch:
        import ccxt

        self._last_start = time.monotonic()
        try:
            if self.mode == "ticker":
                raw = self.exchange.fetch_ticker(self.pair)
                batch = prices.parse_ccxt_ticker(self.coin, self.pair, self.name, raw)
            else:
                raw = self.exchange.fetch_ohlcv(self.pair, "1m", limit=10)
                now_ms = int(time.time() * 1000)
                batch = prices.parse_ccxt_ohlcv(
                    self.coin, self.pair, self.name, raw, now_ms, self._last_ms
                )
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
            return self._failed("rate_limited", exc)
        except ccxt.ExchangeNotAvailable as exc:
            if is_geo_blocked(exc):
                return self._failed(GEO_BLOCKED, exc, geo_blocked_message(self.name))
            return self._failed("server_error", exc)
        except ccxt.NetworkError as exc:  # timeouts, 5xx, exchange not available
            return self._failed("server_error", exc)
        except ccxt.BaseError as exc:  # unparseable body, error payload, bad symbol
            return self._failed("bad_body", exc)
        if batch.skips and not batch.records:
            self.metrics.request("bad_body")
            self._ok = False
            return batch
        self.metrics.request("ok")
        self._ok, self._failures = True, 0
        batch.records = self._keep_newer(batch.records)
        return batch


# HTTP 451 Unavailable For Legal Reasons: Binance (binance.com) refuses requests from restricted
# locations, the US among them. Retrying cannot help; the user must pick another source.
GEO_BLOCKED = "geo_blocked"


def is_geo_blocked(exc: BaseException) -> bool:
    """ccxt maps HTTP 451 to ExchangeNotAvailable; its message carries the status code."""
    return re.search(r"\b451\b", str(exc)) is not None


def geo_blocked_message(exchange: str) -> str:
    return (
        f"{exchange} answers HTTP 451 (unavailable for legal reasons): it refuses requests from "
        "this address's location (Binance does so for the US); choose another price source, "
        "e.g. coingecko or kraken"
    )


def rebase_urls(api: Any, base: str) -> Any:
    """Point every endpoint of a ccxt ``urls['api']`` (a dict, maybe nested) at ``base``, keeping
    each path: ``https://api.binance.com/api/v3`` -> ``http://127.0.0.1:8080/api/v3``."""
    from urllib.parse import urlsplit

    if isinstance(api, dict):
        return {k: rebase_urls(v, base) for k, v in api.items()}
    if isinstance(api, str):
        return base.rstrip("/") + urlsplit(api).path
    return api


class CoinGeckoPriceSource(_PricePolling):
    """CoinGecko REST: ``simple/price`` (default) or ``coins/{id}/market_chart``."""

    name = "coingecko"

    def __init__(
        self,
        coin: str,
        pair: str,
        endpoint: str,
        interval: float,
        metrics: ProducerMetrics,
        policy: RetryPolicy,
        base_url: str = "https://api.coingecko.com",
        coingecko_id: str | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(interval, metrics)
        if endpoint not in ("simple", "market_chart"):
            raise ValueError(f"coingecko endpoint must be simple or market_chart, got {endpoint!r}")
        self.coin, self.pair, self.endpoint, self.policy = coin, pair, endpoint, policy
        self.base_url = base_url.rstrip("/")
        self.cg_id = coingecko_id or prices.coingecko_id(coin)
        if coingecko_id:
            prices.COINGECKO_IDS[coin] = coingecko_id
        self.session = requests.Session()
        if api_key:
            self.session.headers["x-cg-demo-api-key"] = api_key
        self.timeout = timeout

    def _request(self) -> requests.Response:
        vs = prices.vs_currency(self.pair)
        if self.endpoint == "simple":
            url = f"{self.base_url}/api/v3/simple/price"
            params = {
                "ids": self.cg_id,
                "vs_currencies": vs,
                "include_last_updated_at": "true",
            }
        else:
            url = f"{self.base_url}/api/v3/coins/{self.cg_id}/market_chart"
            params = {"vs_currency": vs, "days": "1"}
        return self.session.get(url, params=params, timeout=self.timeout)

    def poll(self) -> Batch:
        self._last_start = time.monotonic()
        try:
            resp = self._request()
        except requests.RequestException as exc:
            return self._failed("network_error", exc)
        if resp.status_code == 429:
            self._failed("rate_limited", RuntimeError("HTTP 429"))
            wait = retry_after(resp.headers, self.policy)
            if wait is not None:
                self._extra_wait = wait
            return Batch()
        if resp.status_code >= 500:
            return self._failed("server_error", RuntimeError(f"HTTP {resp.status_code}"))
        if resp.status_code == 451:
            return self._failed(
                GEO_BLOCKED, RuntimeError("HTTP 451"), geo_blocked_message(self.name)
            )
        if resp.status_code >= 400:
            return self._failed("client_error", RuntimeError(f"HTTP {resp.status_code}"))
        ctype = resp.headers.get("content-type")
        try:
            if self.endpoint == "simple":
                batch = prices.parse_coingecko_simple(self.coin, self.pair, resp.content, ctype)
            else:
                batch = prices.parse_coingecko_market_chart(
                    self.coin, self.pair, resp.content, ctype, self._last_ms
                )
        except BodyError as err:
            self.metrics.request("bad_body")
            self._ok = False
            return Batch(skips=[err.skip])
        if batch.skips and not batch.records:
            self.metrics.request("bad_body")
        else:
            self.metrics.request("ok")
            self._ok, self._failures = True, 0
        batch.records = self._keep_newer(batch.records)
        return batch


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."
