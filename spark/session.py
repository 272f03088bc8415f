"""The job's SparkSession settings (pure) and the one place a session is built."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from coinfeed import job_env as jenv
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


def env_conf(env: Mapping[str, str], master: str | None) -> dict[str, str]:
    """Spark settings from the job's environment (``coinfeed.job_env``, set by the operator).

    Never a secret value: S3 keys stay in ``AWS_*`` env vars that S3A's default credential chain
    reads; executor pods get them by ``secretKeyRef`` to the Secret's name.
    """
    conf: dict[str, str] = {}
    endpoint = env.get(jenv.S3_ENDPOINT, "")
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        # S3-compatible stores (MinIO) serve buckets by path, not by virtual host name.
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        if endpoint.startswith("http://"):
            conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "false"
    if not (master or "").startswith("k8s://"):
        return conf
    secret = env.get(jenv.S3_SECRET, "")
    if secret:
        for var in (jenv.AWS_ACCESS_KEY_ID, jenv.AWS_SECRET_ACCESS_KEY):
            conf[f"spark.kubernetes.executor.secretKeyRef.{var}"] = f"{secret}:{var}"
    pod_ip = env.get(jenv.POD_IP, "")
    if pod_ip:
        # Executors reach the driver by pod IP: a pod name has no DNS record.
        conf["spark.driver.host"] = pod_ip
        conf["spark.driver.bindAddress"] = "0.0.0.0"
    named = {
        jenv.K8S_IMAGE: "spark.kubernetes.container.image",
        jenv.POD_NAMESPACE: "spark.kubernetes.namespace",
        jenv.POD_NAME: "spark.kubernetes.driver.pod.name",
    }
    conf.update({key: env[var] for var, key in named.items() if env.get(var)})
    pvc, path = env.get(jenv.LAKE_PVC, ""), env.get(jenv.LAKE_PATH, "")
    if pvc and path:
        prefix = "spark.kubernetes.executor.volumes.persistentVolumeClaim.lake"
        conf[f"{prefix}.options.claimName"] = pvc
        conf[f"{prefix}.mount.path"] = path
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
