"""Kafka side of a producer: validated records -> keyed, headed sends, acknowledgements -> metrics.

Kafka down mid-run: ``send`` blocks and retries (the source is not read meanwhile); records that
fail after kafka-python's own retries go to a bounded retry buffer. Anything that must be dropped
is counted in PRODUCER_RECORDS_DROPPED and logged: never silent.

A wedged client is replaced: kafka-python 3.0.12's idempotent producer, after an in-retry batch
expires (every broker down longer than the delivery timeout), resets its producer id to -1 but
stays READY, and ``init_producer_id`` only acts from UNINITIALIZED; the sender then returns early
on every loop (sender.py ``run_once``), so nothing is sent or expired again and its futures never
complete. Kafka promises every send completes within the delivery timeout, so when records have
waited that long (plus a request timeout) with no ack and no failure at all, the sink builds a
fresh producer with ``producer_factory`` (which fails while Kafka is still down: retried with
backoff) and force-closes the old one: its pending futures fail into the retry buffer and are
re-sent. At-least-once across such a reset: a record the old producer had already written is
written again (counted in ``resent_after_reset``, logged; the hourly job dedups by id).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from kafka.errors import KafkaTimeoutError

from coinfeed.producers.batch import Header, Record
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.replay import event_time
from coinfeed.producers.retry import RetryPolicy
from coinfeed.topics import TopicKind, topic_name

log = logging.getLogger("coinfeed.producers.sink")

# Header names: the contract with consumers (the Spark job may read them; it need not).
HEADER_SCHEMA_VERSION: Final = "schema_version"
HEADER_SOURCE: Final = "source"
KafkaTimestamp = Literal["send", "event"]


def record_key(record: Record) -> bytes:
    """Prices keyed by coin (one partition keeps a coin's ticks in order); tweets by id."""
    if record.kind == "prices":
        return record.coin.encode()
    return record.id.encode()  # type: ignore[union-attr]


def record_headers(record: Record) -> list[tuple[str, bytes]]:
    """``schema_version`` is the record's own (a replayed version-1 file stays version 1)."""
    return [
        (HEADER_SCHEMA_VERSION, str(record.schema_version).encode()),
        (HEADER_SOURCE, record.source.encode()),
    ]


def event_ms(record: Record) -> int:
    return int(event_time(record).timestamp() * 1000)


def keep_for_retry(buffered: int, max_buffered: int) -> bool:
    """A record whose delivery failed is kept for re-sending while the retry buffer (now holding
    ``buffered``) has room; otherwise it is dropped with reason ``buffer_full`` (counted, logged)."""
    return buffered < max_buffered


def wedge_seconds(config: Mapping[str, Any]) -> float:
    """How long records may wait with no ack and no failure before the producer counts as wedged:
    the delivery timeout (every send completes by then) plus one request timeout of slack."""
    return (int(config["delivery_timeout_ms"]) + int(config["request_timeout_ms"])) / 1000


def is_wedged(in_flight: int, since_progress: float, limit: float) -> bool:
    """Records are in flight and no send has completed (acked or failed) for ``limit`` seconds."""
    return in_flight > 0 and since_progress > limit


def force_close(producer: Any) -> None:
    """Close a producer now, failing its pending futures. kafka-python 3.0.12's ``close(timeout=0)``
    first calls ``flush(0)``, which raises while records are pending, before it ever force-closes;
    so the sender is force-closed (and joined: it fails the futures on its way out) first."""
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()
        sender.join(5)
    producer.close(timeout=0)


class _Delivery:
    """One record's outcome handlers: one small object per send instead of two partials
    (measured: the per-record callback registration is a visible share of the send cost)."""

    __slots__ = ("extra", "record", "sink", "started")

    def __init__(
        self, sink: KafkaSink, record: Record, started: float, extra: list[Header] | None
    ) -> None:
        self.sink, self.record, self.started, self.extra = sink, record, started, extra

    def acked(self, metadata: Any) -> None:
        self.sink._on_ack(self.record, self.started, metadata)

    def failed(self, exc: BaseException) -> None:
        self.sink._on_error(self.record, exc, self.extra)


class KafkaSink:
    def __init__(
        self,
        producer: Any,
        metrics: ProducerMetrics,
        coin: str,
        kind: TopicKind,
        max_buffered: int = 10_000,
        policy: RetryPolicy | None = None,
        kafka_timestamp: KafkaTimestamp = "send",
        stall_seconds: float = 15.0,
        producer_factory: Callable[[], Any] | None = None,
        heartbeat: Callable[[float], None] | None = None,
    ) -> None:
        self.producer = producer
        # Liveness: told before every blocking send attempt how long it may take.
        self.heartbeat = heartbeat or (lambda _seconds: None)
        self._max_block_s = (
            float((getattr(producer, "config", None) or {}).get("max_block_ms", 60_000)) / 1000
        )
        # Without a factory a wedged producer is only reported (not ready), never replaced.
        self.producer_factory = producer_factory
        self.wedge_seconds = wedge_seconds(producer.config) if producer_factory else float("inf")
        self.resets = 0
        self.resent_after_reset = 0
        self._reset_attempt = 0
        self._next_reset_try = 0.0
        self.metrics = metrics
        self.coin, self.kind = coin, kind
        self.topic = topic_name(coin, kind)
        self.max_buffered = max_buffered
        self.policy = policy or RetryPolicy(base=0.5, cap=10.0)
        self.kafka_timestamp = kafka_timestamp
        # Set when shutdown gives up on a Kafka that stays down: pending sends are dropped (counted).
        self.abandon = threading.Event()
        self._lock = threading.Lock()
        # Failed deliveries kept for re-sending, with their extra headers.
        self._failed: deque[tuple[Record, list[Header] | None]] = deque()
        self.acked = 0
        self.dropped = 0
        self.in_flight = 0
        self._ok = True
        self._last_progress = time.monotonic()
        self.stall_seconds = stall_seconds
        self._newest = 0.0
        # Labelled children looked up once: label lookup per record costs more than the increment.
        self._acked_counter = metrics.records.labels(coin, kind, metrics.source)
        self._latency = metrics.send_latency.labels(coin, kind)
        self._newest_gauge = metrics.newest_record.labels(coin, kind)
        # Headers per source built once: kafka-python encodes them at send(), never keeps the list.
        self._headers: dict[tuple[str, int], list[Header]] = {}

    # --- callbacks (kafka-python's I/O thread) ---
    def _on_ack(self, record: Record, started: float, _metadata: Any) -> None:
        self._acked_counter.inc()
        self._latency.observe(time.monotonic() - started)
        t = event_time(record).timestamp()
        with self._lock:
            self.acked += 1
            self.in_flight -= 1
            self._ok = True
            self._last_progress = time.monotonic()
            if t > self._newest:
                self._newest = t
                self._newest_gauge.set(t)

    def _on_error(
        self, record: Record, exc: BaseException, extra: list[Header] | None = None
    ) -> None:
        self.metrics.send_errors.labels(self.coin, self.kind, type(exc).__name__).inc()
        with self._lock:
            self.in_flight -= 1
            self._ok = False
            self._last_progress = time.monotonic()  # a failure is a completion: not wedged
            if keep_for_retry(len(self._failed), self.max_buffered):
                self._failed.append((record, extra))
                return
        self._drop(record, "buffer_full", exc)

    def _drop(self, record: Record, reason: str, exc: BaseException | None) -> None:
        self.metrics.dropped.labels(self.coin, self.kind, reason).inc()
        with self._lock:
            self.dropped += 1
        log.error(
            "record dropped",
            extra={
                "reason": reason,
                "topic": self.topic,
                "key": record_key(record).decode(),
                "error": repr(exc) if exc else None,
            },
        )

    # --- main thread ---
    def send(self, record: Record, extra_headers: list[Header] | None = None) -> None:
        """Hand one record to Kafka; blocks (with backoff) while Kafka cannot take it.
        ``extra_headers`` follow the standard ones (kept with the record through retries)."""
        key = record_key(record)
        value = record.to_json()
        cache_key = (record.source, record.schema_version)
        headers = self._headers.get(cache_key)
        if headers is None:
            headers = self._headers[cache_key] = record_headers(record)
        if extra_headers:
            headers = headers + extra_headers
        timestamp_ms = event_ms(record) if self.kafka_timestamp == "event" else None
        attempt = 0
        while True:
            started = time.monotonic()
            self.heartbeat(self._max_block_s)
            try:
                future = self.producer.send(
                    self.topic, value=value, key=key, headers=headers, timestamp_ms=timestamp_ms
                )
                break
            except KafkaTimeoutError as exc:
                # Buffer full or no metadata: Kafka is not taking records. Block here so the
                # source is not read further, and retry.
                self._maybe_replace_producer()
                self.metrics.send_errors.labels(self.coin, self.kind, type(exc).__name__).inc()
                self._ok = False
                if self.abandon.is_set():
                    self._drop(record, "shutdown", exc)
                    return
                delay = self.policy.backoff(attempt)
                log.warning(
                    "kafka not accepting records, retrying",
                    extra={"topic": self.topic, "attempt": attempt, "retry_in_s": round(delay, 2)},
                )
                self.heartbeat(delay + self._max_block_s)
                self.abandon.wait(delay)
                attempt += 1
            except Exception as exc:  # not retriable (e.g. record too large): counted and logged
                self.metrics.send_errors.labels(self.coin, self.kind, type(exc).__name__).inc()
                self._drop(record, "rejected", exc)
                return
        with self._lock:
            if self.in_flight == 0:
                self._last_progress = started
            self.in_flight += 1
            wedged = is_wedged(self.in_flight, started - self._last_progress, self.wedge_seconds)
        delivery = _Delivery(self, record, started, extra_headers)
        future.add_callback(delivery.acked)
        future.add_errback(delivery.failed)
        if wedged:
            self._maybe_replace_producer()

    def _maybe_replace_producer(self) -> bool:
        """Replace a wedged producer (see the module doc); True if it was replaced. Main thread."""
        now = time.monotonic()
        if self.producer_factory is None or now < self._next_reset_try:
            return False
        with self._lock:
            waited = now - self._last_progress
            if not is_wedged(self.in_flight, waited, self.wedge_seconds):
                return False
            unacked = self.in_flight
        try:
            fresh = self.producer_factory()
        except Exception as exc:  # Kafka still unreachable: the old one keeps its records
            delay = self.policy.backoff(self._reset_attempt)
            self._reset_attempt += 1
            self._next_reset_try = now + delay
            log.warning(
                "kafka producer wedged, cannot build a new one yet",
                extra={"topic": self.topic, "error": repr(exc), "retry_in_s": round(delay, 2)},
            )
            return False
        old, self.producer = self.producer, fresh
        self._reset_attempt = 0
        with self._lock:
            self.resets += 1
            self.resent_after_reset += unacked
            self._last_progress = time.monotonic()
        log.error(
            "kafka producer wedged, replaced; its unacknowledged records are re-sent"
            " (any it had already written will be duplicated)",
            extra={"topic": self.topic, "unacked": unacked, "waited_s": round(waited, 1)},
        )
        try:
            force_close(old)  # fails its pending futures: they enter the retry buffer
        except Exception as exc:
            log.warning("wedged kafka producer close failed", extra={"error": repr(exc)})
        return True

    @property
    def healthy(self) -> bool:
        """False after a failed send, or while records wait unacknowledged for ``stall_seconds``
        (Kafka unreachable mid-run shows as not ready long before the delivery timeout)."""
        with self._lock:
            stalled = (
                self.in_flight > 0 and time.monotonic() - self._last_progress > self.stall_seconds
            )
            return self._ok and not stalled

    def retry_failed(self) -> int:
        """Re-send records whose delivery failed; returns how many were re-sent."""
        self._maybe_replace_producer()
        with self._lock:
            batch = list(self._failed)
            self._failed.clear()
        for record, extra in batch:
            self.send(record, extra)
        return len(batch)

    @property
    def pending(self) -> int:
        with self._lock:
            return self.in_flight + len(self._failed)

    def flush(self, timeout: float) -> bool:
        """Wait until everything sent so far is acknowledged (retrying failures) or ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            with contextlib.suppress(KafkaTimeoutError):
                # Short waits: a wedged producer never completes, and is only replaced between them.
                self.producer.flush(timeout=min(max(0.1, left), 1.0))
            if self.retry_failed() == 0 and self.pending == 0:
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self, timeout: float) -> int:
        """Flush, then drop (counted) whatever Kafka still has not taken; returns the drop count."""
        ok = self.flush(timeout)
        self.abandon.set()
        if not ok:
            with self._lock:
                left = list(self._failed)
                self._failed.clear()
            for record, _ in left:
                self._drop(record, "shutdown", None)
        try:
            self.producer.close(timeout=5 if ok else 0)
        except Exception as exc:  # closing must not turn a clean stop into a crash
            log.warning("kafka producer close failed", extra={"error": repr(exc)})
        with self._lock:
            lost = self.in_flight + len(self._failed)
            self.in_flight = 0
            self._failed.clear()
        if lost:
            self.metrics.dropped.labels(self.coin, self.kind, "shutdown").inc(lost)
            log.error("records never acknowledged at shutdown", extra={"count": lost})
        return self.dropped + lost
