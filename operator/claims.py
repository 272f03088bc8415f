"""Which CoinFeed owns a coin (pure).

Topics are named after the coin alone (``coinfeed.<coin>.*``), so two CoinFeeds following one coin
would fight over the same topics. The first one to be created owns the coin: the oldest
``creationTimestamp``, then name, then namespace. A feed being deleted keeps its claim until it is
gone, so its topic deletion (``deletionPolicy: Delete``) never races a successor; then the next
one takes over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from coinfeed.topics import InvalidCoinError, normalize_coin


def coin_of(feed: Mapping[str, Any]) -> str | None:
    """The feed's coin, normalised as topics name it; None when the spec has no valid coin."""
    coin = (feed.get("spec") or {}).get("coin")
    if not isinstance(coin, str):
        return None
    try:
        return normalize_coin(coin)
    except InvalidCoinError:
        return None


def feed_key(feed: Mapping[str, Any]) -> str:
    meta = feed.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _order(feed: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = feed.get("metadata") or {}
    # RFC 3339 in UTC with whole seconds (what the API server writes) sorts as text.
    return (
        str(meta.get("creationTimestamp", "")),
        str(meta.get("name", "")),
        str(meta.get("namespace", "")),
    )


def coin_owner(
    feed: Mapping[str, Any], feeds: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The *other* feed that owns ``feed``'s coin, or None when ``feed`` owns it (or has no
    valid coin, which its reconcile reports as an invalid spec)."""
    coin = coin_of(feed)
    if coin is None:
        return None
    me = feed_key(feed)
    rivals = [f for f in feeds if feed_key(f) != me and coin_of(f) == coin]
    first = min([feed, *rivals], key=_order)
    return None if feed_key(first) == me else first
