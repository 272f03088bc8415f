"""The producer process: source -> validated records -> Kafka, with health, metrics and a clean stop.

Order of start-up: configuration errors fail at once (exit 2); then /metrics, /healthz and /readyz
come up (not ready); Kafka is retried with backoff until it answers; the tweet producer reads its
resume point from the topic; then the poll loop runs until SIGTERM (or the end of a replay).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from coinfeed.kafka import make_producer
from coinfeed.metrics import HealthServer
from coinfeed.producers.batch import Batch
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.settings import Settings, bearer_token, exchange_keys
from coinfeed.producers.sink import KafkaSink
from coinfeed.producers.sources import (
    CcxtPriceSource,
    CoinGeckoPriceSource,
    ReplaySource,
    Sleep,
    Source,
)
from coinfeed.topics import topic_name

log = logging.getLogger("coinfeed.producers")


def build_source(settings: Settings, metrics: ProducerMetrics, sleep: Sleep) -> Source:
    s = settings
    if s.source == "replay":
        assert s.replay_file is not None
        return ReplaySource(s.kind, s.coin, s.replay_file, s.replay_speed, s.rebase)  # type: ignore[arg-type]
    if s.kind == "prices":
        if s.source == "coingecko":
            key, _ = exchange_keys()
            return CoinGeckoPriceSource(
                s.coin,
                s.pair,
                s.coingecko_endpoint,
                s.poll_interval,
                metrics,
                s.policy,
                s.coingecko_base_url,
                s.coingecko_id,
                api_key=key,
            )
        key, secret = exchange_keys()
        return CcxtPriceSource(
            s.coin,
            s.pair,
            s.source,
            s.mode,
            s.poll_interval,
            metrics,
            s.policy,
            api_url=s.exchange_api_url,
            api_key=key,
            api_secret=secret,
        )
    from coinfeed.producers import tweets, xapi

    query = tweets.build_query(s.keywords, s.cashtags, s.languages)
    if s.tweet_mode == "stream":
        return xapi.XStreamSource(
            bearer_token(s), s.x_api_base_url, s.coin, query, metrics, s.backfill_minutes
        )
    client = xapi.make_client(bearer_token(s), s.x_api_base_url)
    return xapi.XRecentSearchSource(
        client, s.coin, query, s.poll_interval, metrics, s.policy, sleep, max_results=s.max_results
    )


def new_producer(settings: Settings) -> Any:
    """One Kafka producer; raises while Kafka does not answer. Also the sink's factory for
    replacing a wedged producer."""
    # Short bootstrap attempts: the callers retry (with backoff, logged, not ready).
    return make_producer(
        settings.bootstrap,
        max_block_ms=settings.max_block_ms,
        bootstrap_timeout_ms=5_000,
        reconnect_backoff_max_ms=5_000,
    )


def connect_kafka(settings: Settings, stop: threading.Event) -> Any | None:
    """A Kafka producer, retried with backoff until Kafka answers; None if stopped meanwhile."""
    attempt = 0
    while not stop.is_set():
        try:
            return new_producer(settings)
        except Exception as exc:  # NoBrokersAvailable, connection errors: keep trying
            delay = settings.policy.backoff(attempt)
            log.warning(
                "kafka not reachable, retrying",
                extra={"error": repr(exc), "attempt": attempt, "retry_in_s": round(delay, 2)},
            )
            attempt += 1
            stop.wait(delay)
    return None


def resume_point(settings: Settings, stop: threading.Event) -> tuple[bool, str | None]:
    """(got it, since_id); retried with backoff while the topic is missing or Kafka fails."""
    from coinfeed.producers.resume import newest_tweet_id

    topic = topic_name(settings.coin, "tweets")
    attempt = 0
    while not stop.is_set():
        try:
            return True, newest_tweet_id(topic, settings.bootstrap)
        except Exception as exc:
            delay = settings.policy.backoff(attempt)
            log.warning(
                "cannot read the resume point yet, retrying",
                extra={"topic": topic, "error": repr(exc), "retry_in_s": round(delay, 2)},
            )
            attempt += 1
            stop.wait(delay)
    return False, None


def _log_skips(batch: Batch, metrics: ProducerMetrics) -> None:
    for skip in batch.skips:
        metrics.skip(skip.reason)
        log.warning("skipped item", extra={"reason": skip.reason, "detail": skip.detail})


def run(settings: Settings, stop: threading.Event) -> int:
    s = settings
    metrics = ProducerMetrics(s.coin, s.kind, s.source)
    sleep: Sleep = lambda seconds: not stop.wait(seconds)  # noqa: E731
    source = build_source(s, metrics, sleep)
    sink: KafkaSink | None = None
    health = HealthServer(metrics.registry, s.metrics_port, s.metrics_host)
    health.add_check("kafka", lambda: sink is not None and sink.healthy)
    health.add_check("source", source.ready)
    health.start()
    log.info(
        "producer starting",
        extra={
            "kind": s.kind,
            "coin": s.coin,
            "source": s.source,
            "topic": topic_name(s.coin, s.kind),
            "metrics_port": health.port,
        },
    )
    # Evaluated at scrape time, so the gauge and /readyz always agree.
    metrics.ready.labels(s.coin, s.kind).set_function(
        lambda: 0.0 if health.failing_checks() else 1.0
    )
    try:
        producer = connect_kafka(s, stop)
        if producer is None:  # stopped before Kafka ever answered: nothing was read
            source.close()
            health.stop()
            return 0
        sink = KafkaSink(
            producer,
            metrics,
            s.coin,
            s.kind,
            s.max_buffered,
            kafka_timestamp=s.kafka_timestamp,  # type: ignore[arg-type]
            stall_seconds=s.kafka_stall_seconds,
            producer_factory=lambda: new_producer(s),
        )
        _start_shutdown_watchdog(stop, sink, s.shutdown_timeout)
        if s.kind == "tweets" and s.source == "x-api" and s.tweet_mode == "search":
            got, since_id = resume_point(s, stop)
            if not got:
                return _finish(sink, s, source, health)
            source.since_id = since_id  # type: ignore[attr-defined]
            log.info("resuming after the newest tweet in the topic", extra={"since_id": since_id})
        start = getattr(source, "start", None)
        if start is not None:
            start()  # e.g. the filtered stream connects only once Kafka can take its records
        while not stop.is_set():
            batch = source.poll()
            _log_skips(batch, metrics)
            for record in batch.records:
                sink.send(record)
            sink.retry_failed()
            if source.done:
                break
            stop.wait(source.next_wait())
        if source.done and not stop.is_set():
            sink.flush(s.shutdown_timeout)
            log.info("replay finished", extra={"acked": sink.acked, "at_end": s.at_end})
            if s.at_end == "idle":
                stop.wait()
        return _finish(sink, s, source, health)
    except BaseException:
        if sink is not None:
            sink.close(s.shutdown_timeout)
        health.stop()
        raise


def _start_shutdown_watchdog(stop: threading.Event, sink: KafkaSink, timeout: float) -> None:
    """After SIGTERM, a send blocked on an unreachable Kafka gives up after ``timeout`` (counted)."""

    def watch() -> None:
        stop.wait()
        if not sink.abandon.wait(timeout):
            sink.abandon.set()

    threading.Thread(target=watch, name="shutdown-watchdog", daemon=True).start()


def _finish(sink: KafkaSink, s: Settings, source: Source, health: HealthServer) -> int:
    started = time.monotonic()
    source.close()
    dropped = sink.close(s.shutdown_timeout)
    log.info(
        "producer stopped",
        extra={
            "acked": sink.acked,
            "dropped": dropped,
            "flush_s": round(time.monotonic() - started, 3),
        },
    )
    health.stop()
    return 0 if dropped == 0 else 1
