"""The Python worker warm-up: it loads the UDFs' modules and VADER into the workers Spark reuses."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from pyspark.sql import SparkSession

from coinfeed.spark import warmup


def _loaded(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    import sys

    sentiment = sys.modules.get("coinfeed.spark.sentiment")
    ready = "coinfeed.spark.parse" in sys.modules and getattr(sentiment, "_analyzer", None)
    for batch in batches:
        yield pd.DataFrame({"ready": [bool(ready)] * len(batch)})


def test_warm_up_loads_the_workers_and_a_later_task_finds_them_loaded(
    spark: SparkSession,
) -> None:
    warm = warmup.start(spark)
    warm.thread.join(120)
    assert not warm.thread.is_alive()
    assert warm.error is None
    slots = spark.sparkContext.defaultParallelism
    rows = spark.range(0, slots, 1, slots).mapInPandas(_loaded, "ready boolean").collect()
    assert [r.ready for r in rows] == [True] * slots


def test_a_failed_warm_up_is_kept_not_raised(spark: SparkSession) -> None:
    class Broken:
        sparkContext = spark.sparkContext  # noqa: N815 (the name warmup reads)

        def range(self, *args: object) -> object:
            raise RuntimeError("session stopped")

    warm = warmup.start(Broken())
    warm.thread.join(30)
    assert warm.error == "RuntimeError: session stopped"
