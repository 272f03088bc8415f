"""Topic naming: the one function every component (operator, producers, Spark, charts) uses."""

from __future__ import annotations

import re
from typing import Final, Literal

TopicKind = Literal["prices", "tweets"]
TOPIC_KINDS: Final[tuple[TopicKind, ...]] = ("prices", "tweets")
TOPIC_PREFIX: Final = "coinfeed"
COIN_MAX_LENGTH: Final = 10  # also bounds the hourly job's per-coin summary (hourly_status.py)
_COIN_RE: Final = re.compile(rf"^[a-z0-9]{{2,{COIN_MAX_LENGTH}}}$")


class InvalidCoinError(ValueError):
    """A coin symbol that cannot name a topic."""


def normalize_coin(coin: str) -> str:
    """Lower-case and validate a coin symbol: letters and digits only, 2-10 characters."""
    if not isinstance(coin, str):
        raise InvalidCoinError(f"coin must be a string, got {type(coin).__name__}: {coin!r}")
    norm = coin.strip().lower()
    if not _COIN_RE.match(norm):
        raise InvalidCoinError(
            f"invalid coin symbol {coin!r}: letters and digits only, 2-10 characters"
        )
    return norm


def topic_name(coin: str, kind: TopicKind) -> str:
    """``coinfeed.<coin>.<kind>``, e.g. ``coinfeed.btc.prices``."""
    if kind not in TOPIC_KINDS:
        raise ValueError(f"unknown topic kind {kind!r}: expected one of {', '.join(TOPIC_KINDS)}")
    return f"{TOPIC_PREFIX}.{normalize_coin(coin)}.{kind}"


def feed_topics(coin: str) -> dict[TopicKind, str]:
    """Both topics of one coin's feed."""
    return {kind: topic_name(coin, kind) for kind in TOPIC_KINDS}


def parse_topic(topic: str) -> tuple[str, TopicKind]:
    """Inverse of :func:`topic_name`; raises ``ValueError`` for a topic coinfeed does not own."""
    parts = topic.split(".")
    if len(parts) != 3 or parts[0] != TOPIC_PREFIX or parts[2] not in TOPIC_KINDS:
        raise ValueError(f"{topic!r} is not a coinfeed topic (coinfeed.<coin>.prices|tweets)")
    kind: TopicKind = "prices" if parts[2] == "prices" else "tweets"
    return normalize_coin(parts[1]), kind
