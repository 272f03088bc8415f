"""Resume points of the social producers, read back from the feed's social topic.

Both sources send their posts in order (X: each search page oldest first; Bluesky: stream order),
so the last record of every partition is that partition's newest of its source.

- X recent search sends page by page, newest page first. Every record carries which pagination it
  came from (headers ``x_since_id``/``x_start_time``: the lower bound it searched from,
  ``x_newest_id``: the newest id of the whole result, ``x_last_page``: 1 on its last page). A
  pagination whose last page reached Kafka is complete: resume after its newest id. One cut short
  by a restart is searched again from its lower bound (no gap; the pages already sent are sent
  again and the hourly job drops the duplicates). Records without these headers (written before
  paging) resume after the largest id, as before.
- Bluesky resumes ``margin`` before the newest ``observed_at`` (Jetstream ``time_us``) of a
  Bluesky post in the topic, with the dedup keys of the posts already there from that point on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from coinfeed.kafka import make_consumer
from coinfeed.producers import bluesky
from coinfeed.producers.tweets import max_id
from coinfeed.schemas import RecordError, Tweet, decode_record

log = logging.getLogger("coinfeed.producers.resume")

H_SINCE_ID: Final = "x_since_id"
H_START_TIME: Final = "x_start_time"
H_NEWEST_ID: Final = "x_newest_id"
H_LAST_PAGE: Final = "x_last_page"


class TopicMissingError(RuntimeError):
    """The topic does not exist (yet): the operator creates it."""


@dataclass(frozen=True)
class Stored:
    """One record read back from the topic."""

    tweet: Tweet
    headers: dict[str, bytes] = field(default_factory=dict)

    def header(self, name: str) -> str:
        return self.headers.get(name, b"").decode("utf-8", "replace")


def _decode(msgs: Iterable[Any], topic: str) -> Iterator[Stored]:
    for msg in msgs:
        try:
            tweet = decode_record(Tweet, msg.value)
        except RecordError as err:
            log.warning(
                "unreadable record while resuming",
                extra={"topic": topic, "offset": msg.offset, "error": str(err)},
            )
            continue
        yield Stored(tweet, {k: bytes(v) for k, v in (msg.headers or [])})


def _consumer(bootstrap: str | None) -> Any:
    return make_consumer(
        bootstrap=bootstrap, group_id=None, consumer_timeout_ms=1000, request_timeout_ms=30_000
    )


def _partitions(consumer: Any, topic: str) -> list[Any]:
    from kafka import TopicPartition

    parts = consumer.partitions_for_topic(topic)
    if not parts:
        raise TopicMissingError(f"topic {topic} does not exist")
    return [TopicPartition(topic, p) for p in sorted(parts)]


def _read(
    consumer: Any, topic: str, starts: dict[Any, int], ends: dict[Any, int], timeout: float
) -> list[Stored]:
    wanted = {tp: ends[tp] for tp, start in starts.items() if ends[tp] > start}
    for tp in wanted:
        consumer.seek(tp, starts[tp])
    out: list[Stored] = []
    deadline = time.monotonic() + timeout
    while wanted and time.monotonic() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            out += _decode((m for m in msgs if m.offset < ends[tp]), topic)
            if consumer.position(tp) >= wanted.get(tp, 0):
                wanted.pop(tp, None)
    if wanted:
        raise TimeoutError(f"could not read {len(wanted)} partition(s) of {topic} to their end")
    return out


def last_records(topic: str, bootstrap: str | None = None, timeout: float = 30.0) -> list[Stored]:
    """The last record of every partition (none for an empty partition)."""
    consumer = _consumer(bootstrap)
    try:
        tps = _partitions(consumer, topic)
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        begins = consumer.beginning_offsets(tps)
        starts = {tp: max(begins[tp], ends[tp] - 1) for tp in tps}
        return _read(consumer, topic, starts, ends, timeout)
    finally:
        consumer.close()


def records_since(
    topic: str, since_ms: int, bootstrap: str | None = None, timeout: float = 60.0
) -> list[Stored]:
    """Every record with a Kafka timestamp at or after ``since_ms``, up to the current end."""
    consumer = _consumer(bootstrap)
    try:
        tps = _partitions(consumer, topic)
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        found = consumer.offsets_for_times({tp: since_ms for tp in tps})
        starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}
        return _read(consumer, topic, starts, ends, timeout)
    finally:
        consumer.close()


# --- X ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XResume:
    """Search after ``since_id``; or, with none, from ``start_time`` (ISO, set by a first poll
    that was cut short); both None: nothing of X in the topic (the first poll uses the lookback)."""

    since_id: str | None = None
    start_time: str | None = None


def x_pagination_headers(
    since_id: str | None, start_time: str | None, newest_id: str | None, last_page: bool
) -> list[tuple[str, bytes]]:
    return [
        (H_SINCE_ID, (since_id or "").encode()),
        (H_START_TIME, (start_time or "").encode()),
        (H_NEWEST_ID, (newest_id or "").encode()),
        (H_LAST_PAGE, b"1" if last_page else b"0"),
    ]


def x_resume(stored: Iterable[Stored]) -> XResume:
    """Where X recent search resumes, from the last records of the partitions (pure)."""
    xs = [s for s in stored if s.tweet.platform == "x" and s.tweet.id.isdigit()]
    if not xs:
        return XResume()
    paged = [s for s in xs if s.header(H_NEWEST_ID).isdigit()]
    legacy = max_id([s.tweet.id for s in xs if s not in paged])
    if not paged:
        return XResume(since_id=legacy)
    latest = max(int(s.header(H_NEWEST_ID)) for s in paged)
    of_latest = [s for s in paged if int(s.header(H_NEWEST_ID)) == latest]
    if any(s.header(H_LAST_PAGE) == "1" for s in of_latest):
        since = max_id([str(latest), *([legacy] if legacy else [])])
        return XResume(since_id=since)
    # Cut short: search that pagination's range again.
    floor = of_latest[0]
    since_id = floor.header(H_SINCE_ID) or None
    start_time = floor.header(H_START_TIME) or None
    if legacy and (since_id is None or int(legacy) > int(since_id)) and start_time is None:
        since_id = legacy
    return XResume(since_id=since_id, start_time=None if since_id else start_time)


def newest_tweet_id(topic: str, bootstrap: str | None = None, timeout: float = 30.0) -> str | None:
    """Largest X post id among the last record of each partition; None for an empty topic."""
    return max_id(
        [s.tweet.id for s in last_records(topic, bootstrap, timeout) if s.tweet.id.isdigit()]
    )


# --- Bluesky ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlueskyResume:
    newest_us: int | None  # newest observed_at of a Bluesky post in the topic (µs)
    seen: tuple[str, ...] = ()  # dedup keys of the posts at or after the cursor


def observed_us(tweet: Tweet) -> int | None:
    at: datetime | None = tweet.observed_at
    return None if at is None else int(at.timestamp() * 1_000_000)


def bluesky_newest(stored: Iterable[Stored]) -> int | None:
    """Newest Jetstream time of a Bluesky post among ``stored`` (pure)."""
    times = [
        t
        for s in stored
        if s.tweet.platform == "bluesky" and (t := observed_us(s.tweet)) is not None
    ]
    return max(times) if times else None


def bluesky_seen(stored: Iterable[Stored], cursor_us: int) -> list[str]:
    """Dedup keys of the Bluesky posts observed at or after ``cursor_us`` (pure)."""
    keys = []
    for s in stored:
        t = observed_us(s.tweet)
        if s.tweet.platform == "bluesky" and t is not None and t >= cursor_us:
            keys.append(bluesky.dedup_key(s.tweet.id, s.header(bluesky.HEADER_REV) or None))
    return keys


# Kafka timestamps are our clock, observed_at is Jetstream's: read back generously around them.
CLOCK_SLACK_MS: Final = 10 * 60 * 1000
SCAN_HOURS: Final = 36  # Jetstream replays about a day: older posts cannot be resumed from anyway


def bluesky_resume(
    topic: str, margin_us: int, bootstrap: str | None = None, now: float | None = None
) -> BlueskyResume:
    """Newest Bluesky post in the topic and the posts from ``margin_us`` before it (Kafka I/O)."""
    newest = bluesky_newest(last_records(topic, bootstrap))
    if newest is None:
        # Another source wrote last (e.g. the feed switched from X): look further back.
        since = int(((now or time.time()) - SCAN_HOURS * 3600) * 1000)
        newest = bluesky_newest(records_since(topic, since, bootstrap))
        if newest is None:
            return BlueskyResume(None)
    cursor = newest - margin_us
    tail = records_since(topic, cursor // 1000 - CLOCK_SLACK_MS, bootstrap)
    return BlueskyResume(newest, tuple(bluesky_seen(tail, cursor)))
