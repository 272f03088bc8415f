"""Topic naming: one function, validated coin symbols."""

from __future__ import annotations

import pytest

from coinfeed.topics import (
    InvalidCoinError,
    feed_topics,
    normalize_coin,
    parse_topic,
    topic_name,
)


@pytest.mark.parametrize(
    ("coin", "kind", "expected"),
    [
        ("btc", "prices", "coinfeed.btc.prices"),
        ("BTC", "tweets", "coinfeed.btc.tweets"),
        (" Eth ", "prices", "coinfeed.eth.prices"),
        ("1inch", "prices", "coinfeed.1inch.prices"),
        ("abcdefghij", "tweets", "coinfeed.abcdefghij.tweets"),
    ],
)
def test_topic_names(coin: str, kind: str, expected: str) -> None:
    assert topic_name(coin, kind) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("coin", ["", "b", "abcdefghijk", "btc-usd", "bt c", "₿tc", "btc.", "$btc"])
def test_invalid_coins_rejected_with_the_symbol_named(coin: str) -> None:
    with pytest.raises(InvalidCoinError) as err:
        topic_name(coin, "prices")
    assert repr(coin) in str(err.value)
    assert "letters and digits only, 2-10 characters" in str(err.value)


def test_non_string_coin_rejected() -> None:
    with pytest.raises(InvalidCoinError, match="must be a string"):
        normalize_coin(42)  # type: ignore[arg-type]


def test_unknown_kind_rejected() -> None:
    with pytest.raises(ValueError, match="unknown topic kind 'trades'"):
        topic_name("btc", "trades")  # type: ignore[arg-type]


def test_feed_topics_and_parse_are_inverse() -> None:
    topics = feed_topics("SOL")
    assert topics == {"prices": "coinfeed.sol.prices", "tweets": "coinfeed.sol.tweets"}
    for kind, name in topics.items():
        assert parse_topic(name) == ("sol", kind)


@pytest.mark.parametrize(
    "topic", ["coinfeed.btc", "other.btc.prices", "coinfeed.btc.trades", "coinfeed.b.prices"]
)
def test_foreign_topics_rejected(topic: str) -> None:
    with pytest.raises(ValueError):
        parse_topic(topic)
