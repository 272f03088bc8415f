"""The sink's wedge decision: when a producer whose sends never complete is replaced."""

from __future__ import annotations

from coinfeed.producers.sink import is_wedged, wedge_seconds


def test_wedge_limit_is_delivery_timeout_plus_one_request_timeout() -> None:
    assert wedge_seconds({"delivery_timeout_ms": 120_000, "request_timeout_ms": 30_000}) == 150.0


def test_wedged_only_with_records_in_flight_and_no_completion_past_the_limit() -> None:
    assert is_wedged(in_flight=3, since_progress=151.0, limit=150.0)
    assert not is_wedged(in_flight=3, since_progress=150.0, limit=150.0)  # not yet
    assert not is_wedged(in_flight=0, since_progress=10_000.0, limit=150.0)  # idle, not wedged
