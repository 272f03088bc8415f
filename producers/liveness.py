"""Liveness of a producer's work loop: ``/healthz`` fails when the loop stops making progress.

The loop (and everything it waits on: source requests, rate-limit sleeps, Kafka back-pressure)
calls :meth:`LoopWatchdog.beat` with how long it is about to wait on purpose. The loop is stuck
when no beat came within that planned wait plus ``stall_seconds`` (a few poll intervals): a
request without a timeout, a dead lock, a blocked socket. A long planned wait, such as sleeping
until an X rate-limit window resets, is not a hang, so it never fails liveness.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def stall_limit(poll_interval: float, factor: float = 3.0, floor: float = 60.0) -> float:
    """Seconds without progress after which the loop counts as stuck: ``factor`` poll intervals,
    at least ``floor`` (one request may legitimately take tens of seconds)."""
    return max(floor, factor * poll_interval)


class LoopWatchdog:
    def __init__(self, stall_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_seconds = stall_seconds
        self.clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._last_beat = now
        self._deadline = now + stall_seconds

    def beat(self, next_within: float = 0.0) -> None:
        """Progress now; the next beat is due within ``next_within`` (a planned wait) + the limit."""
        now = self.clock()
        with self._lock:
            self._last_beat = now
            self._deadline = now + max(0.0, next_within) + self.stall_seconds

    def alive(self) -> bool:
        with self._lock:
            return self.clock() <= self._deadline

    def detail(self) -> str:
        with self._lock:
            since = self.clock() - self._last_beat
            allowed = self._deadline - self._last_beat
        return f"work loop made no progress for {since:.0f} s (allowed {allowed:.0f} s)"
