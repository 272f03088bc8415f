"""Producers against the real 3-broker Kafka cluster, run as separate processes configured only by
environment variables (what the operator writes into a Deployment)."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer

from coinfeed.kafka import key_partition
from coinfeed.schemas import PriceTick, Tweet, decode_record
from coinfeed.topics import topic_name
from tests.integration.producers.helpers import (
    ROOT,
    ProducerProcess,
    create_topics,
    read_topic,
    wait_for,
)
from tests.unit.producers.fakes import FakeX, x_tweet

SAMPLES = ROOT / "samples"
FAKE_TOKEN = "AAAAAAAAAAAAAAAAAAAAAIntegrationFakeBearerToken0042"
RECORDS = "coinfeed_producer_records_total"


def new_coin() -> str:
    return "t" + uuid.uuid4().hex[:8]


def sample_slice(tmp_path: Path, kind: str, n: int, coin: str) -> tuple[Path, list[dict[str, Any]]]:
    """The first ``n`` sample records of ``kind``, re-labelled for a fresh coin (own topics)."""
    lines = gzip.decompress((SAMPLES / f"btc-{kind}.jsonl.gz").read_bytes()).splitlines()[:n]
    records = []
    for line in lines:
        rec = json.loads(line)
        rec["coin"] = coin
        records.append(rec)
    path = tmp_path / f"{coin}-{kind}.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records)))
    return path, records


def replay_env(coin: str, bootstrap: str, kind: str, path: Path, speed: str) -> dict[str, str]:
    source_var = "COINFEED_PRICE_SOURCE" if kind == "prices" else "COINFEED_TWEET_SOURCE"
    return {
        "COINFEED_COIN": coin,
        "COINFEED_KAFKA_BOOTSTRAP": bootstrap,
        source_var: "replay",
        "COINFEED_REPLAY_FILE": str(path),
        "COINFEED_REPLAY_SPEED": speed,
    }


def test_replay_records_arrive_keyed_with_headers(kafka_cluster: Any, tmp_path: Path) -> None:
    coin, bootstrap = new_coin(), kafka_cluster.bootstrap
    create_topics(bootstrap, topic_name(coin, "prices"), topic_name(coin, "tweets"))
    price_file, prices = sample_slice(tmp_path, "prices", 120, coin)
    tweet_file, tweets = sample_slice(tmp_path, "tweets", 150, coin)
    # A broken line in the middle: skipped with a counted reason, nothing else lost.
    with gzip.open(price_file, "ab") as fh:
        fh.write(b'{"coin": "' + coin.encode() + b'", "price": \n')
    procs = [
        ProducerProcess(
            "prices", replay_env(coin, bootstrap, "prices", price_file, "0"), tmp_path / "p.log"
        ),
        ProducerProcess(
            "tweets", replay_env(coin, bootstrap, "tweets", tweet_file, "0"), tmp_path / "t.log"
        ),
    ]
    try:
        for proc, n in zip(procs, (120, 150), strict=True):
            wait_for(lambda p=proc, n=n: p.metric(RECORDS) >= n, 120, "records acknowledged", proc)
            # replay done, process idles (as in a Deployment): healthy and ready
            wait_for(lambda p=proc: p.get("/readyz")[0] == 200, 30, "ready", proc)
            assert proc.get("/healthz")[0] == 200
        assert (
            procs[0].metric("coinfeed_producer_records_skipped_total", reason="malformed_json") == 1
        )
        assert procs[0].metric(RECORDS, source="replay") == 120
    finally:
        codes = [p.stop() for p in procs]
    assert codes == [0, 0]

    price_msgs = read_topic(bootstrap, topic_name(coin, "prices"))
    assert len(price_msgs) == 120
    assert {m.key for m in price_msgs} == {coin.encode()}
    assert len({m.partition for m in price_msgs}) == 1  # keyed by coin: one partition, in order
    # The partition every client using Kafka's murmur2 picks for that key.
    assert price_msgs[0].partition == key_partition(coin.encode(), 3)
    assert [decode_record(PriceTick, m.value).price for m in price_msgs] == [
        p["price"] for p in prices
    ]
    assert all(m.headers == {"schema_version": b"1", "source": b"synthetic"} for m in price_msgs)

    tweet_msgs = read_topic(bootstrap, topic_name(coin, "tweets"))
    assert len(tweet_msgs) == 150
    for m in tweet_msgs:
        tw = decode_record(Tweet, m.value)
        assert m.key == tw.id.encode() and tw.coin == coin
        assert m.partition == key_partition(m.key, 3)
        assert m.headers == {"schema_version": b"2", "source": b"synthetic"}  # Tweet v2
    assert {decode_record(Tweet, m.value).id for m in tweet_msgs} == {t["id"] for t in tweets}
    assert len({m.partition for m in tweet_msgs}) > 1  # keyed by id: spread over partitions


def test_key_partition_agrees_with_librdkafka(kafka_cluster: Any) -> None:
    """confluent-kafka's murmur2 partitioner (Java-compatible) puts every key where ours does."""
    from confluent_kafka import Producer

    coin, bootstrap = new_coin(), kafka_cluster.bootstrap
    topic = topic_name(coin, "tweets")
    create_topics(bootstrap, topic)
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    keys = [str(1896349829949292545 + i * 7919).encode() for i in range(200)] + [b"btc", b"eth"]
    for key in keys:
        producer.produce(topic, key=key, value=b"{}")
    assert producer.flush(60) == 0
    msgs = read_topic(bootstrap, topic)
    assert sorted(m.key for m in msgs) == sorted(keys)
    assert {m.key: m.partition for m in msgs} == {k: key_partition(k, 3) for k in keys}


def test_sigterm_mid_stream_loses_nothing(kafka_cluster: Any, tmp_path: Path) -> None:
    coin, bootstrap = new_coin(), kafka_cluster.bootstrap
    create_topics(bootstrap, topic_name(coin, "tweets"))
    path, tweets = sample_slice(tmp_path, "tweets", 4000, coin)
    # ~20 h of tweets at 3600x: ~20 s of replay, stopped part-way.
    proc = ProducerProcess(
        "tweets", replay_env(coin, bootstrap, "tweets", path, "3600"), tmp_path / "t.log"
    )
    try:
        wait_for(lambda: proc.metric(RECORDS) >= 300, 120, "replay under way", proc)
    finally:
        code = proc.stop()
    assert code == 0, proc.log_text()[-3000:]
    stopped = [r for r in proc.log_records() if r.get("msg") == "producer stopped"]
    assert len(stopped) == 1 and stopped[0]["dropped"] == 0
    acked = stopped[0]["acked"]
    assert 300 <= acked < len(tweets), "SIGTERM should have arrived mid-stream"

    ids = [
        decode_record(Tweet, m.value).id for m in read_topic(bootstrap, topic_name(coin, "tweets"))
    ]
    assert len(ids) == len(set(ids)) == acked
    # Exactly a prefix of the file: everything read before the stop was delivered.
    assert set(ids) == {t["id"] for t in tweets[:acked]}


def _x_env(coin: str, bootstrap: str, server: HTTPServer) -> dict[str, str]:
    return {
        "COINFEED_COIN": coin,
        "COINFEED_KAFKA_BOOTSTRAP": bootstrap,
        "COINFEED_TWEET_SOURCE": "x-api",
        "COINFEED_TWEET_KEYWORDS": "bitcoin",
        "COINFEED_TWEET_LANGUAGES": "en",
        "COINFEED_X_API_BASE_URL": server.url_for("/"),
        "COINFEED_X_BEARER_TOKEN": FAKE_TOKEN,
        "COINFEED_POLL_INTERVAL_SECONDS": "0.3",
        "COINFEED_LOG_LEVEL": "DEBUG",  # the token must stay out of the logs even at DEBUG
    }


def test_tweet_producer_restart_neither_duplicates_nor_skips(
    kafka_cluster: Any, tmp_path: Path, httpserver: HTTPServer
) -> None:
    coin, bootstrap = new_coin(), kafka_cluster.bootstrap
    topic = topic_name(coin, "tweets")
    create_topics(bootstrap, topic)
    fake = FakeX().install(httpserver)
    base = 1_900_000_000_000_000_000
    # Posted in the last hour: the first search of an empty topic looks back one hour only.
    recent = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 600))
    fake.add(*[x_tweet(base + i, author=1 + i % 4, created_at=recent) for i in range(130)])

    first = ProducerProcess("tweets", _x_env(coin, bootstrap, httpserver), tmp_path / "run1.log")
    try:
        wait_for(lambda: first.metric(RECORDS) >= 130, 120, "first batch", first)
        fake.add(*[x_tweet(base + 200 + i, created_at=recent) for i in range(10)])  # while running
        wait_for(lambda: first.metric(RECORDS) >= 140, 60, "second batch", first)
        wait_for(lambda: first.get("/readyz")[0] == 200, 30, "ready", first)
        metrics_text = first.get("/metrics")[1]
    finally:
        assert first.stop() == 0, first.log_text()[-3000:]
    requests_before_restart = len(fake.requests)

    fake.add(*[x_tweet(base + 300 + i, created_at=recent) for i in range(25)])  # while down
    second = ProducerProcess("tweets", _x_env(coin, bootstrap, httpserver), tmp_path / "run2.log")
    try:
        wait_for(lambda: second.metric(RECORDS) >= 25, 120, "tweets posted while down", second)
        n = len(fake.requests)
        wait_for(lambda: len(fake.requests) >= n + 3, 30, "a few more polls", second)
        metrics_text += second.get("/metrics")[1]
    finally:
        assert second.stop() == 0, second.log_text()[-3000:]

    # The restart asked only for what came after the newest tweet already in the topic.
    assert fake.requests[requests_before_restart]["since_id"] == str(base + 209)
    ids = [decode_record(Tweet, m.value).id for m in read_topic(bootstrap, topic)]
    assert len(ids) == len(set(ids)), "duplicates after restart"
    assert set(ids) == {t["id"] for t in fake.tweets}, "tweets skipped across the restart"

    # The bearer token was used (the fake saw it) but is in no log line and no metric.
    assert fake.auth_headers and all(h == f"Bearer {FAKE_TOKEN}" for h in fake.auth_headers)
    logs = first.log_text() + second.log_text()
    assert '"level": "debug"' in logs or '"level": "info"' in logs
    assert FAKE_TOKEN not in logs
    assert FAKE_TOKEN[-12:] not in logs
    assert FAKE_TOKEN not in metrics_text and FAKE_TOKEN[-12:] not in metrics_text


def test_kafka_unavailable_at_start_not_ready_no_crash(tmp_path: Path) -> None:
    from tests.support.ports import free_port

    path, _ = sample_slice(tmp_path, "prices", 10, "btc")
    env = replay_env("btc", f"127.0.0.1:{free_port()}", "prices", path, "0")
    proc = ProducerProcess(
        "prices", env, tmp_path / "p.log", ["--backoff-base", "0.2", "--backoff-cap", "1"]
    )
    try:
        wait_for(lambda: proc.get("/healthz")[0] == 200, 60, "health endpoint", proc)
        wait_for(
            lambda: (
                sum(r.get("msg") == "kafka not reachable, retrying" for r in proc.log_records())
                >= 2
            ),
            60,
            "retries",
            proc,
        )
        status, body = proc.get("/readyz")
        assert status == 503 and "kafka" in body
        assert proc.proc.poll() is None
        assert proc.metric("coinfeed_producer_ready") == 0
    finally:
        code = proc.stop()
    assert code == 0
