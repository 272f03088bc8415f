"""The replay sample: which files feed which producer, the complete hours they cover, and a
shortened copy for ``--hours N``. Deciding is pure; reading and writing files is kept to a few
small functions."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from coinfeed.schemas import format_ts
from coinfeed.topics import TopicKind

HOUR: Final = timedelta(hours=1)
# Ticks come once a minute: a first tick within an hour's first minute, or a last one within its
# final minute, still covers that hour.
EDGE_SLACK: Final = timedelta(minutes=1)
TIME_FIELD: Final[dict[str, str]] = {"prices": "ts", "tweets": "created_at"}


class SampleError(ValueError):
    """The sample is missing or unusable; the message names the file or coin."""


@dataclass(frozen=True)
class ReplayFile:
    coin: str
    kind: TopicKind
    path: Path
    platform: str | None = None  # social posts: x or bluesky (both go to the tweets topic)

    @property
    def stream(self) -> str:
        """``prices``, ``tweets`` (X) or ``bluesky``: names the replay copy and its producer."""
        return "bluesky" if self.platform == "bluesky" else self.kind


PLATFORMS: Final = ("x", "bluesky")


def _wanted(coin: str, kind: str, platform: str | None) -> tuple[str, Callable[[str], bool]]:
    """What a file of this stream is called (for messages) and how its name is recognised:
    ``<coin>*prices*``, ``<coin>*tweets*`` (X posts) and ``<coin>*bluesky*`` (Bluesky posts)."""
    if kind == "prices":
        return "prices (<coin>*prices*.jsonl[.gz])", lambda n: "prices" in n
    if platform == "bluesky":
        return "bluesky posts (<coin>*bluesky*.jsonl[.gz])", lambda n: "bluesky" in n
    return (
        "tweets (X posts, <coin>*tweets*.jsonl[.gz])",
        lambda n: "tweets" in n and "bluesky" not in n,
    )


def find_sample_files(
    sample_dir: Path, coins: Iterable[str], platforms: Iterable[str] = PLATFORMS
) -> list[ReplayFile]:
    """One JSON-lines file per coin and stream anywhere below ``sample_dir``: prices, and the
    social posts of each of ``platforms`` (e.g. ``samples/btc-prices.jsonl.gz``,
    ``btc-tweets.jsonl.gz`` for X, ``btc-bluesky-posts.jsonl.gz`` for Bluesky)."""
    if not sample_dir.is_dir():
        raise SampleError(f"no sample folder {sample_dir}")
    platforms = list(platforms)
    unknown = [p for p in platforms if p not in PLATFORMS]
    if unknown:
        raise SampleError(f"unknown platform(s) {unknown}: choose from {list(PLATFORMS)}")
    files = sorted(p for p in sample_dir.rglob("*") if p.is_file() and ".jsonl" in p.name)
    streams: list[tuple[TopicKind, str | None]] = [("prices", None)]
    streams += [("tweets", p) for p in PLATFORMS if p in platforms]
    found = []
    for coin in coins:
        for kind, platform in streams:
            label, recognise = _wanted(coin, kind, platform)
            matches = [p for p in files if p.name.startswith(coin) and recognise(p.name)]
            if len(matches) != 1:
                what = (
                    "no"
                    if not matches
                    else f"{len(matches)} ({', '.join(p.name for p in matches)})"
                )
                raise SampleError(
                    f"expected one {coin} {label} replay file in {sample_dir}, found {what}"
                )
            found.append(ReplayFile(coin, kind, matches[0], platform))
    return found


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for line in fh:
            if line.strip():
                yield line


def event_time(kind: str, line: bytes) -> datetime | None:
    """The record's event time, or None for a line that is not a record with a UTC time (the
    producer skips and counts those; the demo passes them through untouched)."""
    try:
        value = json.loads(line)[TIME_FIELD[kind]]
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return None
    return ts.astimezone(UTC) if ts.tzinfo else None


def span(f: ReplayFile) -> tuple[datetime, datetime, int]:
    """First and last event time and the number of lines of one file."""
    first: datetime | None = None
    last: datetime | None = None
    n = 0
    for line in _lines(f.path):
        n += 1
        t = event_time(f.kind, line)
        if t is not None:
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
    if first is None or last is None:
        raise SampleError(f"{f.path}: no record with a valid event time")
    return first, last, n


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def ceil_hour(t: datetime) -> datetime:
    f = floor_hour(t)
    return f if f == t else f + HOUR


@dataclass(frozen=True)
class Window:
    """The complete hours ``[start, end)`` the demo aggregates."""

    start: datetime
    end: datetime

    @property
    def hours(self) -> int:
        return int((self.end - self.start) / HOUR)

    def hour_starts(self) -> list[datetime]:
        return [self.start + i * HOUR for i in range(self.hours)]


def complete_hours(spans: Iterable[tuple[datetime, datetime]], limit: int | None = None) -> Window:
    """The whole hours every span's data covers from the earliest record on, at most ``limit``."""
    spans = list(spans)
    if not spans:
        raise SampleError("no replay files")
    start = ceil_hour(min(s for s, _ in spans) - EDGE_SLACK)
    end = floor_hour(max(e for _, e in spans) + EDGE_SLACK)
    if limit is not None:
        if limit < 1:
            raise SampleError(f"--hours must be at least 1, got {limit}")
        end = min(end, start + limit * HOUR)
    if end <= start:
        raise SampleError(f"the sample covers no complete hour (from {start:%Y-%m-%d %H:%M}Z)")
    return Window(start, end)


def live_shift(window: Window, now: datetime) -> timedelta:
    """Whole hours that move ``window`` to end at the start of the current hour.

    Kafka deletes records older than the topics' retention (24 h) by their timestamps, and the
    demo stamps records with their event time, so an old sample is replayed as the latest hours.
    Whole hours keep every record in the same minute of its hour.
    """
    return floor_hour(now.astimezone(UTC)) - window.end


def _shifted(kind: str, line: bytes, shift: timedelta) -> bytes:
    if not shift:
        return line
    record = json.loads(line)
    field = TIME_FIELD[kind]
    t = datetime.fromisoformat(str(record[field]).replace("Z", "+00:00")).astimezone(UTC)
    record[field] = format_ts(t + shift)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def shorten(f: ReplayFile, window: Window, dest: Path, shift: timedelta = timedelta(0)) -> int:
    """Copy the lines of ``f`` inside ``window`` to ``dest``, event times moved by ``shift``.

    Lines without a valid time are copied untouched: the producer must see them to skip and
    count them. Returns the lines written.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with dest.open("wb") as out:
        for line in _lines(f.path):
            t = event_time(f.kind, line)
            if t is None:
                out.write(line.rstrip(b"\r\n") + b"\n")
                n += 1
            elif window.start <= t < window.end:
                out.write(_shifted(f.kind, line, shift).rstrip(b"\r\n") + b"\n")
                n += 1
    return n
