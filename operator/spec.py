"""A CoinFeed's spec as typed values, with the CRD's defaults applied.

The API server applies the CRD defaults to stored objects; this parser applies the same defaults so
that a manifest read straight from a file (the local demo, tests) gives the same result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from coinfeed.topics import InvalidCoinError, normalize_coin


class SpecError(ValueError):
    """A CoinFeed spec that cannot be turned into resources; the message names the field."""


@dataclass(frozen=True)
class PriceSource:
    source: str
    pair: str
    mode: str = "ticker"
    poll_interval_seconds: int = 10
    replay_file: str = ""
    replay_speed: float = 0.0  # 0 = as fast as possible


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str = "token"


@dataclass(frozen=True)
class TweetSource:
    enabled: bool = False
    source: str = "x-api"
    keywords: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)
    poll_interval_seconds: int = 60
    replay_file: str = ""
    replay_speed: float = 0.0
    bearer_token: SecretRef | None = None
    lookback_minutes: int | None = None  # None: the producer's default (60)
    jetstream_endpoints: tuple[str, ...] = ()  # bluesky; empty: the public instances


@dataclass(frozen=True)
class TopicSettings:
    partitions: int = 3
    replication_factor: int = 3
    min_insync_replicas: int = 2
    retention_hours: int = 24


@dataclass(frozen=True)
class Aggregation:
    schedule: str = "5 * * * *"
    lookback_hours: int = 2


@dataclass(frozen=True)
class FeedSpec:
    coin: str
    prices: PriceSource
    tweets: TweetSource
    topics: TopicSettings
    aggregation: Aggregation
    deletion_policy: Literal["Retain", "Delete"] = "Retain"
    suspend: bool = False
    # Secret (keys username, password) of the producers' Kafka user: a name, never the values.
    kafka_credentials: str | None = None


def spec_of(manifest_or_spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept a whole CoinFeed manifest (``{"spec": ...}``) or just its spec."""
    if "spec" in manifest_or_spec and "coin" not in manifest_or_spec:
        inner = manifest_or_spec["spec"]
        if not isinstance(inner, Mapping):
            raise SpecError(f"spec: expected an object, got {type(inner).__name__}")
        return inner
    return manifest_or_spec


def _obj(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{path}.{key}: expected an object, got {value!r}")
    return value


def _speed(parent: Mapping[str, Any], path: str) -> float:
    value = parent.get("replaySpeed", 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1e6:
        raise SpecError(f"{path}.replaySpeed: expected a number from 0 to 1000000, got {value!r}")
    return float(value)


def _int(parent: Mapping[str, Any], key: str, path: str, default: int, lo: int, hi: int) -> int:
    value = parent.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SpecError(f"{path}.{key}: expected an integer {lo}..{hi}, got {value!r}")
    return value


def _str(parent: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    value = parent.get(key, default)
    if not isinstance(value, str) or not value:
        raise SpecError(f"{path}.{key}: expected a non-empty string, got {value!r}")
    return value


def _strs(
    parent: Mapping[str, Any], key: str, path: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    value = parent.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SpecError(f"{path}.{key}: expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def parse_spec(manifest_or_spec: Mapping[str, Any]) -> FeedSpec:
    """Typed spec with defaults; raises :class:`SpecError` naming the first bad field."""
    spec = spec_of(manifest_or_spec)
    try:
        coin = normalize_coin(spec.get("coin"))  # type: ignore[arg-type]
    except InvalidCoinError as exc:
        raise SpecError(f"spec.coin: {exc}") from None

    p = _obj(spec, "prices", "spec")
    if not p:
        raise SpecError("spec.prices: required (source and pair)")
    prices = PriceSource(
        source=_str(p, "source", "spec.prices"),
        pair=_str(p, "pair", "spec.prices"),
        mode=_str(p, "mode", "spec.prices", "ticker"),
        poll_interval_seconds=_int(p, "pollIntervalSeconds", "spec.prices", 10, 1, 3600),
        replay_file=str(p.get("replayFile", "")),
        replay_speed=_speed(p, "spec.prices"),
    )

    t = _obj(spec, "tweets", "spec")
    ref = _obj(t, "bearerTokenSecretRef", "spec.tweets")
    tweets = TweetSource(
        enabled=bool(t.get("enabled", False)),
        source=_str(t, "source", "spec.tweets", "x-api"),
        keywords=_strs(t, "keywords", "spec.tweets", ()),
        languages=_strs(t, "languages", "spec.tweets", ("en",)),
        poll_interval_seconds=_int(t, "pollIntervalSeconds", "spec.tweets", 60, 5, 3600),
        replay_file=str(t.get("replayFile", "")),
        replay_speed=_speed(t, "spec.tweets"),
        bearer_token=(
            SecretRef(
                _str(ref, "name", "spec.tweets.bearerTokenSecretRef"),
                _str(ref, "key", "spec.tweets.bearerTokenSecretRef", "token"),
            )
            if ref
            else None
        ),
        lookback_minutes=(
            _int(t, "lookbackMinutes", "spec.tweets", 60, 1, 10080)
            if "lookbackMinutes" in t
            else None
        ),
        jetstream_endpoints=_strs(t, "jetstreamEndpoints", "spec.tweets", ()),
    )
    if tweets.enabled and not tweets.keywords and tweets.source == "x-api":
        raise SpecError("spec.tweets.keywords: at least one keyword is needed to search tweets")
    if tweets.enabled and tweets.source == "x-api" and tweets.bearer_token is None:
        raise SpecError("spec.tweets.bearerTokenSecretRef: required for source x-api")
    if prices.source == "replay" and not prices.replay_file:
        raise SpecError("spec.prices.replayFile: required for source replay")
    if tweets.enabled and tweets.source == "replay" and not tweets.replay_file:
        raise SpecError("spec.tweets.replayFile: required for source replay")
    if tweets.source not in ("x-api", "bluesky", "replay"):
        raise SpecError(
            f"spec.tweets.source: expected x-api, bluesky or replay, got {tweets.source!r}"
        )

    tp = _obj(spec, "topics", "spec")
    rf = _int(tp, "replicationFactor", "spec.topics", 3, 1, 5)
    topics = TopicSettings(
        partitions=_int(tp, "partitions", "spec.topics", 3, 1, 64),
        replication_factor=rf,
        min_insync_replicas=_int(tp, "minInSyncReplicas", "spec.topics", min(2, rf), 1, 5),
        retention_hours=_int(tp, "retentionHours", "spec.topics", 24, 1, 8760),
    )
    if topics.min_insync_replicas > rf:
        raise SpecError(
            f"spec.topics.minInSyncReplicas: {topics.min_insync_replicas} exceeds "
            f"replicationFactor {rf}"
        )

    a = _obj(spec, "aggregation", "spec")
    aggregation = Aggregation(
        schedule=_str(a, "schedule", "spec.aggregation", "5 * * * *"),
        lookback_hours=_int(a, "lookbackHours", "spec.aggregation", 2, 1, 168),
    )

    policy = spec.get("deletionPolicy", "Retain")
    if policy not in ("Retain", "Delete"):
        raise SpecError(f"spec.deletionPolicy: expected Retain or Delete, got {policy!r}")
    k = _obj(spec, "kafka", "spec")
    creds = _obj(k, "credentialsSecretRef", "spec.kafka")
    return FeedSpec(
        coin=coin,
        prices=prices,
        tweets=tweets,
        topics=topics,
        aggregation=aggregation,
        deletion_policy="Delete" if policy == "Delete" else "Retain",
        suspend=bool(spec.get("suspend", False)),
        kafka_credentials=(
            _str(creds, "name", "spec.kafka.credentialsSecretRef") if creds else None
        ),
    )
