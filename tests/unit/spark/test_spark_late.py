"""Late data: the lateness bound, read windows, amended hours and their reporting (pure parts)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from coinfeed.hourly_status import parse
from coinfeed.spark.hours import (
    ReadWindow,
    lateness_bound,
    oldest_retained_hour,
    read_windows,
    subtract_windows,
)
from coinfeed.spark.summary import CoinRun, all_rejected, termination_message

GRACE = timedelta(minutes=5)


def at(hh: int, mm: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 1, day, hh, mm, tzinfo=UTC)


def test_lateness_bound_never_beyond_retention_nor_below_grace() -> None:
    h = timedelta(hours=1)
    assert lateness_bound(24 * h, 72 * h, GRACE) == 24 * h
    assert lateness_bound(24 * h, 24 * h, GRACE) == 23 * h  # the hour itself must still be in Kafka
    assert lateness_bound(0 * h, 24 * h, GRACE) == GRACE


def test_read_windows_reach_the_bound_but_not_past_now() -> None:
    bound = timedelta(hours=3)
    assert read_windows([at(0)], GRACE, bound, now=at(2, 10)) == [ReadWindow(at(0), at(2, 10))]
    assert read_windows([at(0)], GRACE, bound, now=at(9)) == [ReadWindow(at(0), at(4))]
    assert read_windows([at(0)], GRACE) == [ReadWindow(at(0), at(1, 5))]


def test_subtract_windows_leaves_only_what_was_not_read() -> None:
    have = [ReadWindow(at(3), at(4, 40))]
    assert subtract_windows([ReadWindow(at(0), at(4, 40))], have) == [ReadWindow(at(0), at(3))]
    assert subtract_windows([ReadWindow(at(3, 10), at(4))], have) == []
    split = subtract_windows([ReadWindow(at(0), at(6))], have)
    assert split == [ReadWindow(at(0), at(3)), ReadWindow(at(4, 40), at(6))]


def test_oldest_retained_hour() -> None:
    assert oldest_retained_hour(at(4, 40, day=2), timedelta(hours=24)) == at(5)


def test_amended_hours_and_late_records_are_reported_per_coin() -> None:
    run = CoinRun(coin="btc", hours=[at(3)], amended_hours=[at(0)], late_records=8)
    assert json.loads(run.report())["amended_hours"] == ["2024-01-01T00"]
    message = parse(termination_message([run, CoinRun(coin="eth", hours=[at(3)])], {}))
    assert message is not None
    assert message["coins"]["btc"] == {
        "ok": True,
        "hours": 1,
        "newest_hour": None,
        "amended": 1,
        "late": 8,
    }
    assert message["coins"]["eth"] == {"ok": True, "hours": 1, "newest_hour": None}


def test_a_feed_whose_every_record_was_rejected_fails() -> None:
    bad = CoinRun(coin="x", rows_read={"prices": 3}, quarantined=3, first_rejection="why")
    bad.rows_written = {"hourly": 0}
    assert all_rejected(bad) == "every record read was rejected: 3 quarantined (first: why)"
    fine = CoinRun(coin="y", rows_read={"prices": 3}, quarantined=1, rows_written={"hourly": 1})
    assert all_rejected(fine) is None
    assert all_rejected(CoinRun(coin="z")) is None  # nothing read: an empty hour is no failure
