"""The producer's Prometheus metrics, named in coinfeed.metric_names, in one registry per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from coinfeed import metric_names as mn
from coinfeed.metrics import new_registry


def _counter_name(name: str) -> str:
    # prometheus_client appends _total itself.
    return name.removesuffix("_total")


class ProducerMetrics:
    """Every metric labelled with this process's coin, kind and source."""

    def __init__(
        self, coin: str, kind: str, source: str, registry: CollectorRegistry | None = None
    ) -> None:
        self.coin, self.kind, self.source = coin, kind, source
        self.registry = r = registry or new_registry()
        self.records = Counter(
            _counter_name(mn.PRODUCER_RECORDS),
            "Records acknowledged by Kafka.",
            ["coin", "kind", "source"],
            registry=r,
        )
        self.send_errors = Counter(
            _counter_name(mn.PRODUCER_SEND_ERRORS),
            "Failed send attempts to Kafka (retried unless counted as dropped).",
            ["coin", "kind", "error"],
            registry=r,
        )
        self.dropped = Counter(
            _counter_name(mn.PRODUCER_RECORDS_DROPPED),
            "Records given up on (never acknowledged by Kafka).",
            ["coin", "kind", "reason"],
            registry=r,
        )
        self.source_requests = Counter(
            _counter_name(mn.PRODUCER_SOURCE_REQUESTS),
            "Requests to the source by outcome.",
            ["coin", "kind", "source", "outcome"],
            registry=r,
        )
        self.skipped = Counter(
            _counter_name(mn.PRODUCER_RECORDS_SKIPPED),
            "Source items skipped as malformed, by reason.",
            ["coin", "kind", "source", "reason"],
            registry=r,
        )
        self.ratelimit_remaining = Gauge(
            mn.PRODUCER_RATELIMIT_REMAINING,
            "Requests left in the source's current rate-limit window.",
            ["coin", "kind", "source"],
            registry=r,
        )
        self.ratelimit_reset = Gauge(
            mn.PRODUCER_RATELIMIT_RESET,
            "When the source's rate-limit window resets (epoch seconds).",
            ["coin", "kind", "source"],
            registry=r,
        )
        self.newest_record = Gauge(
            mn.PRODUCER_NEWEST_RECORD,
            "Event time of the newest record acknowledged (epoch seconds); age = time() - this.",
            ["coin", "kind"],
            registry=r,
        )
        self.send_latency = Histogram(
            mn.PRODUCER_SEND_LATENCY,
            "Seconds from send() to Kafka's acknowledgement.",
            ["coin", "kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.ready = Gauge(
            mn.PRODUCER_UP,
            "1 when Kafka and the source answer.",
            ["coin", "kind"],
            registry=r,
        )

        # Streaming sources only (no samples appear until a stream source uses them).
        stream = ["coin", "kind", "source"]
        self.stream_events = Counter(
            _counter_name(mn.PRODUCER_STREAM_EVENTS),
            "Frames received from the stream, by event kind (commit_create, identity, ...).",
            [*stream, "event"],
            registry=r,
        )
        self.posts_matched = Counter(
            _counter_name(mn.PRODUCER_POSTS_MATCHED),
            "Posts that passed our keyword and language filter.",
            stream,
            registry=r,
        )
        self.stream_dropped = Counter(
            _counter_name(mn.PRODUCER_STREAM_DROPPED),
            "Frames seen but not sent, by reason (no_match, language, duplicate, malformed ...).",
            [*stream, "reason"],
            registry=r,
        )
        self.reconnects = Counter(
            _counter_name(mn.PRODUCER_STREAM_RECONNECTS),
            "Stream connections lost or refused, by reason.",
            [*stream, "reason"],
            registry=r,
        )
        self.stream_lag = Gauge(
            mn.PRODUCER_STREAM_LAG,
            "Seconds between now and the newest event time received from the stream.",
            stream,
            registry=r,
        )
        self.stream_connected = Gauge(
            mn.PRODUCER_STREAM_CONNECTED,
            "1 while the stream connection is open.",
            stream,
            registry=r,
        )

    def request(self, outcome: str) -> None:
        self.source_requests.labels(self.coin, self.kind, self.source, outcome).inc()

    def skip(self, reason: str) -> None:
        self.skipped.labels(self.coin, self.kind, self.source, reason).inc()

    def rate_limit(self, remaining: int | None, reset: float | None) -> None:
        if remaining is not None:
            self.ratelimit_remaining.labels(self.coin, self.kind, self.source).set(remaining)
        if reset is not None:
            self.ratelimit_reset.labels(self.coin, self.kind, self.source).set(reset)
