"""Pure parsing of price sources (ccxt unified structures, CoinGecko REST bodies) into PriceTicks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from coinfeed.producers.batch import (
    ERROR_BODY,
    HTML_BODY,
    MALFORMED_JSON,
    MISSING_FIELD,
    UNEXPECTED_SHAPE,
    Batch,
    Skip,
    decode_json_body,
    skip_for,
)
from coinfeed.schemas import PriceTick, RecordError, validate_record

# CoinGecko names coins by id, not symbol; the common ones, overridable by a flag.
COINGECKO_IDS: Final[dict[str, str]] = {
    "btc": "bitcoin",
    "eth": "ethereum",
    "sol": "solana",
    "doge": "dogecoin",
    "ada": "cardano",
    "xrp": "ripple",
    "bnb": "binancecoin",
    "ltc": "litecoin",
    "dot": "polkadot",
    "avax": "avalanche-2",
}
# Stablecoin quotes are priced against their fiat on CoinGecko.
_VS_CURRENCY: Final[dict[str, str]] = {"usdt": "usd", "usdc": "usd", "busd": "usd", "fdusd": "usd"}


def coingecko_id(coin: str) -> str:
    return COINGECKO_IDS.get(coin, coin)


def vs_currency(pair: str) -> str:
    quote = pair.split("/", 1)[1].lower() if "/" in pair else "usd"
    return _VS_CURRENCY.get(quote, quote)


def _ms_to_dt(ms: Any) -> datetime:
    return datetime.fromtimestamp(float(ms) / 1000.0, UTC)


def _tick(data: dict[str, Any], where: str) -> Batch:
    try:
        return Batch(records=[validate_record(PriceTick, data)])
    except RecordError as err:
        return Batch(skips=[skip_for(err, where)])


def parse_ccxt_ticker(coin: str, pair: str, source: str, ticker: Any) -> Batch:
    """A ccxt unified ticker -> one tick (price = ``last``, else ``close``)."""
    if not isinstance(ticker, dict):
        return Batch(skips=[Skip(UNEXPECTED_SHAPE, f"ticker is {type(ticker).__name__}")])
    raw = ticker.get("info")
    if isinstance(raw, str):
        # ccxt hands back an empty ticker with the unparsed body as ``info`` when it is not JSON.
        reason = HTML_BODY if raw.lstrip()[:1] == "<" else MALFORMED_JSON
        return Batch(skips=[Skip(reason, f"ticker body is not JSON: {raw[:60]!r}")])
    price = ticker.get("last") if ticker.get("last") is not None else ticker.get("close")
    ts = ticker.get("timestamp")
    if ts is None:
        return Batch(skips=[Skip(MISSING_FIELD, "ticker: timestamp is missing")])
    if not isinstance(ts, int | float):
        return _tick({"ts": ts}, "ticker")
    return _tick(
        {
            "coin": coin,
            "source": source,
            "pair": pair,
            "ts": _ms_to_dt(ts),
            "price": price,
            "volume": ticker.get("baseVolume"),
        },
        "ticker",
    )


def parse_ccxt_ohlcv(
    coin: str, pair: str, source: str, rows: Any, now_ms: int, after_ms: int | None
) -> Batch:
    """1-minute candles -> ticks at each candle's close; only closed candles newer than ``after_ms``.

    The newest candle an exchange returns is usually still open: emitting it would publish a
    price that later changes under the same timestamp.
    """
    if not isinstance(rows, list):
        return Batch(skips=[Skip(UNEXPECTED_SHAPE, f"ohlcv is {type(rows).__name__}")])
    out = Batch()
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple) or len(row) < 6:
            out.skips.append(Skip(UNEXPECTED_SHAPE, f"ohlcv[{i}]: expected [t,o,h,l,c,v]"))
            continue
        t, _o, _h, _l, close, volume = row[:6]
        if not isinstance(t, int | float):
            out.skips.append(Skip(UNEXPECTED_SHAPE, f"ohlcv[{i}]: open time {t!r}"))
            continue
        close_ms = int(t) + 60_000
        if close_ms > now_ms or (after_ms is not None and close_ms <= after_ms):
            continue
        out.extend(
            _tick(
                {
                    "coin": coin,
                    "source": source,
                    "pair": pair,
                    "ts": _ms_to_dt(close_ms),
                    "price": close,
                    "volume": volume,
                },
                f"ohlcv[{i}]",
            )
        )
    return out


def parse_coingecko_simple(
    coin: str, pair: str, body: bytes, content_type: str | None = None
) -> Batch:
    """``/api/v3/simple/price?ids=..&vs_currencies=..&include_last_updated_at=true`` -> one tick.

    Raises :class:`~coinfeed.producers.batch.BodyError` for an unusable body.
    """
    data = decode_json_body(body, content_type)
    cg_id, vs = coingecko_id(coin), vs_currency(pair)
    if not isinstance(data, dict):
        return Batch(skips=[Skip(UNEXPECTED_SHAPE, f"body is {type(data).__name__}")])
    if cg_id not in data:
        if "status" in data or "error" in data:
            return Batch(skips=[Skip(ERROR_BODY, f"error body: {str(data)[:120]}")])
        return Batch(skips=[Skip(MISSING_FIELD, f"{cg_id!r} is missing from the body")])
    entry = data[cg_id]
    if not isinstance(entry, dict):
        return Batch(skips=[Skip(UNEXPECTED_SHAPE, f"{cg_id}: expected an object")])
    updated = entry.get("last_updated_at")
    if updated is None:
        return Batch(skips=[Skip(MISSING_FIELD, f"{cg_id}.last_updated_at is missing")])
    if not isinstance(updated, int | float):
        return _tick({"ts": updated}, cg_id)
    return _tick(
        {
            "coin": coin,
            "source": "coingecko",
            "pair": pair,
            "ts": datetime.fromtimestamp(float(updated), UTC),
            "price": entry.get(vs),
            "volume": None,
        },
        cg_id,
    )


def parse_coingecko_market_chart(
    coin: str, pair: str, body: bytes, content_type: str | None = None, after_ms: int | None = None
) -> Batch:
    """``/api/v3/coins/{id}/market_chart`` -> one tick per ``prices`` point newer than ``after_ms``."""
    data = decode_json_body(body, content_type)
    if not isinstance(data, dict):
        return Batch(skips=[Skip(UNEXPECTED_SHAPE, f"body is {type(data).__name__}")])
    if "prices" not in data:
        if "status" in data or "error" in data:
            return Batch(skips=[Skip(ERROR_BODY, f"error body: {str(data)[:120]}")])
        return Batch(skips=[Skip(MISSING_FIELD, "prices is missing from the body")])
    points = data["prices"]
    if not isinstance(points, list):
        return Batch(skips=[Skip(UNEXPECTED_SHAPE, "prices: expected a list")])
    out = Batch()
    for i, point in enumerate(points):
        if not isinstance(point, list) or len(point) != 2 or not isinstance(point[0], int | float):
            out.skips.append(Skip(UNEXPECTED_SHAPE, f"prices[{i}]: expected [ms, price]"))
            continue
        if after_ms is not None and point[0] <= after_ms:
            continue
        out.extend(
            _tick(
                {
                    "coin": coin,
                    "source": "coingecko",
                    "pair": pair,
                    "ts": _ms_to_dt(point[0]),
                    "price": point[1],
                },
                f"prices[{i}]",
            )
        )
    return out
