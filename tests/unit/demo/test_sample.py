"""The demo's sample windowing: complete hours, the shortened copy, the move to the latest hours."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coinfeed.demo import sample
from coinfeed.schemas import PriceTick, Tweet, decode_record

T0 = datetime(2025, 3, 3, tzinfo=UTC)


def tick(minute: int) -> bytes:
    t = PriceTick(
        coin="btc",
        source="replay",
        pair="BTC/USDT",
        ts=T0 + timedelta(minutes=minute),
        price=100.0 + minute,
    )
    return t.to_json() + b"\n"


def tweet(second: int, tid: int) -> bytes:
    t = Tweet(
        coin="btc",
        id=str(tid),
        created_at=T0 + timedelta(seconds=second),
        text="hi $BTC",
        author_id="1",
    )
    return t.to_json() + b"\n"


def write_gz(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb") as fh:
        fh.writelines(lines)
    return path


def test_complete_hours_allow_a_minute_of_slack_at_both_edges() -> None:
    # ticks at the end of each minute: 00:01 .. 48:00, as the shipped sample has them
    w = sample.complete_hours([(T0 + timedelta(minutes=1), T0 + timedelta(hours=48))])
    assert (w.start, w.end, w.hours) == (T0, T0 + timedelta(hours=48), 48)
    # a first record half way into the first hour: that hour is incomplete
    w = sample.complete_hours([(T0 + timedelta(minutes=30), T0 + timedelta(hours=5, minutes=10))])
    assert (w.start, w.end) == (T0 + timedelta(hours=1), T0 + timedelta(hours=5))
    assert sample.complete_hours([(T0, T0 + timedelta(hours=48))], limit=3).hour_starts() == [
        T0,
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=2),
    ]


def test_no_complete_hour_and_bad_limit_are_errors() -> None:
    with pytest.raises(sample.SampleError, match="no complete hour"):
        sample.complete_hours([(T0 + timedelta(minutes=10), T0 + timedelta(minutes=50))])
    with pytest.raises(sample.SampleError, match="at least 1"):
        sample.complete_hours([(T0, T0 + timedelta(hours=4))], limit=0)


def test_live_shift_is_whole_hours_ending_at_the_current_hour() -> None:
    w = sample.Window(T0, T0 + timedelta(hours=2))
    now = datetime(2026, 1, 2, 10, 42, 7, tzinfo=UTC)
    shift = sample.live_shift(w, now)
    assert w.end + shift == datetime(2026, 1, 2, 10, tzinfo=UTC)
    assert shift % timedelta(hours=1) == timedelta(0)


def test_find_sample_files_names_what_is_missing(tmp_path: Path) -> None:
    for name in ("btc-prices.jsonl.gz", "btc-tweets.jsonl.gz", "eth-prices.jsonl.gz"):
        write_gz(tmp_path / name, [])
    found = sample.find_sample_files(tmp_path, ["btc"], platforms=["x"])
    assert [(f.coin, f.kind, f.path.name) for f in found] == [
        ("btc", "prices", "btc-prices.jsonl.gz"),
        ("btc", "tweets", "btc-tweets.jsonl.gz"),
    ]
    with pytest.raises(sample.SampleError, match="eth tweets"):
        sample.find_sample_files(tmp_path, ["btc", "eth"], platforms=["x"])
    with pytest.raises(sample.SampleError, match="btc bluesky posts"):
        sample.find_sample_files(tmp_path, ["btc"])  # both platforms by default


def test_find_sample_files_per_platform(tmp_path: Path) -> None:
    names = ("btc-prices.jsonl.gz", "btc-tweets.jsonl.gz", "btc-bluesky-posts.jsonl.gz")
    for name in names:
        write_gz(tmp_path / name, [])
    both = sample.find_sample_files(tmp_path, ["btc"])
    assert [(f.kind, f.platform, f.stream, f.path.name) for f in both] == [
        ("prices", None, "prices", "btc-prices.jsonl.gz"),
        ("tweets", "x", "tweets", "btc-tweets.jsonl.gz"),
        ("tweets", "bluesky", "bluesky", "btc-bluesky-posts.jsonl.gz"),
    ]
    only = sample.find_sample_files(tmp_path, ["btc"], platforms=["bluesky"])
    assert [f.path.name for f in only] == ["btc-prices.jsonl.gz", "btc-bluesky-posts.jsonl.gz"]
    with pytest.raises(sample.SampleError, match="unknown platform"):
        sample.find_sample_files(tmp_path, ["btc"], platforms=["mastodon"])


def test_span_and_shorten_keep_the_window_move_times_and_pass_bad_lines(tmp_path: Path) -> None:
    bad = b'{"schema_version":1,"coin":"btc","ts":"not a time"}\n'
    src = write_gz(tmp_path / "btc-prices.jsonl.gz", [tick(m) for m in range(1, 181)] + [bad])
    f = sample.ReplayFile("btc", "prices", src)
    first, last, n = sample.span(f)
    assert (first, last, n) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=180), 181)
    window = sample.Window(T0, T0 + timedelta(hours=2))
    shift = timedelta(hours=5)
    dest = tmp_path / "out" / "btc-prices.jsonl"
    written = sample.shorten(f, window, dest, shift)
    lines = dest.read_bytes().splitlines(keepends=True)
    assert written == len(lines) == 119 + 1  # 00:01..01:59, and the bad line for the producer
    assert bad in lines
    records = [decode_record(PriceTick, line) for line in lines if line != bad]
    assert records[0].ts == T0 + timedelta(hours=5, minutes=1)
    assert records[-1].ts == T0 + timedelta(hours=6, minutes=59)
    assert records[0].price == 101.0  # nothing but the time changed
    assert json.loads(lines[0])["ts"] == "2025-03-03T05:01:00.000Z"


def test_shorten_tweets_moves_created_at(tmp_path: Path) -> None:
    src = tmp_path / "btc-tweets.jsonl"
    src.write_bytes(tweet(30, 1) + tweet(3600 * 3, 2))
    f = sample.ReplayFile("btc", "tweets", src)
    dest = tmp_path / "copy.jsonl"
    assert (
        sample.shorten(f, sample.Window(T0, T0 + timedelta(hours=1)), dest, timedelta(hours=1)) == 1
    )
    (only,) = dest.read_bytes().splitlines()
    assert decode_record(Tweet, only).created_at == T0 + timedelta(hours=1, seconds=30)
