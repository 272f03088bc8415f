"""The warm-up: it loads the UDFs' modules and VADER into Spark's Python workers, and initialises
what the job's first lower-casing needs in the driver JVM."""

from __future__ import annotations

import inspect

from pyspark.sql import SparkSession

from coinfeed.spark import tweets, warmup


def test_warm_up_loads_the_workers(spark: SparkSession) -> None:
    warm = warmup.start(spark)
    warm.python.thread.join(120)
    assert not warm.python.thread.is_alive()
    assert warm.python.error is None
    # Every task reported its worker loaded (the validation path imported, VADER's lexicon read);
    # workers Spark reused for more than one task count once.
    assert 1 <= len(warm.python.value) <= spark.sparkContext.defaultParallelism
    warm.jvm.thread.join(120)
    assert warm.jvm.error is None
    assert [tuple(r) for r in warm.jvm.value] == [("a",)]


def test_jvm_warm_up_runs_the_lower_the_hashtags_use(spark: SparkSession) -> None:
    # The warm-up is there for the job's first lower-casing (tweets.top_hashtags): its query must
    # evaluate Spark's Lower, not just name it.
    plan = spark.sql(warmup.JVM_WARMUP_SQL)._jdf.queryExecution().analyzed().toString()
    assert "lower(A)" in plan
    assert spark.sql(warmup.JVM_WARMUP_SQL).collect()[0][0] == "a"
    assert "F.lower" in inspect.getsource(tweets.top_hashtags)


def test_a_failed_warm_up_is_kept_not_raised(spark: SparkSession) -> None:
    class Broken:
        sparkContext = spark.sparkContext  # noqa: N815 (the name warmup reads)

        def range(self, *args: object) -> object:
            raise RuntimeError("session stopped")

        def sql(self, *args: object) -> object:
            raise RuntimeError("no SQL")

    warm = warmup.start(Broken())
    warm.python.thread.join(30)
    warm.jvm.thread.join(30)
    assert repr(warm.python.error) == "RuntimeError('session stopped')"
    assert warm.python.value is None
    assert repr(warm.jvm.error) == "RuntimeError('no SQL')"
    assert warm.jvm.value is None
