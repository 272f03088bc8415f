"""Session-scoped local SparkSession (``local[2]``, small shuffles, the spark-sql-kafka jars)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from coinfeed.spark.session import build_session, spark_conf

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    conf = spark_conf(
        master="local[2]",
        shuffle_partitions=2,
        extra={
            "spark.sql.warehouse.dir": str(warehouse),
            "spark.local.dir": str(tmp_path_factory.mktemp("spark-local")),
            # Tiny inputs: AQE would only add planning time.
            "spark.sql.adaptive.enabled": "false",
        },
    )
    session = build_session("coinfeed-tests", conf)
    try:
        yield session
    finally:
        session.stop()
