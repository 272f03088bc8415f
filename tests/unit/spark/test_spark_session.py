"""The job's Spark settings reach the running JVM (``coinfeed.spark.session``)."""

from __future__ import annotations

from typing import Any

from coinfeed.spark.session import MEMORY_FRACTION, spark_conf

# Spark's memory manager keeps this much of the heap out of its own accounting.
RESERVED_BYTES = 300 * 1024 * 1024


def test_spark_memory_manager_uses_the_jobs_heap_share(spark: Any) -> None:
    # A 3M-tweet hour fits a 1.5 GB driver only with the smaller share (spark/README.md): the
    # running memory manager must cap execution + storage at it, not at Spark's 0.6.
    jvm = spark.sparkContext._jvm
    heap = jvm.java.lang.Runtime.getRuntime().maxMemory()
    manager = jvm.org.apache.spark.SparkEnv.get().memoryManager()
    # Unified memory: every byte execution does not hold is storage's to take.
    share = manager.maxOnHeapStorageMemory() / (heap - RESERVED_BYTES)
    assert abs(share - float(MEMORY_FRACTION)) < 0.01, share
    # The largest share measured to fit: raising it needs the 3M-tweet hour in 1.5 GB measured
    # again (bench_spark --sizes 3000000 --driver-memory 1500m).
    assert float(MEMORY_FRACTION) <= 0.3


def test_extra_settings_override_the_heap_share() -> None:
    conf = spark_conf(master=None, jars=[], extra={"spark.memory.fraction": "0.5"})
    assert conf["spark.memory.fraction"] == "0.5"
    assert spark_conf(master=None, jars=[])["spark.memory.fraction"] == MEMORY_FRACTION
