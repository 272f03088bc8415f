"""The operator's Prometheus metrics (names from ``coinfeed.metric_names``)."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from coinfeed import metric_names as mn


def _base(name: str, suffix: str) -> str:
    # prometheus_client appends _total to counters itself.
    return name[: -len(suffix)] if name.endswith(suffix) else name


def _split(key: str) -> tuple[str, str]:
    """``namespace/name`` -> (namespace, name)."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.reconciles = Counter(
            _base(mn.OPERATOR_RECONCILES, "_total"),
            "CoinFeed reconciles by result",
            ["result"],
            registry=registry,
        )
        self.errors = Counter(
            _base(mn.OPERATOR_RECONCILE_ERRORS, "_total"),
            "Failed reconciles by reason",
            ["reason"],
            registry=registry,
        )
        self.duration = Histogram(
            mn.OPERATOR_RECONCILE_DURATION,
            "Seconds one CoinFeed reconcile took",
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.feeds = Gauge(
            mn.OPERATOR_FEEDS, "CoinFeeds by readiness", ["ready"], registry=registry
        )
        self.feed_ready = Gauge(
            mn.OPERATOR_FEED_READY,
            "1 while the CoinFeed is Ready, else 0",
            ["namespace", "feed"],
            registry=registry,
        )
        self._ready: dict[str, bool] = {}
        self._lock = threading.Lock()
        for result in ("ok", "error", "not_supported"):
            self.reconciles.labels(result=result)

    def observe(
        self, key: str, result: str, error_reason: str, seconds: float, ready: bool
    ) -> None:
        self.reconciles.labels(result=result).inc()
        if error_reason:
            self.errors.labels(reason=error_reason).inc()
        self.duration.observe(seconds)
        self.set_ready(key, ready)

    def set_ready(self, key: str, ready: bool) -> None:
        with self._lock:
            self._ready[key] = ready
            self.feed_ready.labels(*_split(key)).set(1 if ready else 0)
            self._publish()

    def forget(self, key: str) -> None:
        with self._lock:
            if self._ready.pop(key, None) is not None:
                self.feed_ready.remove(*_split(key))
            self._publish()

    def _publish(self) -> None:
        ready = sum(self._ready.values())
        self.feeds.labels(ready="true").set(ready)
        self.feeds.labels(ready="false").set(len(self._ready) - ready)
