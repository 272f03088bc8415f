"""The job's SparkSession settings (pure) and the one place a session is built."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from coinfeed.paths import spark_kafka_jars


def spark_conf(
    master: str | None = "local[2]",
    jars: Sequence[Path] | None = None,
    shuffle_partitions: int = 4,
    driver_memory: str = "512m",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Settings every run needs: UTC everywhere, dynamic partition overwrite (only the processed
    hours' partitions are replaced), the spark-sql-kafka jars fetched by setup (no runtime
    ``--packages`` resolution), and loopback-only networking in local mode."""
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": driver_memory,
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if jars is None:
        jars = spark_kafka_jars()
    if jars:
        conf["spark.jars"] = ",".join(str(j) for j in jars)
    if master is not None:
        conf["spark.master"] = master
        if master.startswith("local"):
            conf["spark.driver.host"] = "127.0.0.1"
            conf["spark.driver.bindAddress"] = "127.0.0.1"
    conf.update(extra or {})
    return conf


def build_session(app_name: str, conf: Mapping[str, str]) -> Any:
    """Get or create the SparkSession (Python workers run this same interpreter)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
