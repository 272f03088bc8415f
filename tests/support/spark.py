"""Session-scoped local SparkSession (``local[2]``, small shuffles, the spark-sql-kafka jars), and
the Spark image's entrypoint run here as an executor pod runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

SPARK_ENTRYPOINT = Path(__file__).resolve().parents[2] / "images" / "spark" / "entrypoint.sh"


def run_executor_entrypoint(
    env: Mapping[str, str], driver_port: int, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``images/spark/entrypoint.sh executor`` with the variables Spark on Kubernetes sets on an
    executor pod (driver at 127.0.0.1:``driver_port``), this environment's ``coinfeed`` first on
    PATH, then ``env``."""
    pod = {k: v for k, v in os.environ.items() if k != "SPARK_CLASSPATH"}
    pod.update(
        {
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "SPARK_EXECUTOR_MEMORY": "512m",
            "SPARK_DRIVER_URL": f"spark://CoarseGrainedScheduler@127.0.0.1:{driver_port}",
            "SPARK_EXECUTOR_ID": "1",
            "SPARK_EXECUTOR_CORES": "1",
            "SPARK_APPLICATION_ID": "spark-app",
            "SPARK_EXECUTOR_POD_IP": "127.0.0.1",
            **env,
        }
    )
    return subprocess.run(
        ["bash", str(SPARK_ENTRYPOINT), "executor"],
        env=pod,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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
