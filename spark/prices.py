"""Per (coin, hour) price figures from deduplicated ticks.

Ticks are gathered per hour into one array sorted by ``(ts, source)`` and every figure is computed
from that array, so sums of doubles always run in the same order: a rerun gives bit-identical
results however Spark split the input (a plain ``sum`` merges partial sums in arrival order).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

PRICE_COLUMNS = (
    "open",
    "high",
    "low",
    "close",
    "mean_price",
    "tick_count",
    "log_return",
    "realized_volatility",
)


def _sum(values: Column) -> Column:
    return F.aggregate(values, F.lit(0.0), lambda acc, x: acc + x)


def price_hourly(ticks: DataFrame) -> DataFrame:
    """``coin, hour_start`` + :data:`PRICE_COLUMNS`.

    ``log_return`` is ``ln(close / open)`` within the hour; ``realized_volatility`` is
    ``sqrt(sum(ln(p_i / p_{i-1})^2))`` over consecutive ticks of the hour (0.0 for a single tick).
    """
    grouped = ticks.groupBy("coin", "hour_start").agg(
        F.array_sort(F.collect_list(F.struct("ts", "source", "price"))).alias("_ticks"),
        F.max("price").alias("high"),
        F.min("price").alias("low"),
        F.count(F.lit(1)).alias("tick_count"),
    )
    p = F.transform("_ticks", lambda t: t["price"])
    n = F.size(p)
    steps = F.zip_with(
        F.slice(p, 2, n - 1), F.slice(p, 1, n - 1), lambda cur, prev: F.log(cur / prev)
    )
    return grouped.select(
        "coin",
        "hour_start",
        F.element_at(p, 1).alias("open"),
        "high",
        "low",
        F.element_at(p, -1).alias("close"),
        (_sum(p) / n).alias("mean_price"),
        "tick_count",
        F.log(F.element_at(p, -1) / F.element_at(p, 1)).alias("log_return"),
        F.sqrt(_sum(F.transform(steps, lambda r: r * r))).alias("realized_volatility"),
    )
