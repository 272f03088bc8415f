"""The Bluesky producer as the operator runs it (a process configured by environment) against a
local Jetstream (a real WebSocket server speaking Jetstream's shapes) and the real Kafka cluster;
and liveness of a producer whose poll hangs."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from coinfeed.kafka import key_partition
from coinfeed.schemas import Tweet, decode_record
from coinfeed.topics import topic_name
from tests.integration.producers.helpers import ProducerProcess, create_topics, read_topic, wait_for
from tests.unit.producers.fake_jetstream import (
    FakeJetstream,
    identity_event,
    post_event,
    running,
)

SENT = "coinfeed_producer_records_total"
EVENTS = "coinfeed_producer_stream_events_total"


def new_coin() -> str:
    return "b" + uuid.uuid4().hex[:8]


def now_us() -> int:
    return int(time.time() * 1_000_000)


def bluesky_env(coin: str, bootstrap: str, *urls: str) -> dict[str, str]:
    return {
        "COINFEED_COIN": coin,
        "COINFEED_KAFKA_BOOTSTRAP": bootstrap,
        "COINFEED_TWEET_SOURCE": "bluesky",
        "COINFEED_TWEET_KEYWORDS": "bitcoin,$BTC",
        "COINFEED_TWEET_LANGUAGES": "en",
        "COINFEED_JETSTREAM_URLS": ",".join(urls),
        "COINFEED_LOG_LEVEL": "INFO",
    }


FAST = ["--backoff-base", "0.05", "--backoff-cap", "0.3", "--cursor-margin-seconds", "2"]


def events(start_us: int, n: int, matches: set[int], first: int = 0) -> list[dict[str, Any]]:
    """``n`` posts 2 ms apart from ``start_us``; those in ``matches`` mention $BTC."""
    return [
        post_event(
            i,
            start_us + i * 2000,
            f"$BTC breaking out {i}" if i in matches else f"my lunch today {i}",
            author=1 + i % 50,
        )
        for i in range(first, first + n)
    ]


def test_ten_thousand_events_one_hundred_matches_exactly_those_sent(
    kafka_cluster: Any, tmp_path: Path
) -> None:
    coin, bootstrap = new_coin(), kafka_cluster.bootstrap
    topic = topic_name(coin, "tweets")
    create_topics(bootstrap, topic)
    start = now_us() - 60_000_000  # the stream's last minute
    matches = set(range(37, 10_000, 100))
    a = FakeJetstream(disconnect_after=[4_000])  # drops us part-way: we go on at b
    b = FakeJetstream()
    for fake in (a, b):
        fake.add(identity_event(1, start - 1, "alice.example.com"))
        fake.add(*events(start, 10_000, matches))
        fake.add_raw('{"did": "did:plc:x", "time_us": 1, "kind": "comm', start + 21_000_000)
    with running(a, b):
        proc = ProducerProcess(
            "tweets", bluesky_env(coin, bootstrap, a.url, b.url), tmp_path / "p.log", FAST
        )
        try:
            wait_for(lambda: proc.metric(SENT) >= 100, 120, "100 posts acknowledged", proc)
            wait_for(lambda: proc.get("/readyz")[0] == 200, 30, "ready (connected)", proc)
            wait_for(
                lambda: (
                    proc.metric("coinfeed_producer_stream_dropped_total", reason="malformed_json")
                    >= 1
                ),
                60,
                "the malformed frame at the end of the stream",
                proc,
            )
            time.sleep(1.0)  # nothing more may arrive
            assert proc.metric(SENT) == 100
            assert proc.metric("coinfeed_producer_posts_matched_total") >= 100
            assert (
                proc.metric("coinfeed_producer_records_skipped_total", reason="malformed_json") >= 1
            )
            assert proc.metric(EVENTS, event="commit_create") >= 10_000
            assert proc.metric("coinfeed_producer_stream_reconnects_total") >= 1
            assert (
                30 < proc.metric("coinfeed_producer_stream_lag_seconds") < 3600
            )  # newest: 40 s ago
            assert proc.get("/healthz")[0] == 200
        finally:
            a.stop()
            b.stop()
            # Jetstream gone: not ready, with the reason
            wait_for(lambda: proc.get("/readyz")[0] == 503, 30, "not ready", proc)
            assert "not connected to Jetstream" in proc.get("/readyz")[1]
            assert proc.stop() == 0, proc.log_text()[-3000:]
    # the first connection asked for posts only, with a cursor one lookback (60 min) back
    assert a.requests[0]["wantedCollections"] == ["app.bsky.feed.post"]
    assert abs(int(a.requests[0]["cursor"][0]) - (now_us() - 3_600_000_000)) < 300_000_000
    msgs = read_topic(bootstrap, topic)
    posts = [decode_record(Tweet, m.value) for m in msgs]
    assert sorted(int(p.text.split()[-1]) for p in posts) == sorted(matches)
    for m, p in zip(msgs, posts, strict=True):
        assert (p.platform, p.schema_version, p.source) == ("bluesky", 2, "bluesky")
        assert m.key == p.id.encode() and p.id.startswith("at://did:plc:")
        assert m.partition == key_partition(m.key, 3)
        assert m.headers["schema_version"] == b"2" and m.headers["bluesky_rev"].startswith(b"3l")
    logs = proc.log_records()
    malformed = [
        r for r in logs if r.get("msg") == "skipped item" and r.get("reason") == "malformed_json"
    ]
    assert malformed, "a malformed frame is logged with its reason"


def test_restart_resumes_before_the_newest_post_without_gap_or_duplicate(
    kafka_cluster: Any, tmp_path: Path
) -> None:
    coin, bootstrap = new_coin(), kafka_cluster.bootstrap
    topic = topic_name(coin, "tweets")
    create_topics(bootstrap, topic)
    start = now_us() - 30_000_000
    matches = set(range(0, 3_000, 10))
    fake = FakeJetstream()
    fake.add(*events(start, 1_500, matches))
    with running(fake):
        first = ProducerProcess(
            "tweets", bluesky_env(coin, bootstrap, fake.url), tmp_path / "1.log", FAST
        )
        try:
            wait_for(lambda: first.metric(SENT) >= 150, 120, "first half sent", first)
        finally:
            first.kill()  # a crash: no flush, no goodbye
        in_topic = [decode_record(Tweet, m.value) for m in read_topic(bootstrap, topic)]
        newest = max(p.observed_at for p in in_topic if p.observed_at is not None)
        # posted while the producer was down
        fake.add(*events(start, 1_500, matches, first=1_500))
        second = ProducerProcess(
            "tweets", bluesky_env(coin, bootstrap, fake.url), tmp_path / "2.log", FAST
        )
        try:
            wait_for(lambda: len(read_topic(bootstrap, topic)) >= 300, 120, "all 300 posts", second)
            time.sleep(1.0)
            assert second.metric("coinfeed_producer_stream_dropped_total", reason="duplicate") >= 1
        finally:
            assert second.stop() == 0, second.log_text()[-3000:]
    # resumed two seconds (the margin) before the newest post already in the topic
    cursor = int(fake.requests[-1]["cursor"][0])
    assert cursor == int(newest.timestamp() * 1_000_000) - 2_000_000
    posts = [decode_record(Tweet, m.value) for m in read_topic(bootstrap, topic)]
    ids = [p.id for p in posts]
    assert len(ids) == len(set(ids)) == 300, "duplicates or gaps across the restart"
    assert sorted(int(p.text.split()[-1]) for p in posts) == sorted(matches)


def test_hung_poll_fails_liveness(kafka_cluster: Any, tmp_path: Path) -> None:
    """An X API that accepts the connection and never answers (tweepy sets no timeout): the
    loop hangs, and /healthz says so once the stall limit has passed."""
    coin, bootstrap = new_coin(), kafka_cluster.bootstrap
    create_topics(bootstrap, topic_name(coin, "tweets"))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])  # never read, never answered
            except TimeoutError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    env = {
        "COINFEED_COIN": coin,
        "COINFEED_KAFKA_BOOTSTRAP": bootstrap,
        "COINFEED_TWEET_SOURCE": "x-api",
        "COINFEED_X_API_BASE_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
        "COINFEED_X_BEARER_TOKEN": "AAAAAAAAAAAAAAAAAAAAAFakeTokenForLiveness",
        "COINFEED_POLL_INTERVAL_SECONDS": "1",
    }
    proc = ProducerProcess("tweets", env, tmp_path / "x.log", ["--liveness-stall-seconds", "3"])
    try:
        wait_for(lambda: proc.get("/healthz")[0] == 200, 60, "health endpoint", proc)
        wait_for(lambda: len(held) >= 1, 60, "the search request", proc)
        assert proc.get("/healthz")[0] == 200
        wait_for(lambda: proc.get("/healthz")[0] == 503, 30, "liveness failing", proc)
        assert "not alive: loop (work loop made no progress" in proc.get("/healthz")[1]
    finally:
        stop.set()
        proc.kill()
        for s in held:
            s.close()
        silent.close()


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_x_large_first_search_is_sent_page_by_page_in_bounded_rss(
    kafka_cluster: Any, tmp_path: Path, httpserver: Any
) -> None:
    """20,000 posts from the last hour (200 pages) reach Kafka while the producer's peak RSS
    grows by less than 30 MiB over its RSS before the search; holding every page's records (the
    old behaviour) alone takes ~40 MB (see the unit test)."""
    from tests.unit.producers.fakes import FakeX, x_tweet

    coin, bootstrap = new_coin(), kafka_cluster.bootstrap
    topic = topic_name(coin, "tweets")
    create_topics(bootstrap, topic)
    fake = FakeX().install(httpserver)
    env = {
        "COINFEED_COIN": coin,
        "COINFEED_KAFKA_BOOTSTRAP": bootstrap,
        "COINFEED_TWEET_SOURCE": "x-api",
        "COINFEED_X_API_BASE_URL": httpserver.url_for("/"),
        "COINFEED_X_BEARER_TOKEN": "AAAAAAAAAAAAAAAAAAAAAFakeTokenForPaging",
        "COINFEED_POLL_INTERVAL_SECONDS": "1",
        "COINFEED_X_MAX_PAGES": "1000",
    }
    proc = ProducerProcess("tweets", env, tmp_path / "x.log")
    try:
        wait_for(lambda: len(fake.requests) >= 2, 60, "empty searches", proc)
        before = _rss_kib(proc.proc.pid, "VmRSS")
        recent = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 600))
        text = "$BTC " + "lorem ipsum " * 20
        fake.add(
            *[x_tweet(10**15 + i, text=f"{text}{i}", created_at=recent) for i in range(20_000)]
        )
        wait_for(lambda: proc.metric(SENT) >= 20_000, 300, "20,000 posts acknowledged", proc)
        peak = _rss_kib(proc.proc.pid, "VmHWM")
    finally:
        assert proc.stop() == 0, proc.log_text()[-3000:]
    first = [r for r in fake.requests if "since_id" not in r]
    assert first and all(r["start_time"] for r in first)  # the lookback bound, not 7 days
    print(f"X paging: RSS {before / 1024:.0f} MiB before, peak {peak / 1024:.0f} MiB")
    assert (peak - before) / 1024 < 30, f"peak RSS grew by {(peak - before) / 1024:.1f} MiB"
    ids = {decode_record(Tweet, m.value).id for m in read_topic(bootstrap, topic)}
    assert len(ids) == 20_000
