"""Bluesky through Jetstream: a WebSocket (the ``websockets`` library's sync client) to
``/subscribe?wantedCollections=app.bsky.feed.post&cursor=<time_us>``, filtered on our side.

Behaviour of a long-running stream consumer:

- Always connects with a cursor: after a restart, slightly before the newest Bluesky post already
  in the topic (``resume.py``); with none there, ``lookback`` before now (logged, never silently
  "now"). After a lost connection: ``cursor_margin`` before the newest event it handed on.
  Events seen twice (the margin, a replay) are dropped by (post id, commit rev).
- Lost or refused connections are retried with full-jitter exponential backoff, rotating through
  the configured endpoints; a connection that delivers nothing for ``stall_seconds`` (Jetstream
  sends account/identity events all the time) is dropped and reopened, as is one whose pings go
  unanswered (``websockets`` keep-alive).
- Malformed frames are counted (``stream_dropped{reason}`` and ``records_skipped{reason}``) and
  logged once each with their reason by the runner; never fatal.
- Compression: permessage-deflate (RFC 7692), negotiated by ``websockets`` and accepted by
  Jetstream's /subscribe. Jetstream's own ``compress=true`` zstd needs its custom dictionary,
  which no Python package ships; it is not used.
- A slow consumer is safe: ``websockets`` keeps at most ``max_queue`` frames, then stops reading
  (TCP back-pressure); if Jetstream drops us for being slow, we reconnect at the cursor.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from coinfeed.producers import bluesky
from coinfeed.producers.batch import Batch
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.retry import RetryPolicy

log = logging.getLogger("coinfeed.producers.jetstream")

# Bluesky's public Jetstream instances (cursors are per instance: we rewind by the margin when
# switching, and drop what we see twice).
PUBLIC_ENDPOINTS: Final = (
    "wss://jetstream1.us-east.bsky.network",
    "wss://jetstream2.us-east.bsky.network",
    "wss://jetstream1.us-west.bsky.network",
    "wss://jetstream2.us-west.bsky.network",
)
MAX_FRAME_BYTES: Final = 4 * 1024 * 1024  # posts are a few KB; Jetstream skips larger events

Connect = Callable[..., Any]


def subscribe_url(endpoint: str, cursor_us: int) -> str:
    """``wss://host`` or ``wss://host/subscribe`` -> the full subscribe URL with our query."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"invalid Jetstream endpoint {endpoint!r}: expected wss://host[:port]")
    path = parts.path.rstrip("/") or "/subscribe"
    query = urlencode(
        {
            "wantedCollections": bluesky.POST_COLLECTION,
            "cursor": str(cursor_us),
            "maxMessageSizeBytes": str(MAX_FRAME_BYTES),
        }
    )
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


class RecentKeys:
    """Dedup keys of posts handed on, kept for ``window_us`` of event time (bounded memory)."""

    def __init__(self, window_us: int) -> None:
        self.window_us = window_us
        self._keys: OrderedDict[str, int] = OrderedDict()

    def seen(self, key: str) -> bool:
        return key in self._keys

    def add(self, key: str, time_us: int) -> None:
        self._keys[key] = time_us
        self._keys.move_to_end(key)
        horizon = time_us - self.window_us
        while self._keys:
            first = next(iter(self._keys.values()))
            if first >= horizon:
                break
            self._keys.popitem(last=False)

    def __len__(self) -> int:
        return len(self._keys)


class JetstreamSource:
    """``poll()`` reads frames for up to ``batch_seconds`` (or ``max_batch`` frames) and returns
    the matching posts; ``next_wait()`` is 0 while connected, the backoff while not."""

    name = "bluesky"
    done = False

    def __init__(
        self,
        coin: str,
        endpoints: Sequence[str],
        matcher: bluesky.Matcher,
        metrics: ProducerMetrics,
        policy: RetryPolicy,
        *,
        cursor_margin_s: float = 10.0,
        stall_seconds: float = 60.0,
        batch_seconds: float = 1.0,
        max_batch: int = 5000,
        max_queue: int = 64,
        connect: Connect | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not endpoints:
            raise ValueError("no Jetstream endpoint configured")
        for e in endpoints:
            subscribe_url(e, 0)  # fail at start-up on a bad endpoint
        if connect is None:
            from websockets.sync.client import connect as ws_connect

            connect = ws_connect
        self.coin = coin
        self.endpoints = list(endpoints)
        self.matcher = matcher
        self.metrics = metrics
        self.policy = policy
        self.margin_us = int(cursor_margin_s * 1_000_000)
        self.stall_seconds = stall_seconds
        self.batch_seconds = batch_seconds
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._connect_fn = connect
        self.clock = clock
        self.handles = bluesky.Handles()
        self.recent = RecentKeys(window_us=max(self.margin_us * 4, 600_000_000))
        self.cursor_us: int | None = None  # where the next connection starts
        self.newest_us = 0  # newest event time handed on
        self.endpoint_index = 0
        self._conn: Any = None
        self._failures = 0
        self._wait = 0.0
        self._last_frame = 0.0
        self._why = "not connected yet"
        labels = (coin, metrics.kind, self.name)
        self._events = {e: metrics.stream_events.labels(*labels, e) for e in bluesky.EVENTS}
        self._matched = metrics.posts_matched.labels(*labels)
        self._connected = metrics.stream_connected.labels(*labels)
        self._connected.set(0)
        metrics.stream_lag.labels(*labels).set_function(self.lag_seconds)

    # --- resume -----------------------------------------------------------------------------
    def start_from(self, cursor_us: int, seen: Sequence[str] = ()) -> None:
        """Where to connect first, and the dedup keys of posts already in the topic."""
        self.cursor_us = cursor_us
        for key in seen:
            self.recent.add(key, cursor_us)

    # --- Source protocol --------------------------------------------------------------------
    def ready(self) -> bool:
        return self._conn is not None

    def not_ready_reason(self) -> str:
        return "" if self._conn is not None else f"not connected to Jetstream ({self._why})"

    def next_wait(self) -> float:
        return 0.0 if self._conn is not None else self._wait

    def lag_seconds(self) -> float:
        return self.clock() - self.newest_us / 1e6 if self.newest_us else math.nan

    def close(self) -> None:
        self._disconnect()

    def poll(self) -> Batch:
        if self._conn is None and not self._open():
            return Batch()
        out = Batch()
        deadline = time.monotonic() + self.batch_seconds
        frames = 0
        while frames < self.max_batch:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                raw = self._conn.recv(timeout=left, decode=False)
            except TimeoutError:
                if time.monotonic() - self._last_frame > self.stall_seconds:
                    self._lost("stalled", f"no frame for {self.stall_seconds:.0f} s")
                break
            except ConnectionClosedOK as exc:
                self._lost("server_closed", _closed(exc))
                break
            except ConnectionClosed as exc:
                self._lost("connection_error", _closed(exc))
                break
            except OSError as exc:
                self._lost("connection_error", repr(exc))
                break
            frames += 1
            self._last_frame = time.monotonic()
            self._handle(raw, out)
        if out.records or frames:
            # Everything read is now the runner's to send: a reconnect resumes after it.
            self.cursor_us = max(self.cursor_us or 0, self.newest_us - self.margin_us)
        return out

    # --- internals --------------------------------------------------------------------------
    def _handle(self, raw: bytes | str, out: Batch) -> None:
        data, bad = bluesky.decode_frame(raw)
        outcome = (
            bad if data is None else bluesky.classify(self.coin, data, self.matcher, self.handles)
        )
        assert outcome is not None
        self._events[outcome.event].inc()
        if outcome.time_us is not None and outcome.time_us > self.newest_us:
            self.newest_us = outcome.time_us
        if outcome.skip is not None:
            self._drop(outcome.skip.reason)
            out.skips.append(outcome.skip)
            return
        if outcome.drop is not None:
            self._drop(outcome.drop)
            return
        record = outcome.record
        if record is None:
            return
        self._matched.inc()
        key = bluesky.dedup_key(record.id, outcome.rev)
        if self.recent.seen(key):
            self._drop(bluesky.DUPLICATE)
            return
        self.recent.add(key, outcome.time_us or self.newest_us)
        out.records.append(record)
        out.headers.append(outcome.headers)  # every record gets its list: they stay aligned

    def _drop(self, reason: str) -> None:
        self.metrics.stream_dropped.labels(self.coin, self.metrics.kind, self.name, reason).inc()

    def _open(self) -> bool:
        if self.cursor_us is None:
            raise RuntimeError("JetstreamSource.start_from() must set the cursor first")
        endpoint = self.endpoints[self.endpoint_index]
        url = subscribe_url(endpoint, self.cursor_us)
        try:
            self._conn = self._connect_fn(
                url,
                open_timeout=10,
                close_timeout=2,
                max_size=MAX_FRAME_BYTES,
                max_queue=self.max_queue,
                compression="deflate",
                user_agent_header="coinfeed-producer (Bluesky Jetstream consumer)",
                # The connection object itself (we reconnect on our own terms, with a cursor),
                # not websockets 17's future iterator-of-connections behaviour.
                legacy=True,
            )
        except Exception as exc:  # refused, TLS, HTTP error on upgrade, timeout
            self._lost("connect_failed", _short(exc), endpoint=endpoint)
            return False
        self._failures = 0
        self._last_frame = time.monotonic()
        self._connected.set(1)
        self.metrics.request("ok")
        log.info(
            "connected to Jetstream",
            extra={"endpoint": endpoint, "cursor_us": self.cursor_us, "lag_s": self._cursor_age()},
        )
        return True

    def _cursor_age(self) -> float | None:
        return round(self.clock() - self.cursor_us / 1e6, 1) if self.cursor_us else None

    def _lost(self, reason: str, detail: str, endpoint: str | None = None) -> None:
        """Count, log, close; back off and move to the next endpoint."""
        endpoint = endpoint or self.endpoints[self.endpoint_index]
        self._why = f"{reason}: {detail}"
        self._disconnect()
        self.metrics.reconnects.labels(self.coin, self.metrics.kind, self.name, reason).inc()
        if reason == "connect_failed":
            self.metrics.request("network_error")
        self._wait = self.policy.backoff(self._failures)
        self._failures += 1
        self.endpoint_index = (self.endpoint_index + 1) % len(self.endpoints)
        log.warning(
            "Jetstream connection lost, reconnecting",
            extra={
                "reason": reason,
                "detail": detail,
                "endpoint": endpoint,
                "next_endpoint": self.endpoints[self.endpoint_index],
                "retry_in_s": round(self._wait, 2),
                "cursor_us": self.cursor_us,
            },
        )

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        self._connected.set(0)
        if conn is not None:
            # Closing a broken connection may fail: it is gone either way.
            with contextlib.suppress(Exception):
                conn.close()


def _closed(exc: Any) -> str:
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is None:
        return "closed without a close frame"
    return f"close code {rcvd.code} {rcvd.reason!r}"


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."
