"""The Python worker warm-up: it loads the UDFs' modules and VADER into Spark's Python workers."""

from __future__ import annotations

from pyspark.sql import SparkSession

from coinfeed.spark import warmup


def test_warm_up_loads_the_workers(spark: SparkSession) -> None:
    warm = warmup.start(spark)
    warm.thread.join(120)
    assert not warm.thread.is_alive()
    assert warm.error is None
    # Every task reported its worker loaded (the validation path imported, VADER's lexicon read);
    # workers Spark reused for more than one task count once.
    assert 1 <= len(warm.workers) <= spark.sparkContext.defaultParallelism


def test_a_failed_warm_up_is_kept_not_raised(spark: SparkSession) -> None:
    class Broken:
        sparkContext = spark.sparkContext  # noqa: N815 (the name warmup reads)

        def range(self, *args: object) -> object:
            raise RuntimeError("session stopped")

    warm = warmup.start(Broken())
    warm.thread.join(30)
    assert warm.error == "RuntimeError: session stopped"
    assert warm.workers == []
