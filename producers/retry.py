"""Pure retry decisions: exponential backoff with full jitter, and waits from rate-limit headers."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """``base`` doubles per attempt up to ``cap``; every wait (also rate-limit waits) <= ``max_wait``."""

    base: float = 1.0
    cap: float = 60.0
    max_wait: float = 900.0
    max_attempts: int = 8

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempt)]."""
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt)), self.max_wait)
        return (rng or random).uniform(0.0, ceiling)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


@dataclass(frozen=True)
class RateLimit:
    limit: int | None
    remaining: int | None
    reset: float | None  # epoch seconds


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit:
    """``x-rate-limit-limit/-remaining/-reset`` (X API v2); missing or garbled values are None."""

    def num(name: str) -> int | None:
        raw = _header(headers, name)
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return None

    reset = num("x-rate-limit-reset")
    return RateLimit(
        num("x-rate-limit-limit"),
        num("x-rate-limit-remaining"),
        float(reset) if reset is not None else None,
    )


def rate_limit_wait(rl: RateLimit, now: float, policy: RetryPolicy, limited: bool) -> float:
    """Seconds to wait before the next request.

    ``limited`` is True after a 429. When the window is spent (remaining == 0) or after a 429 we
    wait until the reset time (+1 s, the reset is whole seconds), bounded by ``policy.max_wait``;
    a 429 without a usable reset header falls back to the cap of the backoff.
    """
    if not limited and (rl.remaining is None or rl.remaining > 0):
        return 0.0
    if rl.reset is None:
        return min(policy.cap, policy.max_wait) if limited else 0.0
    return max(0.0, min(policy.max_wait, rl.reset - now + 1.0))


def retry_after(headers: Mapping[str, str], policy: RetryPolicy) -> float | None:
    """A ``Retry-After`` header in seconds (CoinGecko, Binance send it with 429), bounded."""
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, min(policy.max_wait, float(raw)))
    except ValueError:
        return None
