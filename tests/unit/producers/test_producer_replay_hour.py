"""Whole-hour rebase: the replayed hours keep each record's minute, and the file's last hour
becomes the newest closed hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coinfeed import producer_env as penv
from coinfeed.producers.replay import rebase_shift
from coinfeed.producers.settings import parse


def test_hour_rebase_moves_whole_hours_to_the_hour_before_now() -> None:
    span = (datetime(2025, 3, 3, 0, 0, tzinfo=UTC), datetime(2025, 3, 4, 23, 59, tzinfo=UTC))
    now = datetime(2026, 11, 28, 10, 7, 31, tzinfo=UTC)
    shift = rebase_shift("hour", span, now)
    assert shift % timedelta(hours=1) == timedelta(0)
    assert span[1] + shift == datetime(2026, 11, 28, 9, 59, tzinfo=UTC)
    # A price file of the same hours ends with a tick stamped on the closing boundary (00:00, the
    # close of the last minute): it moves exactly as far, so the two streams stay aligned.
    prices = (datetime(2025, 3, 3, 0, 1, tzinfo=UTC), datetime(2025, 3, 5, 0, 0, tzinfo=UTC))
    assert rebase_shift("hour", prices, now) == shift
    # "end" (kept as it was) puts the last record at now, splitting hours differently.
    assert span[1] + rebase_shift("end", span, now) == now


def test_environment_choices_are_checked_by_name() -> None:
    env = {
        penv.COIN: "btc",
        penv.KAFKA_BOOTSTRAP: "k:9092",
        penv.REPLAY_FILE: "/x.jsonl",
        penv.REPLAY_REBASE: "hours",
    }
    with pytest.raises(SystemExit, match=r"COINFEED_REPLAY_REBASE='hours'.*none, start, end, hour"):
        parse(["prices", "--source", "replay"], env)
    s = parse(["prices", "--source", "replay"], {**env, penv.REPLAY_REBASE: "hour"})
    assert s.rebase == "hour"
    # A flag still wins over the environment.
    s = parse(
        ["prices", "--source", "replay", "--rebase", "none"], {**env, penv.REPLAY_REBASE: "hour"}
    )
    assert s.rebase == "none"
