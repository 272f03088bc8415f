"""X API v2 filtered stream through tweepy's StreamingClient, against a local streaming server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from coinfeed.producers import batch as b
from coinfeed.producers.batch import Batch
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.xapi import XStreamSource, stream_rule_changes
from tests.unit.producers.fakes import x_tweet, x_user

TOKEN = "AAAAAAAAAAAAAAAAAAAAAFakeStreamToken77"
QUERY = "(bitcoin OR $BTC) lang:en -is:retweet"


def test_rule_changes_touch_only_our_rule() -> None:
    tag = "coinfeed:btc"
    others = [{"id": "1", "value": "dogs", "tag": "someone-else"}]
    assert stream_rule_changes(others, QUERY, tag) == ([], True)
    same = [*others, {"id": "2", "value": QUERY, "tag": tag}]
    assert stream_rule_changes(same, QUERY, tag) == ([], False)
    old = [*others, {"id": "3", "value": "btc", "tag": tag}]
    assert stream_rule_changes(old, QUERY, tag) == (["3"], True)


class FakeStream:
    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = [
            {"id": "9", "value": "old query", "tag": "coinfeed:btc"}
        ]
        self.rule_posts: list[dict[str, Any]] = []
        self.stream_params: list[dict[str, str]] = []
        self.auth: list[str] = []

    def install(self, server: HTTPServer) -> None:
        server.expect_request("/2/tweets/search/stream/rules", method="GET").respond_with_handler(
            self.get_rules
        )
        server.expect_request("/2/tweets/search/stream/rules", method="POST").respond_with_handler(
            self.post_rules
        )
        server.expect_request("/2/tweets/search/stream", method="GET").respond_with_handler(
            self.stream
        )

    def get_rules(self, request: Request) -> Response:
        body = {
            "data": self.rules,
            "meta": {"sent": "2025-03-03T00:00:00.000Z", "result_count": len(self.rules)},
        }
        return Response(json.dumps(body), content_type="application/json")

    def post_rules(self, request: Request) -> Response:
        body = json.loads(request.data)
        self.rule_posts.append(body)
        if "delete" in body:
            ids = set(body["delete"]["ids"])
            self.rules = [r for r in self.rules if r["id"] not in ids]
            return Response(
                json.dumps({"meta": {"summary": {"deleted": len(ids)}}}),
                content_type="application/json",
            )
        added = [{**r, "id": str(100 + i)} for i, r in enumerate(body["add"])]
        self.rules += added
        return Response(
            json.dumps({"data": added, "meta": {"summary": {"created": len(added)}}}),
            content_type="application/json",
        )

    def stream(self, request: Request) -> Response:
        self.stream_params.append(dict(request.args))
        self.auth.append(request.headers.get("Authorization", ""))

        def lines() -> Iterator[bytes]:
            for tid in (501, 502):
                msg = {
                    "data": x_tweet(tid),
                    "includes": {"users": [x_user(1)]},
                    "matching_rules": [{"id": "100", "tag": "coinfeed:btc"}],
                }
                yield json.dumps(msg).encode() + b"\r\n"
            yield b"\r\n"  # keep-alive
            yield b'{"data": {"id": "503", "text": "trunc\r\n'
            yield json.dumps({"data": x_tweet(504)}).encode() + b"\r\n"
            for _ in range(25):  # hold the connection open with keep-alives for a while
                time.sleep(0.2)
                yield b"\r\n"

        return Response(lines(), content_type="application/json")


@pytest.fixture
def chunked_server() -> Iterator[HTTPServer]:
    """Threaded werkzeug speaks HTTP/1.1 and streams with chunked encoding, as the real stream
    does (the default single-threaded server answers HTTP/1.0, and the client would then wait for
    a full read buffer)."""
    server = HTTPServer("127.0.0.1", 0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def test_stream_delivers_records_and_skips_bad_lines(chunked_server: HTTPServer) -> None:
    httpserver = chunked_server
    fake = FakeStream()
    fake.install(httpserver)
    m = ProducerMetrics("btc", "tweets", "x-api")
    src = XStreamSource(TOKEN, httpserver.url_for("/"), "btc", QUERY, m)
    src.start()
    got = Batch()
    try:
        deadline = time.monotonic() + 4  # well before the server ends the connection (5 s)
        while len(got.records) < 3 and time.monotonic() < deadline:
            got.extend(src.poll())
        assert src.ready()
    finally:
        src.close()
    assert [t.id for t in got.records] == ["501", "502", "504"]
    assert [s.reason for s in got.skips] == [b.MALFORMED_JSON]
    # our old rule replaced, nobody else's touched; the stream asked for the fields we need
    assert fake.rule_posts == [
        {"delete": {"ids": ["9"]}},
        {"add": [{"value": QUERY, "tag": "coinfeed:btc"}]},
    ]
    assert fake.stream_params[0]["expansions"] == "author_id"
    assert fake.auth[0] == f"Bearer {TOKEN}"
    ok = m.registry.get_sample_value(
        "coinfeed_producer_source_requests_total",
        {"coin": "btc", "kind": "tweets", "source": "x-api", "outcome": "ok"},
    )
    assert ok == 1
