"""Which feeds share one hourly Spark application (pure).

Feeds whose hourly runs are interchangeable share one CronJob: one Spark driver (one JVM, one
session) then reads and aggregates every coin of the group in one run (``coinfeed hourly --coin
a,b,c``) instead of one application per feed.

The grouping key is everything on the job's command line except the coin, so each feed gets
exactly the run it asked for:

- the namespace (a CronJob, its pods and the lake claim are namespaced),
- ``spec.aggregation.schedule``,
- ``spec.aggregation.lookbackHours`` (hours recomputed each run),
- ``spec.topics.retentionHours`` (bounds the job's search for missed hours: a longer bound would
  let it backfill hours whose records the shorter-lived topic has already lost).

The Kafka cluster, lake, images, Spark master and resources are operator settings, the same for
every feed one operator serves, so they are part of the key implicitly.

A group is cut into shards of at most ``max_coins`` coins, members in creation order (a new feed
joins the last shard; only when it is full does a new CronJob appear): the job reports each coin's
outcome in its container's termination message, which the kubelet keeps to 4 KiB; the compact
encoding of ``coinfeed.hourly_status`` bounds how many coins always fit (``settings.
MAX_COINS_PER_JOB``, checked by ``tests/unit/operator/test_operator_groups.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from coinfeed.operator import claims
from coinfeed.operator.spec import FeedSpec, SpecError, parse_spec

NAME_PREFIX: Final = "coinfeed-hourly"
# On a shared CronJob, its Jobs and pods: the group's id, and the CronJob's name (to list the
# Jobs of one CronJob).
GROUP_LABEL: Final = "coinfeed.io/hourly-group"
HOURLY_JOB_LABEL: Final = "coinfeed.io/hourly-job"


@dataclass(frozen=True)
class GroupKey:
    namespace: str
    schedule: str
    lookback_hours: int
    retention_hours: int

    def id(self) -> str:
        """A short stable id (CronJob names must be DNS labels; a schedule is not)."""
        raw = f"{self.schedule}|{self.lookback_hours}|{self.retention_hours}"
        return hashlib.sha256(raw.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Member:
    name: str
    uid: str
    coin: str
    created: str  # creationTimestamp: the order feeds join shards in


@dataclass(frozen=True)
class HourlyGroup:
    """One shared CronJob: its key, its shard number within the key, and its member feeds."""

    key: GroupKey
    shard: int
    members: tuple[Member, ...]

    @property
    def name(self) -> str:
        # 30 characters: far below the 52 a CronJob name may have (its Jobs append 11).
        return f"{NAME_PREFIX}-{self.key.id()}-{self.shard}"

    @property
    def namespace(self) -> str:
        return self.key.namespace

    @property
    def coins(self) -> list[str]:
        return sorted(m.coin for m in self.members)


def group_key(namespace: str, spec: FeedSpec) -> GroupKey:
    return GroupKey(
        namespace,
        spec.aggregation.schedule,
        spec.aggregation.lookback_hours,
        spec.topics.retention_hours,
    )


def _member(feed: Mapping[str, Any], spec: FeedSpec) -> Member:
    meta = feed["metadata"]
    return Member(
        str(meta["name"]),
        str(meta.get("uid", "")),
        spec.coin,
        str(meta.get("creationTimestamp", "")),
    )


def member_spec(feed: Mapping[str, Any], feeds: Iterable[Mapping[str, Any]]) -> FeedSpec | None:
    """The feed's spec when its coin belongs in an hourly run: a valid spec, not suspended, not
    being deleted, and the feed owns its coin (``claims``); else None."""
    if (feed.get("metadata") or {}).get("deletionTimestamp"):
        return None
    try:
        spec = parse_spec(feed.get("spec") or {})
    except SpecError:
        return None
    if spec.suspend or claims.coin_owner(feed, feeds) is not None:
        return None
    return spec


def plan_groups(
    feeds: Sequence[Mapping[str, Any]], max_coins: int, namespace: str | None = None
) -> list[HourlyGroup]:
    """Every shared CronJob that should exist for ``feeds`` (those of ``namespace`` if given),
    ordered by name."""
    if max_coins < 1:
        raise ValueError("max_coins must be at least 1")
    by_key: dict[GroupKey, list[Member]] = {}
    for feed in feeds:
        ns = str((feed.get("metadata") or {}).get("namespace", ""))
        if namespace is not None and ns != namespace:
            continue
        spec = member_spec(feed, feeds)
        if spec is not None:
            by_key.setdefault(group_key(ns, spec), []).append(_member(feed, spec))
    out: list[HourlyGroup] = []
    for key, members in by_key.items():
        ordered = sorted(members, key=lambda m: (m.created, m.name))
        for shard, start in enumerate(range(0, len(ordered), max_coins)):
            out.append(HourlyGroup(key, shard, tuple(ordered[start : start + max_coins])))
    return sorted(out, key=lambda g: (g.namespace, g.name))


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("uid") == uid for r in refs)


def cronjob_of(cronjobs: Iterable[Mapping[str, Any]], feed_uid: str) -> Mapping[str, Any] | None:
    """The shared CronJob that runs a feed's coin: the one listing the feed among its owners
    (a per-feed CronJob of an earlier version, owned by the feed too, is not one)."""
    return next(
        (
            c
            for c in cronjobs
            if GROUP_LABEL in ((c.get("metadata") or {}).get("labels") or {})
            and owned_by(c, feed_uid)
        ),
        None,
    )
