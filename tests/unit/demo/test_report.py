"""The demo report's pure functions on a small hand-made hourly table."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from coinfeed.demo import report

H0 = pd.Timestamp("2024-03-01T00:00:00Z")


def hour(i: int) -> pd.Timestamp:
    return H0 + pd.Timedelta(hours=i)


def row(
    coin: str, i: int, close: float, ret: float, sent: float | None, tweets: int
) -> dict[str, object]:
    return {
        "coin": coin,
        "date": hour(i).strftime("%Y-%m-%d"),
        "hour": hour(i).hour,
        "hour_start": hour(i),
        "open": close,
        "close": close,
        "log_return": ret,
        "realized_volatility": abs(ret) / 2,
        "tweet_count": tweets,
        "sentiment_mean": sent,
    }


def table() -> pd.DataFrame:
    rows = [
        # btc: five contiguous hours
        row("btc", 0, 100.0, 0.00, 0.1, 10),
        row("btc", 1, 101.0, 0.01, 0.2, 12),
        row("btc", 2, 103.0, 0.02, 0.3, 8),
        row("btc", 3, 106.0, 0.03, 0.4, 5),
        row("btc", 4, 111.0, 0.05, 0.5, 20),
        # eth: hour 2 missing, hour 4 without tweets (sentiment undefined)
        row("eth", 0, 10.0, 0.00, -0.2, 3),
        row("eth", 1, 10.5, -0.04, 0.0, 4),
        row("eth", 3, 10.2, 0.02, 0.1, 1),
        row("eth", 4, 10.4, 0.01, None, 0),
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=7)  # order must not matter


def pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def test_prepare_sorts_and_pairs_each_hour_with_the_next_contiguous_hour() -> None:
    p = report.prepare(table())
    assert list(p["coin"]) == ["btc"] * 5 + ["eth"] * 4
    assert list(p["hour_start"]) == [hour(i) for i in (0, 1, 2, 3, 4, 0, 1, 3, 4)]
    nxt = p["next_log_return"].tolist()
    assert nxt[:4] == [0.01, 0.02, 0.03, 0.05]
    assert math.isnan(nxt[4])  # btc's last hour has no next hour
    assert nxt[5] == -0.04
    assert math.isnan(nxt[6])  # eth hour 2 is missing: hour 1 has no next return
    assert nxt[7] == 0.01
    assert math.isnan(nxt[8])


def test_correlation_of_sentiment_with_next_return() -> None:
    corr = {c.coin: c for c in report.sentiment_next_return_correlation(report.prepare(table()))}
    assert corr["btc"].pairs == 4
    # corr([1,2,3,4], [1,2,3,5]) = 6.5 / sqrt(5 * 8.75)
    assert corr["btc"].pearson == pytest.approx(6.5 / math.sqrt(43.75), abs=1e-12)
    # eth: (-0.2 -> -0.04) and (0.1 -> 0.01) only; hour 1's next hour is missing
    assert corr["eth"].pairs == 2 and corr["eth"].pearson is None  # too few pairs
    assert corr["all"].pairs == 6
    expected = pearson([0.1, 0.2, 0.3, 0.4, -0.2, 0.1], [0.01, 0.02, 0.03, 0.05, -0.04, 0.01])
    assert corr["all"].pearson == pytest.approx(expected, abs=1e-12)
    assert list(corr) == ["btc", "eth", "all"]


def test_constant_sentiment_has_no_correlation() -> None:
    t = pd.DataFrame([row("btc", i, 100.0 + i, 0.01 * i, 0.3, 1) for i in range(6)])
    (btc, all_) = report.sentiment_next_return_correlation(report.prepare(t))
    assert btc.pairs == 5 and btc.pearson is None and all_.pearson is None


def test_missing_column_is_named() -> None:
    with pytest.raises(report.ReportError, match="sentiment_mean"):
        report.prepare(table().drop(columns=["sentiment_mean"]))


def test_table_rows_format_each_hour() -> None:
    # a table written before the per-platform columns: no posts per platform, no sentiment
    rows = report.table_rows(report.prepare(table()), "eth")
    legacy = ("0", "-", "0", "-")
    assert rows == [
        ("2024-03-01 00:00", "10.00", "+0.000", "0.000", "3", "-0.200", *legacy),
        ("2024-03-01 01:00", "10.50", "-4.000", "2.000", "4", "+0.000", *legacy),
        ("2024-03-01 03:00", "10.20", "+2.000", "1.000", "1", "+0.100", *legacy),
        ("2024-03-01 04:00", "10.40", "+1.000", "0.500", "0", "-", *legacy),
    ]
    assert report.TABLE_HEADER[4:] == (
        "posts",
        "sentiment",
        "X posts",
        "X sentiment",
        "Bluesky posts",
        "Bluesky sentiment",
    )


def test_table_and_report_show_the_platform_split(tmp_path: Path) -> None:
    t = table()
    t["x_post_count"] = t["tweet_count"] - t["tweet_count"] // 3
    t["bluesky_post_count"] = t["tweet_count"] // 3
    t["x_sentiment_mean"] = t["sentiment_mean"]
    t["bluesky_sentiment_mean"] = [0.25 if n >= 3 else None for n in t["tweet_count"]]
    p = report.prepare(t)
    rows = report.table_rows(p, "eth")
    assert rows[0][4:] == ("3", "-0.200", "2", "-0.200", "1", "+0.250")
    assert rows[3][4:] == ("0", "-", "0", "-", "0", "-")
    page = report.write_report(t, tmp_path).html.read_text()
    assert "<th>Bluesky posts</th>" in page and "<td>+0.250</td>" in page


def test_write_report_writes_png_html_and_csv(tmp_path: Path) -> None:
    files = report.write_report(table(), tmp_path / "out")
    assert files.png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    page = files.html.read_text()
    assert "data:image/png;base64," in page
    assert page.count("<tr><td>2024-03-01 ") == 9  # every coin-hour is in the page
    assert "<td>btc</td><td>4</td><td>+0.9827</td>" in page
    csv = pd.read_csv(files.csv)
    assert len(csv) == 9 and set(csv["coin"]) == {"btc", "eth"}


def test_empty_table_is_a_clear_error() -> None:
    empty = table().iloc[0:0]
    p = report.prepare(empty)
    with pytest.raises(report.ReportError, match="empty"):
        report.render_png(p, report.sentiment_next_return_correlation(p))


def test_load_hourly_reads_the_partitioned_lake(tmp_path: Path) -> None:
    t = table()
    t["hour_start"] = t["hour_start"].dt.tz_convert(None)  # Spark writes timestamps without tz
    t.to_parquet(tmp_path / "hourly", partition_cols=["coin", "date", "hour"])
    loaded = report.prepare(report.load_hourly(tmp_path))
    assert len(loaded) == 9 and list(loaded["coin"].unique()) == ["btc", "eth"]
    with pytest.raises(report.ReportError, match="no hourly table"):
        report.load_hourly(tmp_path / "nothing")
