"""The producer process: source -> validated records -> Kafka, with health, metrics and a clean stop.

Order of start-up: configuration errors fail at once (exit 2); then /metrics, /healthz and /readyz
come up (not ready); Kafka is retried with backoff until it answers; a live social producer reads
its resume point from the topic; then the poll loop runs until SIGTERM (or the end of a replay).

Liveness: every loop iteration, and every wait it plans (backoff, rate-limit reset, Kafka
back-pressure), beats a :class:`~coinfeed.producers.liveness.LoopWatchdog`; ``/healthz`` answers
503 when no beat came within the planned wait plus the stall limit, so the liveness probe restarts
a producer whose loop hangs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from coinfeed.kafka import make_producer
from coinfeed.metrics import HealthServer
from coinfeed.producers.batch import Batch
from coinfeed.producers.liveness import LoopWatchdog, stall_limit
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.settings import Settings, bearer_token, exchange_keys
from coinfeed.producers.sink import KafkaSink
from coinfeed.producers.sources import (
    CcxtPriceSource,
    CoinGeckoPriceSource,
    ReplaySource,
    Sleep,
    Source,
    not_ready_reason,
)
from coinfeed.topics import topic_name

log = logging.getLogger("coinfeed.producers")
T = TypeVar("T")


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
    if s.source == "bluesky":
        from coinfeed.producers import bluesky, jetstream

        return jetstream.JetstreamSource(
            s.coin,
            s.jetstream_urls or list(jetstream.PUBLIC_ENDPOINTS),
            bluesky.Matcher.build(s.keywords, s.cashtags, s.languages),
            metrics,
            s.policy,
            cursor_margin_s=s.cursor_margin_seconds,
            stall_seconds=s.stream_stall_seconds,
        )
    from coinfeed.producers import tweets, xapi

    query = tweets.build_query(s.keywords, s.cashtags, s.languages)
    if s.tweet_mode == "stream":
        return xapi.XStreamSource(
            bearer_token(s), s.x_api_base_url, s.coin, query, metrics, s.backfill_minutes
        )
    client = xapi.make_client(bearer_token(s), s.x_api_base_url)
    return xapi.XRecentSearchSource(
        client,
        s.coin,
        query,
        s.poll_interval,
        metrics,
        s.policy,
        sleep,
        max_results=s.max_results,
        lookback_s=s.lookback_minutes * 60,
        max_pages=s.max_pages,
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


def connect_kafka(settings: Settings, stop: threading.Event, wait: Sleep) -> Any | None:
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
            wait(delay)
    return None


def with_retries(
    what: str, read: Callable[[], T], settings: Settings, wait: Sleep
) -> tuple[bool, T | None]:
    """(got it, value): ``read`` retried with backoff while the topic is missing or Kafka fails;
    never a silent default: a producer that cannot read its resume point does not start."""
    topic = topic_name(settings.coin, "tweets")
    attempt = 0
    while True:
        try:
            return True, read()
        except Exception as exc:
            delay = settings.policy.backoff(attempt)
            log.warning(
                f"cannot read the {what} yet, retrying",
                extra={"topic": topic, "error": repr(exc), "retry_in_s": round(delay, 2)},
            )
            attempt += 1
            if not wait(delay):
                return False, None


def resume_x(settings: Settings, source: Any, wait: Sleep) -> bool:
    """Point the X search after the last complete search in the topic (see resume.py)."""
    from coinfeed.producers import resume

    topic = topic_name(settings.coin, "tweets")
    got, point = with_retries(
        "resume point",
        lambda: resume.x_resume(resume.last_records(topic, settings.bootstrap)),
        settings,
        wait,
    )
    if not got or point is None:
        return False
    source.since_id, source.start_time = point.since_id, point.start_time
    log.info(
        "resuming X search",
        extra={"since_id": point.since_id, "start_time": point.start_time},
    )
    return True


def resume_bluesky(settings: Settings, source: Any, wait: Sleep, now: float | None = None) -> bool:
    """Start the stream slightly before the newest Bluesky post in the topic; with none there,
    ``lookback`` before now (said in the log). Posts already in the topic are not sent again."""
    from coinfeed.producers import resume

    topic = topic_name(settings.coin, "tweets")
    margin_us = int(settings.cursor_margin_seconds * 1_000_000)
    got, point = with_retries(
        "resume point",
        lambda: resume.bluesky_resume(topic, margin_us, settings.bootstrap),
        settings,
        wait,
    )
    if not got or point is None:
        return False
    now = time.time() if now is None else now
    if point.newest_us is None:
        cursor = int((now - settings.lookback_minutes * 60) * 1_000_000)
        log.warning(
            "no Bluesky post in the topic yet: starting the stream lookback minutes ago",
            extra={"cursor_us": cursor, "lookback_minutes": settings.lookback_minutes},
        )
    else:
        cursor = point.newest_us - margin_us
        age_h = (now - cursor / 1e6) / 3600
        (log.warning if age_h > 24 else log.info)(
            "resuming the Bluesky stream before the newest post in the topic"
            + (
                " (older than Jetstream keeps, about a day: posts in between are lost)"
                if age_h > 24
                else ""
            ),
            extra={"cursor_us": cursor, "already_sent": len(point.seen), "age_h": round(age_h, 2)},
        )
    source.start_from(cursor, point.seen)
    return True


def _log_skips(batch: Batch, metrics: ProducerMetrics) -> None:
    for skip in batch.skips:
        metrics.skip(skip.reason)
        log.warning("skipped item", extra={"reason": skip.reason, "detail": skip.detail})


def run(settings: Settings, stop: threading.Event) -> int:
    s = settings
    metrics = ProducerMetrics(s.coin, s.kind, s.source)
    watchdog = LoopWatchdog(s.liveness_stall_seconds or stall_limit(s.poll_interval))

    def sleep(seconds: float) -> bool:
        """Stop-aware wait that tells the watchdog it is planned (False: stopping)."""
        watchdog.beat(seconds)
        return not stop.wait(seconds)

    source = build_source(s, metrics, sleep)
    sink: KafkaSink | None = None
    health = HealthServer(metrics.registry, s.metrics_port, s.metrics_host)
    health.add_check("kafka", lambda: sink is not None and sink.healthy)
    health.add_check("source", source.ready, lambda: not_ready_reason(source))
    health.add_liveness("loop", watchdog.alive, watchdog.detail)
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
        producer = connect_kafka(s, stop, sleep)
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
            heartbeat=watchdog.beat,
        )
        _start_shutdown_watchdog(stop, sink, s.shutdown_timeout)
        resumed = True
        if s.kind == "tweets" and s.source == "x-api" and s.tweet_mode == "search":
            resumed = resume_x(s, source, sleep)
        elif s.kind == "tweets" and s.source == "bluesky":
            resumed = resume_bluesky(s, source, sleep)
        if not resumed:
            return _finish(sink, s, source, health)
        start = getattr(source, "start", None)
        if start is not None:
            start()  # e.g. the filtered stream connects only once Kafka can take its records
        while not stop.is_set():
            watchdog.beat()
            batch = source.poll()
            _log_skips(batch, metrics)
            for i, record in enumerate(batch.records):
                sink.send(record, batch.extra_headers(i))
            sink.retry_failed()
            refused = getattr(source, "refused", "")
            if refused:
                return _source_refused(sink, s, source, health, refused)
            if source.done:
                break
            sleep(source.next_wait())
        if source.done and not stop.is_set():
            sink.flush(s.shutdown_timeout)
            log.info("replay finished", extra={"acked": sink.acked, "at_end": s.at_end})
            if s.at_end == "idle":
                watchdog.beat(float("inf"))  # idle by design: nothing left to hang
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


def _source_refused(
    sink: KafkaSink, s: Settings, source: Source, health: HealthServer, why: str
) -> int:
    """The source refuses this location (HTTP 451): polling on cannot help. Stop and leave the
    reason where the operator reads it (the container's termination message: the CoinFeed then
    shows SourceAvailable=False, reason GeoBlocked); Kubernetes restarts the pod with backoff."""
    from coinfeed import producer_status as ps

    message = ps.termination_message(ps.GEO_BLOCKED, s.kind, s.source, why)
    written = ps.write_termination_message(message)
    log.error(
        "source refuses this location; stopping",
        extra={"source": s.source, "reason": ps.GEO_BLOCKED, "termination_message": written},
    )
    _finish(sink, s, source, health)
    return ps.EXIT_SOURCE_REFUSED


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
