"""Resume decisions from what is in the topic (pure), and liveness of the work loop."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime

from coinfeed.metrics import HealthServer, new_registry
from coinfeed.producers import bluesky
from coinfeed.producers.liveness import LoopWatchdog, stall_limit
from coinfeed.producers.resume import (
    Stored,
    XResume,
    bluesky_newest,
    bluesky_seen,
    x_pagination_headers,
    x_resume,
)
from coinfeed.schemas import Tweet

T = datetime(2025, 3, 3, tzinfo=UTC)


def x(
    tid: int,
    since: str | None = None,
    start: str | None = None,
    newest: int | None = None,
    last: bool = False,
) -> Stored:
    tweet = Tweet(coin="btc", id=str(tid), created_at=T, text="$BTC", author_id="1")
    headers = {} if newest is None else dict(x_pagination_headers(since, start, str(newest), last))
    return Stored(tweet, headers)


def bsky(rkey: str, observed_us: int, rev: str) -> Stored:
    did = "did:plc:abcdefghijklmnopqrstuvwx"
    tweet = Tweet(
        platform="bluesky",
        coin="btc",
        id=f"at://{did}/app.bsky.feed.post/{rkey}",
        created_at=T,
        text="$BTC",
        author_id=did,
        observed_at=datetime.fromtimestamp(observed_us / 1e6, UTC),
    )
    return Stored(tweet, {bluesky.HEADER_REV: rev.encode()})


def test_x_resume_after_a_complete_search() -> None:
    # the last page (oldest records of the search) reached Kafka: resume after its newest id
    stored = [
        x(150, since="100", newest=190, last=False),
        x(101, since="100", newest=190, last=True),
    ]
    assert x_resume(stored) == XResume(since_id="190")


def test_x_resume_repeats_a_search_cut_short() -> None:
    # only the newest pages arrived: search the same range again (no gap; duplicates are dropped
    # by the hourly job)
    stored = [
        x(190, since="100", newest=190),
        x(170, since="100", newest=190),
        x(99, since="50", newest=100, last=True),
    ]
    assert x_resume(stored) == XResume(since_id="100")
    # a first search (start_time, no since_id) cut short is repeated from the same start_time
    first = [x(190, start="2025-03-03T00:00:00Z", newest=190)]
    assert x_resume(first) == XResume(since_id=None, start_time="2025-03-03T00:00:00Z")


def test_x_resume_without_pagination_headers_and_with_other_platforms() -> None:
    assert x_resume([x(5), x(12), x(9)]) == XResume(since_id="12")  # records from before paging
    assert x_resume([bsky("3k1", 1, "r")]) == XResume()  # no X post: the lookback applies
    assert x_resume([]) == XResume()


def test_bluesky_newest_and_seen_keys() -> None:
    stored = [bsky("3ka", 1_000_000, "r1"), bsky("3kb", 5_000_000, "r2"), x(7)]
    assert bluesky_newest(stored) == 5_000_000
    assert bluesky_newest([x(7)]) is None
    keys = bluesky_seen(stored, cursor_us=2_000_000)
    assert keys == [bluesky.dedup_key(stored[1].tweet.id, "r2")]


def test_watchdog_planned_waits_are_not_hangs() -> None:
    now = [0.0]
    dog = LoopWatchdog(stall_seconds=60, clock=lambda: now[0])
    assert dog.alive()
    now[0] = 59
    assert dog.alive()
    now[0] = 61
    assert not dog.alive() and "no progress for 61 s" in dog.detail()
    dog.beat(900)  # about to sleep until a rate-limit reset
    now[0] = 61 + 900 + 59
    assert dog.alive()
    now[0] = 61 + 900 + 61
    assert not dog.alive()
    assert stall_limit(10) == 60 and stall_limit(60) == 180


def test_healthz_answers_503_when_the_loop_hangs() -> None:
    now = [0.0]
    dog = LoopWatchdog(stall_seconds=30, clock=lambda: now[0])
    health = HealthServer(new_registry(), 0, "127.0.0.1")
    health.add_liveness("loop", dog.alive, dog.detail)
    health.add_check("source", lambda: False, lambda: "binance answers HTTP 451")
    health.start()

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    try:
        assert get("/healthz") == (200, "ok\n")
        now[0] = 31
        status, body = get("/healthz")
        assert status == 503 and body.startswith("not alive: loop (work loop made no progress")
        dog.beat()
        assert get("/healthz")[0] == 200
        assert get("/readyz") == (503, "not ready: source (binance answers HTTP 451)\n")
    finally:
        health.stop()
