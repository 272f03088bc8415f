"""Kafka failures around a running producer: the topic appears late, and every broker goes away
mid-run and comes back. Nothing is lost, nothing is dropped, readiness says what is going on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from coinfeed.schemas import Tweet, decode_record
from coinfeed.topics import topic_name
from tests.integration.producers.helpers import ProducerProcess, create_topics, read_topic, wait_for
from tests.integration.producers.test_producer_kafka import (
    RECORDS,
    new_coin,
    replay_env,
    sample_slice,
)


def test_not_ready_until_the_topic_exists_then_delivers(kafka_cluster: Any, tmp_path: Path) -> None:
    coin, bootstrap = new_coin(), kafka_cluster.bootstrap
    path, tweets = sample_slice(tmp_path, "tweets", 50, coin)
    proc = ProducerProcess(
        "tweets",
        replay_env(coin, bootstrap, "tweets", path, "0"),
        tmp_path / "t.log",
        ["--max-block-ms", "2000", "--backoff-cap", "1"],
    )
    try:
        wait_for(
            lambda: any(
                r.get("msg") == "kafka not accepting records, retrying" for r in proc.log_records()
            ),
            90,
            "blocked on the missing topic",
            proc,
        )
        assert proc.get("/readyz")[0] == 503
        assert proc.metric(RECORDS) == 0
        create_topics(bootstrap, topic_name(coin, "tweets"))  # what the operator does
        wait_for(lambda: proc.metric(RECORDS) >= 50, 120, "delivery after the topic appeared", proc)
        wait_for(lambda: proc.get("/readyz")[0] == 200, 30, "ready", proc)
        assert proc.metric("coinfeed_producer_records_dropped_total") == 0
    finally:
        assert proc.stop() == 0
    ids = [
        decode_record(Tweet, m.value).id for m in read_topic(bootstrap, topic_name(coin, "tweets"))
    ]
    assert sorted(ids) == sorted(t["id"] for t in tweets)


def test_all_brokers_down_mid_run_nothing_lost(kafka_cluster_factory: Any, tmp_path: Path) -> None:
    cluster = kafka_cluster_factory()
    coin, bootstrap = new_coin(), cluster.bootstrap
    topic = topic_name(coin, "tweets")
    create_topics(bootstrap, topic)
    path, tweets = sample_slice(tmp_path, "tweets", 2500, coin)
    # ~12 h of tweets at 1800x: ~25 s of replay, with the brokers gone for part of it.
    proc = ProducerProcess(
        "tweets",
        replay_env(coin, bootstrap, "tweets", path, "1800"),
        tmp_path / "t.log",
        ["--kafka-stall-seconds", "3", "--at-end", "exit"],
    )
    try:
        wait_for(lambda: proc.metric(RECORDS) >= 100, 120, "replay under way", proc)
        # Two controlled shutdowns, then the last broker killed (stop_broker waits for the broker
        # to leave the cluster's metadata, which no broker is left to report for the last one).
        cluster.stop_broker(1)
        cluster.stop_broker(2)
        cluster.kill_broker(3, wait=False)
        wait_for(lambda: proc.get("/readyz")[0] == 503, 60, "not ready while Kafka is down", proc)
        acked_during = proc.metric(RECORDS)
        time.sleep(3)
        assert proc.metric(RECORDS) == acked_during  # really down: nothing acknowledged
        assert proc.proc.poll() is None  # no crash
        for broker in (1, 2, 3):
            cluster.start_broker(broker)
        proc.proc.wait(240)  # --at-end exit: finishes the file, flushes, exits
    finally:
        code = proc.stop()
    assert code == 0, proc.log_text()[-3000:]
    stopped = [r for r in proc.log_records() if r.get("msg") == "producer stopped"]
    assert stopped and stopped[-1]["dropped"] == 0 and stopped[-1]["acked"] == len(tweets)
    ids = [decode_record(Tweet, m.value).id for m in read_topic(bootstrap, topic)]
    assert len(ids) == len(set(ids)) == len(tweets)
    assert set(ids) == {t["id"] for t in tweets}
