from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coinfeed.spark.hours import (
    HourRangeError,
    ReadWindow,
    gap_hours,
    hour_range,
    is_closed,
    lookback_hours,
    parse_hour,
    plan_hours,
    read_windows,
)
from coinfeed.spark.schema import record_struct


def h(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC)


def test_parse_hour_accepts_hour_labels_and_instants() -> None:
    assert parse_hour("2024-01-01T05") == h(1, 5)
    assert parse_hour("2024-01-01T05:42:10Z") == h(1, 5)
    assert parse_hour("2024-01-01T07:30+02:00") == h(1, 5)
    with pytest.raises(HourRangeError, match="invalid hour 'tomorrow'"):
        parse_hour("tomorrow")


def test_closed_hours_wait_for_the_grace_period() -> None:
    assert not is_closed(h(1, 5), h(1, 6, 4))
    assert is_closed(h(1, 5), h(1, 6, 5))
    assert lookback_hours(h(1, 6, 5), 3) == [h(1, 3), h(1, 4), h(1, 5)]
    assert lookback_hours(h(1, 6, 4), 1) == [h(1, 4)]
    with pytest.raises(HourRangeError, match="at least 1"):
        lookback_hours(h(1, 6), 0)


def test_hour_range_is_inclusive_and_ordered() -> None:
    assert hour_range(h(1, 22), h(2, 1)) == [h(1, 22), h(1, 23), h(2, 0), h(2, 1)]
    with pytest.raises(HourRangeError, match="before --from"):
        hour_range(h(1, 5), h(1, 4))


def test_gaps_are_closed_hours_inside_retention_without_a_partition() -> None:
    now = h(2, 10, 7)
    existing = [h(2, 9) - timedelta(hours=i) for i in range(23) if i not in (3, 20)]
    # Newest closed hour is 09; retention reaches back to 10:07 yesterday, so 11:00 is the oldest
    # hour whose whole window is still in Kafka.
    assert gap_hours(now, existing) == [h(1, 13), h(2, 6)]
    assert gap_hours(now, existing, retention=timedelta(hours=5)) == [h(2, 6)]


def test_plan_merges_requested_and_gap_hours_and_skips_open_ones() -> None:
    todo, skipped = plan_hours(
        [h(1, 5), h(1, 6)], [h(1, 2), h(1, 5)], h(1, 7, 0), timedelta(minutes=5)
    )
    assert todo == [h(1, 2), h(1, 5)]
    assert skipped == [h(1, 6)]


def test_read_windows_merge_contiguous_hours() -> None:
    five = timedelta(minutes=5)
    assert read_windows([h(1, 3), h(1, 1), h(1, 2), h(1, 7)], five) == [
        ReadWindow(h(1, 1), h(1, 4, 5)),
        ReadWindow(h(1, 7), h(1, 8, 5)),
    ]
    assert ReadWindow(h(1, 0), h(1, 1)).start_ms == 1704067200000


def test_struct_types_are_derived_from_the_shared_schemas() -> None:
    from coinfeed.schemas import PriceTick, Tweet, record_fields

    for kind, model in (("prices", PriceTick), ("tweets", Tweet)):
        struct = record_struct(kind)  # type: ignore[arg-type]
        assert struct.fieldNames() == [f.name for f in record_fields(model)]
    assert record_struct("prices")["price"].dataType.simpleString() == "double"
    assert record_struct("prices")["volume"].nullable
    assert not record_struct("prices")["price"].nullable
    assert record_struct("tweets")["hashtags"].dataType.simpleString() == "array<string>"
    assert record_struct("tweets")["created_at"].dataType.simpleString() == "timestamp"
