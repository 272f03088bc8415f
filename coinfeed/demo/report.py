"""The demo's report: pure functions of the hourly table (one row per coin and hour).

``load_hourly`` is the only reader (the Parquet lake's ``hourly/`` dataset); everything else takes
a pandas DataFrame, so the figures are unit-tested on tiny tables without Spark or Kafka.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

# The columns the report reads (the hourly job writes more).
COLUMNS: Final = (
    "coin",
    "hour_start",
    "close",
    "log_return",
    "realized_volatility",
    "tweet_count",
    "sentiment_mean",
)
# Per-platform columns (schema v2). Hourly tables written before them lack these: read as no posts.
PLATFORMS: Final = ("x", "bluesky")
PLATFORM_LABELS: Final = {"x": "X", "bluesky": "Bluesky"}
PLATFORM_COLUMNS: Final = tuple(
    c for p in PLATFORMS for c in (f"{p}_post_count", f"{p}_sentiment_mean")
)
PLATFORM_COLORS: Final = ("tab:gray", "tab:cyan")
MIN_PAIRS: Final = 3  # fewer (sentiment, next return) pairs make a correlation meaningless


class ReportError(ValueError):
    """The hourly table cannot make a report; the message names what is missing."""


def load_hourly(lake: Path) -> pd.DataFrame:
    """The ``hourly/`` dataset of the lake (partitions coin=/date=/hour=) as a DataFrame."""
    path = lake / "hourly"
    if not path.is_dir():
        raise ReportError(f"no hourly table at {path}: has the hourly job run?")
    df = pd.read_parquet(path)
    # Partition columns come back as categories; the report wants plain strings.
    df["coin"] = df["coin"].astype(str)
    return df


def prepare(hourly: pd.DataFrame) -> pd.DataFrame:
    """The report's columns, sorted by coin and hour, with ``next_log_return``: the coin's
    return in the following hour (NaN when that hour is missing from the table)."""
    missing = [c for c in COLUMNS if c not in hourly.columns]
    if missing:
        raise ReportError(f"hourly table lacks column(s) {', '.join(missing)}")
    df = hourly.loc[:, list(COLUMNS)].copy()
    for c in PLATFORM_COLUMNS:
        df[c] = hourly[c] if c in hourly.columns else (0 if c.endswith("_count") else float("nan"))
    df["hour_start"] = pd.to_datetime(df["hour_start"], utc=True)
    df["coin"] = df["coin"].astype(str)
    means = [c for c in PLATFORM_COLUMNS if c.endswith("_mean")]
    for c in ("close", "log_return", "realized_volatility", "sentiment_mean", *means):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    counts = ["tweet_count", *(c for c in PLATFORM_COLUMNS if c.endswith("_count"))]
    for c in counts:
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0).astype("int64")
    df = df.sort_values(["coin", "hour_start"], kind="stable").reset_index(drop=True)
    nxt = df.groupby("coin", sort=False)[["hour_start", "log_return"]].shift(-1)
    contiguous = (nxt["hour_start"] - df["hour_start"]) == pd.Timedelta(hours=1)
    df["next_log_return"] = nxt["log_return"].where(contiguous)
    return df


@dataclass(frozen=True)
class Correlation:
    coin: str
    pairs: int
    pearson: float | None  # None: fewer than MIN_PAIRS pairs, or a constant series


def _pearson(x: pd.Series, y: pd.Series) -> float | None:
    if len(x) < MIN_PAIRS or x.std(ddof=0) == 0 or y.std(ddof=0) == 0:
        return None
    return float(x.corr(y))


def sentiment_next_return_correlation(prepared: pd.DataFrame) -> list[Correlation]:
    """Per coin (and ``all`` coins pooled): Pearson correlation of an hour's mean sentiment with
    the next hour's log return, over the hours where both are known."""
    both = prepared.dropna(subset=["sentiment_mean", "next_log_return"])
    out = []
    for coin in sorted(prepared["coin"].unique()):
        part = both[both["coin"] == coin]
        out.append(
            Correlation(coin, len(part), _pearson(part["sentiment_mean"], part["next_log_return"]))
        )
    out.append(
        Correlation("all", len(both), _pearson(both["sentiment_mean"], both["next_log_return"]))
    )
    return out


def _fmt(value: Any, spec: str, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(float(value) * scale, spec)


TABLE_HEADER: Final = (
    "hour (UTC)",
    "close",
    "return %",
    "volatility %",
    "posts",
    "sentiment",
    *(f"{PLATFORM_LABELS[p]} {what}" for p in PLATFORMS for what in ("posts", "sentiment")),
)


def table_rows(prepared: pd.DataFrame, coin: str) -> list[tuple[str, ...]]:
    """One coin's hours as display strings, in :data:`TABLE_HEADER` order: the figures over
    every platform, then each platform's post count and mean sentiment."""
    part = prepared[prepared["coin"] == coin]
    rows = []
    for r in part.to_dict("records"):
        split: list[str] = []
        for p in PLATFORMS:
            split += [str(int(r[f"{p}_post_count"])), _fmt(r[f"{p}_sentiment_mean"], "+.3f")]
        rows.append(
            (
                r["hour_start"].strftime("%Y-%m-%d %H:00"),
                _fmt(r["close"], ",.2f"),
                _fmt(r["log_return"], "+.3f", 100),
                _fmt(r["realized_volatility"], ".3f", 100),
                str(int(r["tweet_count"])),
                _fmt(r["sentiment_mean"], "+.3f"),
                *split,
            )
        )
    return rows


def render_png(prepared: pd.DataFrame, correlations: list[Correlation]) -> bytes:
    """Per coin: close price with mean sentiment (twin axis: all platforms, and each platform
    dashed) next to post volume stacked by platform; then the sentiment-vs-next-return scatter
    with its correlation."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    coins = sorted(prepared["coin"].unique())
    if not coins:
        raise ReportError("the hourly table is empty: nothing to plot")
    corr = {c.coin: c for c in correlations}
    fig, axes = plt.subplots(
        len(coins) + 1,
        2,
        figsize=(13, 3.6 * (len(coins) + 1)),
        gridspec_kw={"width_ratios": [3, 1]},
        squeeze=False,
    )
    for i, coin in enumerate(coins):
        part = prepared[prepared["coin"] == coin]
        ax, vol_ax = axes[i][0], axes[i][1]
        ax.plot(part["hour_start"], part["close"], color="tab:blue", label="close")
        ax.set_ylabel(f"{coin.upper()} close", color="tab:blue")
        ax.set_title(f"{coin.upper()}: hourly close vs mean post sentiment")
        sent_ax = ax.twinx()
        sent_ax.plot(
            part["hour_start"],
            part["sentiment_mean"],
            color="tab:orange",
            marker=".",
            label="all platforms",
        )
        for p, color in zip(PLATFORMS, PLATFORM_COLORS, strict=True):
            if part[f"{p}_post_count"].sum() > 0:
                sent_ax.plot(
                    part["hour_start"],
                    part[f"{p}_sentiment_mean"],
                    color=color,
                    linewidth=0.8,
                    linestyle="--",
                    label=PLATFORM_LABELS[p],
                )
        sent_ax.set_ylabel("mean sentiment", color="tab:orange")
        sent_ax.axhline(0, color="tab:orange", linewidth=0.5, linestyle=":")
        sent_ax.legend(loc="upper left", fontsize="small")
        ax.tick_params(axis="x", labelrotation=30)
        bottom = None
        for p, color in zip(PLATFORMS, PLATFORM_COLORS, strict=True):
            counts = part[f"{p}_post_count"]
            vol_ax.bar(
                part["hour_start"],
                counts,
                width=1 / 24,
                align="edge",
                color=color,
                bottom=bottom,
                label=PLATFORM_LABELS[p],
            )
            bottom = counts if bottom is None else bottom + counts
        vol_ax.set_title(f"{coin.upper()}: posts per hour by platform")
        vol_ax.legend(fontsize="small")
        vol_ax.tick_params(axis="x", labelrotation=30)
    scatter, text_ax = axes[-1][0], axes[-1][1]
    for coin in coins:
        part = prepared[prepared["coin"] == coin].dropna(
            subset=["sentiment_mean", "next_log_return"]
        )
        scatter.scatter(
            part["sentiment_mean"], part["next_log_return"] * 100, label=coin.upper(), s=14
        )
    scatter.set_xlabel("mean sentiment in hour h")
    scatter.set_ylabel("log return in hour h+1 (%)")
    scatter.set_title("Does sentiment lead the next hour's return?")
    scatter.legend()
    text_ax.axis("off")
    lines = ["Pearson r (sentiment, next return)", ""]
    lines += [
        f"{c.upper():>4}: {_fmt(corr[c].pearson, '+.3f')}  (n={corr[c].pairs})"
        for c in [*coins, "all"]
    ]
    text_ax.text(0, 1, "\n".join(lines), va="top", family="monospace")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def render_html(
    prepared: pd.DataFrame,
    correlations: list[Correlation],
    png: bytes,
    title: str = "coinfeed demo",
) -> str:
    """A self-contained page: the chart (embedded), the correlations and every coin's hours."""
    esc = html.escape
    img = base64.b64encode(png).decode("ascii")
    parts = [
        "<!doctype html>",
        f"<html><head><meta charset='utf-8'><title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<img alt='price, sentiment and post volume by platform per coin' src='data:image/png;base64,{img}'>",
        "<h2>Correlation of hourly mean sentiment with the next hour's log return</h2>",
        "<table><tr><th>coin</th><th>pairs</th><th>Pearson r</th></tr>",
    ]
    parts += [
        f"<tr><td>{esc(c.coin)}</td><td>{c.pairs}</td><td>{_fmt(c.pearson, '+.4f')}</td></tr>"
        for c in correlations
    ]
    parts.append("</table>")
    for coin in sorted(prepared["coin"].unique()):
        parts.append(f"<h2>{esc(coin.upper())} by hour</h2><table><tr>")
        parts += [f"<th>{esc(h)}</th>" for h in TABLE_HEADER]
        parts.append("</tr>")
        for row in table_rows(prepared, coin):
            parts.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


@dataclass(frozen=True)
class ReportFiles:
    png: Path
    html: Path
    csv: Path


def write_report(hourly: pd.DataFrame, out_dir: Path) -> ReportFiles:
    """Write ``report.png``, ``report.html`` and the table as ``hourly.csv`` under ``out_dir``."""
    prepared = prepare(hourly)
    correlations = sentiment_next_return_correlation(prepared)
    png = render_png(prepared, correlations)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out_dir / "report.png", out_dir / "report.html", out_dir / "hourly.csv")
    files.png.write_bytes(png)
    files.html.write_text(render_html(prepared, correlations, png), encoding="utf-8")
    prepared.to_csv(files.csv, index=False)
    return files
