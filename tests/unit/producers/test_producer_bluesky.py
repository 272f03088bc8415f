"""Bluesky via Jetstream: the pure frame logic, and the source against a local WebSocket server
speaking Jetstream's documented shapes (malformed frames, server-side disconnects, a stalled
stream, a slow consumer)."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime

import pytest

from coinfeed.producers import batch as b
from coinfeed.producers import bluesky
from coinfeed.producers.batch import Batch
from coinfeed.producers.jetstream import JetstreamSource, RecentKeys, subscribe_url
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.retry import RetryPolicy
from tests.unit.producers.fake_jetstream import (
    T0_US,
    FakeJetstream,
    account_event,
    did,
    identity_event,
    post_event,
    running,
)

FAST = RetryPolicy(base=0.01, cap=0.05, max_wait=2.0, max_attempts=5)
MATCHER = bluesky.Matcher.build(["$BTC", "bitcoin"], ["BTC"], ["en"])


def classify(event: dict[str, object], handles: bluesky.Handles | None = None) -> bluesky.Outcome:
    data, bad = bluesky.decode_frame(json.dumps(event))
    assert data is not None and bad is None
    return bluesky.classify(
        "btc", data, MATCHER, handles if handles is not None else bluesky.Handles()
    )


# --- pure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("$BTC breaking out", True),
        ("buying more $btc today", True),
        ("#Bitcoin is up", True),
        ("Bitcoin.", True),
        ("the bitcoiners are loud", False),  # whole words only
        ("$BTCX is a different coin", False),
        ("price of BTC", False),  # neither the keyword bitcoin nor the cashtag $BTC
        ("ethereum only", False),
    ],
)
def test_matcher_keywords_and_cashtags(text: str, hit: bool) -> None:
    assert MATCHER.text_matches(text) is hit


def test_matcher_phrases_and_languages() -> None:
    m = bluesky.Matcher.build(["digital gold"], [], ["en", "pt"])
    assert m.text_matches("it is  Digital\nGold after all")
    assert not m.text_matches("digital golden")
    assert m.language_ok(["en-US"]) and m.language_ok(["ja", "pt-BR"])
    assert not m.language_ok(["ja"]) and not m.language_ok(None) and not m.language_ok([])
    assert bluesky.Matcher.build(["x"], [], []).language_ok(None)  # no languages: any
    with pytest.raises(ValueError, match="at least one keyword"):
        bluesky.Matcher.build([" "], [], [])


def test_matching_post_becomes_a_v2_record_with_uri_did_handle_tags() -> None:
    handles = bluesky.Handles()
    assert classify(identity_event(7, T0_US, "alice.example.com"), handles).event == "identity"
    out = classify(
        post_event(1, T0_US + 5, "$BTC looks great #Bitcoin #hodl", author=7, tags=["crypto"]),
        handles,
    )
    assert (out.event, out.drop, out.skip) == ("commit_create", None, None)
    rec = out.record
    assert rec is not None
    assert rec.id == f"at://{did(7)}/app.bsky.feed.post/3k00000000001"
    assert (rec.platform, rec.source, rec.schema_version, rec.coin) == (
        "bluesky",
        "bluesky",
        2,
        "btc",
    )
    assert (rec.author_id, rec.author_username, rec.lang) == (did(7), "alice.example.com", "en")
    assert rec.hashtags == ["Bitcoin", "hodl", "crypto"] and rec.cashtags == ["BTC"]
    assert rec.created_at == datetime(2025, 3, 3, 11, 6, 40, tzinfo=UTC)
    assert rec.observed_at == datetime.fromtimestamp((T0_US + 5) / 1e6, UTC)
    assert out.headers == [("bluesky_rev", b"3l00000000001")]


def test_event_kinds_are_handled_or_ignored() -> None:
    handles = bluesky.Handles()
    classify(identity_event(7, T0_US, "alice.example.com"), handles)
    assert classify(account_event(7, T0_US + 1, active=False), handles).event == "account"
    assert handles.get(did(7)) is None  # an inactive account's handle is forgotten
    update = classify(post_event(2, T0_US + 2, "bitcoin again", op="update"))
    assert update.event == "commit_update" and update.record is not None
    delete = classify(post_event(3, T0_US + 3, "", op="delete"))
    assert (delete.event, delete.record, delete.drop) == ("commit_delete", None, None)
    like = classify(post_event(4, T0_US + 4, "bitcoin", collection="app.bsky.feed.like"))
    assert (like.event, like.record) == ("ignored", None)
    assert classify({"did": did(1), "time_us": T0_US, "kind": "sync"}).event == "ignored"
    assert classify(post_event(5, T0_US, "nothing here")).drop == bluesky.NO_MATCH
    assert classify(post_event(6, T0_US, "bitcoin", langs=["ja"])).drop == bluesky.LANGUAGE


@pytest.mark.parametrize(
    ("frame", "reason", "words"),
    [
        ('{"did": "did:plc:x", "time_us": 12', b.MALFORMED_JSON, "malformed JSON"),
        ("[1, 2]", b.UNEXPECTED_SHAPE, "not an object"),
        ('{"did": "did:plc:x", "kind": "commit"}', b.MISSING_FIELD, "without time_us"),
        ('{"did": "did:plc:x", "time_us": "soon", "kind": "commit"}', b.INVALID_FIELD, "time_us"),
        (
            '{"did": "did:plc:x", "time_us": 5, "kind": "commit", "commit": 3}',
            b.UNEXPECTED_SHAPE,
            "commit",
        ),
        ('{"did": "did:plc:x", "time_us": 5, "kind": "identity"}', b.UNEXPECTED_SHAPE, "identity"),
        ('{"did": 4, "time_us": 5, "kind": "commit"}', b.INVALID_FIELD, "did"),
    ],
)
def test_malformed_frames_have_a_reason(frame: str, reason: str, words: str) -> None:
    data, bad = bluesky.decode_frame(frame)
    out = bad or bluesky.classify("btc", data or {}, MATCHER, bluesky.Handles())
    assert out.event == "malformed" and out.skip is not None
    assert out.skip.reason == reason and words in out.skip.detail


def test_bad_post_fields_are_skips_naming_the_field() -> None:
    out = classify(post_event(1, T0_US, "bitcoin", created_at="2025-03-03 11:00"))
    assert out.skip is not None and out.skip.reason == b.INVALID_FIELD
    assert "createdAt" in out.skip.detail and "at://" in out.skip.detail
    no_time = post_event(2, T0_US, "bitcoin")
    del no_time["commit"]["record"]["createdAt"]  # type: ignore[index]
    out = classify(no_time)
    assert out.skip is not None and out.skip.reason == b.MISSING_FIELD


def test_subscribe_url_and_recent_keys() -> None:
    url = subscribe_url("wss://jetstream2.us-east.bsky.network", 1725911162329308)
    assert url.startswith("wss://jetstream2.us-east.bsky.network/subscribe?")
    assert "wantedCollections=app.bsky.feed.post" in url and "cursor=1725911162329308" in url
    assert subscribe_url("ws://127.0.0.1:9/subscribe", 1).startswith("ws://127.0.0.1:9/subscribe?")
    with pytest.raises(ValueError, match="wss://host"):
        subscribe_url("https://example.com", 1)
    keys = RecentKeys(window_us=100)
    keys.add("a", 1_000)
    keys.add("b", 1_050)
    keys.add("c", 1_200)  # a falls out of the window (b too: 1050 < 1100)
    assert not keys.seen("a") and not keys.seen("b") and keys.seen("c") and len(keys) == 1


# --- the source against a local Jetstream ----------------------------------------------------


def metrics() -> ProducerMetrics:
    return ProducerMetrics("btc", "tweets", "bluesky")


def value(m: ProducerMetrics, name: str, **labels: str) -> float:
    v = m.registry.get_sample_value(
        name, {"coin": "btc", "kind": "tweets", "source": "bluesky", **labels}
    )
    return v or 0.0


def source(urls: list[str], m: ProducerMetrics, **kw: float) -> JetstreamSource:
    src = JetstreamSource(
        "btc",
        urls,
        MATCHER,
        m,
        FAST,
        batch_seconds=0.2,
        cursor_margin_s=1.0,
        **kw,  # type: ignore[arg-type]
    )
    src.start_from(T0_US - 1_000_000)
    return src


def drain(src: JetstreamSource, until: int, timeout: float = 20.0) -> Batch:
    """Poll (sleeping the source's waits) until ``until`` records arrived or time runs out."""
    out = Batch()
    deadline = time.monotonic() + timeout
    while len(out.records) < until and time.monotonic() < deadline:
        out.extend(src.poll())
        time.sleep(src.next_wait())
    return out


def stream(n: int, every: int, step_us: int = 1000) -> list[dict[str, object]]:
    """``n`` posts, every ``every``-th about bitcoin."""
    return [
        post_event(i, T0_US + i * step_us, "bitcoin is moving" if i % every == 0 else f"lunch {i}")
        for i in range(n)
    ]


def test_stream_sends_exactly_the_matching_posts_and_counts_everything() -> None:
    fake = FakeJetstream()
    fake.add(identity_event(1, T0_US - 10, "bob.example.com"))
    fake.add(*stream(200, every=10))
    fake.add_raw('{"did": "did:plc:x", "time_us": ', T0_US + 201_000)
    fake.add_raw("[]", T0_US + 202_000)
    fake.add(post_event(300, T0_US + 203_000, "bitcoin deleted", op="delete"))
    fake.add(account_event(2, T0_US + 204_000, active=True))
    m = metrics()
    with running(fake):
        src = source([fake.url], m)
        assert not src.ready() and "not connected" in src.not_ready_reason()
        out = drain(src, until=20)
        deadline = time.monotonic() + 10
        while fake.sent < 204 and time.monotonic() < deadline:
            out.extend(src.poll())
        assert src.ready() and src.not_ready_reason() == ""
    assert sorted(r.id.rsplit("/", 1)[1] for r in out.records) == [
        f"3k{i:011d}" for i in range(0, 200, 10)
    ]
    assert all(r.author_username == "bob.example.com" for r in out.records)
    assert [s.reason for s in out.skips] == [b.MALFORMED_JSON, b.UNEXPECTED_SHAPE]
    assert len(out.headers) == len(out.records)
    (query,) = fake.requests
    assert query["wantedCollections"] == ["app.bsky.feed.post"]
    assert query["cursor"] == [str(T0_US - 1_000_000)]
    assert "permessage-deflate" in fake.extensions[0]  # compressed on the wire
    assert value(m, "coinfeed_producer_stream_events_total", event="commit_create") == 200
    assert value(m, "coinfeed_producer_stream_events_total", event="commit_delete") == 1
    assert value(m, "coinfeed_producer_stream_events_total", event="identity") == 1
    assert value(m, "coinfeed_producer_stream_events_total", event="account") == 1
    assert value(m, "coinfeed_producer_stream_events_total", event="malformed") == 2
    assert value(m, "coinfeed_producer_posts_matched_total") == 20
    assert value(m, "coinfeed_producer_stream_dropped_total", reason="no_match") == 180
    assert value(m, "coinfeed_producer_stream_dropped_total", reason="malformed_json") == 1
    lag = value(m, "coinfeed_producer_stream_lag_seconds")
    assert lag == pytest.approx(time.time() - (T0_US + 204_000) / 1e6, abs=30)


def test_server_disconnect_reconnects_to_the_next_endpoint_at_the_cursor() -> None:
    a, b_ = FakeJetstream(disconnect_after=[60]), FakeJetstream()
    events = stream(150, every=5)
    a.add(*events)
    b_.add(*events)
    m = metrics()
    with running(a, b_):
        src = source([a.url, b_.url], m)
        out = drain(src, until=30)
    ids = [r.id for r in out.records]
    assert len(ids) == 30 and len(set(ids)) == 30  # all of them, none twice
    assert len(a.requests) == 1 and len(b_.requests) == 1  # rotated to the second endpoint
    # resumed one margin (1 s) before the newest event handed on (event 59 of the first server)
    assert int(b_.requests[0]["cursor"][0]) == T0_US + 59 * 1000 - 1_000_000
    assert (
        value(m, "coinfeed_producer_stream_reconnects_total", reason="connection_error")
        + value(m, "coinfeed_producer_stream_reconnects_total", reason="server_closed")
        == 1
    )
    assert value(m, "coinfeed_producer_stream_dropped_total", reason="duplicate") == 12  # 60 // 5


def test_stalled_stream_is_dropped_and_reopened() -> None:
    fake = FakeJetstream(stall=True)
    m = metrics()
    with running(fake):
        src = source([fake.url], m, stall_seconds=0.5)
        deadline = time.monotonic() + 10
        while value(m, "coinfeed_producer_stream_reconnects_total", reason="stalled") < 1:
            assert time.monotonic() < deadline
            src.poll()
            time.sleep(src.next_wait())
        assert not src.ready() and "stalled" in src.not_ready_reason()
        src.poll()
        assert len(fake.requests) == 2 and src.ready()


def test_unreachable_endpoint_backs_off_and_is_not_ready() -> None:
    fake = FakeJetstream().start()
    url = fake.url
    fake.stop()  # nothing listens there now
    m = metrics()
    src = source([url], m)
    for _ in range(3):
        assert src.poll().records == []
        assert 0 <= src.next_wait() <= FAST.cap
    assert not src.ready() and "connect_failed" in src.not_ready_reason()
    assert value(m, "coinfeed_producer_stream_reconnects_total", reason="connect_failed") == 3


def test_slow_consumer_is_dropped_by_the_server_and_catches_up_without_loss() -> None:
    """Jetstream drops a reader that falls behind; we reconnect at the cursor and lose nothing.
    Our side holds at most ``max_queue`` frames however far behind it is."""
    fake = FakeJetstream(slow_send_timeout=0.3)
    rng = random.Random(7)  # incompressible padding: frames are deflated on the wire
    events = [
        post_event(
            i,
            T0_US + i * 1000,
            ("bitcoin " if i % 50 == 0 else "lunch ") + rng.randbytes(1500).hex(),
        )
        for i in range(3000)
    ]
    fake.add(*events)
    m = metrics()
    with running(fake):
        src = JetstreamSource(
            "btc",
            [fake.url],
            MATCHER,
            m,
            FAST,
            batch_seconds=0.05,
            max_batch=20,
            max_queue=4,
            cursor_margin_s=0.5,
        )
        src.start_from(T0_US - 1)
        out = Batch()
        deadline = time.monotonic() + 60
        while len(out.records) < 60 and time.monotonic() < deadline:
            out.extend(src.poll())
            if len(fake.requests) < 2:
                # Stalled longer than the server's send timeout while its socket is full, until
                # the server drops us: then catch up at full speed.
                time.sleep(1.0)
            time.sleep(src.next_wait())
    ids = [r.id for r in out.records]
    assert len(ids) == 60 and len(set(ids)) == 60
    assert len(fake.requests) >= 2, "the server never dropped the slow reader"
