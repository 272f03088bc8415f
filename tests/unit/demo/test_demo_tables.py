"""The demo's terminal tables fit an 80-column terminal with the per-platform split."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console

from coinfeed.demo import report
from coinfeed.demo import run as demo


def test_terminal_tables_show_market_and_platform_split_in_80_columns() -> None:
    t = pd.DataFrame(
        [
            {
                "coin": "btc",
                "hour_start": pd.Timestamp("2026-11-28T04:00Z"),
                "close": 87123.45,
                "log_return": 0.001,
                "realized_volatility": 0.002,
                "tweet_count": 250,
                "sentiment_mean": 0.12,
                "x_post_count": 180,
                "x_sentiment_mean": 0.1,
                "bluesky_post_count": 70,
                "bluesky_sentiment_mean": -0.05,
            }
        ]
    )
    out = io.StringIO()
    demo.print_tables(Console(file=out, width=80), report.prepare(t), report)
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text.count("│ 2026-11-28 04:00 │") == 2
    assert "│ 2026-11-28 04:00 │ 87,123.45 │   +0.100 │        0.200 │   250 │    +0.120 │" in text
    assert "│     180 │      +0.100 │            70 │            -0.050 │" in text
