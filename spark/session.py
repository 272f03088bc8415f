"""The job's SparkSession settings (pure) and the one place a session is built."""

from __future__ import annotations

import os
import posixpath
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from coinfeed import job_env as jenv
from coinfeed.paths import spark_kafka_jars

# Where Kubernetes mounts a pod's ServiceAccount token and the cluster CA.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# Share of the heap (less Spark's 300 MB reserve) that Spark's own execution + storage memory
# may fill (default 0.6). What it leaves is for everything Spark does not account for, and this
# job needs more of that than the default leaves: a 3M-tweet hour in a 1.5 GB driver ran out of
# heap with 0.6 in every try (sessions 10-18: in a sort, a Python UDF's input queue, the cache)
# and ran with 0.3 (213 s); 1M and 3M hours in 4 GB took the same time either way (spark/README.md).
MEMORY_FRACTION = "0.3"


def spark_conf(
    master: str | None = "local[2]",
    jars: Sequence[Path] | None = None,
    shuffle_partitions: int = 4,
    driver_memory: str = "512m",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Settings every run needs: UTC everywhere, dynamic partition overwrite (only the processed
    hours' partitions are replaced), the spark-sql-kafka jars fetched by setup (no runtime
    ``--packages`` resolution), loopback-only networking in local mode, and the heap share
    Spark's memory manager may use (:data:`MEMORY_FRACTION`). ``extra`` overrides any of them."""
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": driver_memory,
        "spark.memory.fraction": MEMORY_FRACTION,
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


# The executor environment variable every JVM reads its extra options from (see rpc_auth_conf).
EXECUTOR_JAVA_TOOL_OPTIONS = "spark.executorEnv.JAVA_TOOL_OPTIONS"


def rpc_secret_file(env: Mapping[str, str]) -> str:
    """Path of the RPC key file in the driver (the operator's mount, or the default one)."""
    return env.get(jenv.RPC_SECRET) or f"{jenv.RPC_SECRET_DIR}/{jenv.RPC_SECRET_KEY}"


def rpc_auth_conf(
    secret_name: str,
    master: str | None,
    secret_file: str = f"{jenv.RPC_SECRET_DIR}/{jenv.RPC_SECRET_KEY}",
) -> dict[str, str]:
    """Authenticated, encrypted RPC between the driver and executor pods (``k8s://`` master only;
    empty otherwise: in local mode there is no RPC between pods).

    The key comes from a file both sides mount from the Kubernetes Secret ``secret_name``: the
    driver from the CronJob's volume, executors from the volume Spark adds to their pods
    (``spark.kubernetes.executor.secrets.*``) at the same directory. Because an executor file is
    set, Spark puts no generated key in the executor pods' environment (``_SPARK_AUTH_SECRET``).

    ``spark.master`` reaches executors through ``JAVA_TOOL_OPTIONS``: an executor first fetches
    the driver's settings over a connection authenticated with ``spark.authenticate.secret.file``,
    Spark reads a key file only when it knows the master is Kubernetes, and the master is not
    among the settings an executor starts with ("A secret key must be specified"). Spark refuses
    ``-Dspark.*`` in ``spark.executor.extraJavaOptions``; every JVM reads JAVA_TOOL_OPTIONS.
    """
    if not secret_name or not (master or "").startswith("k8s://"):
        return {}
    return {
        "spark.authenticate": "true",
        "spark.authenticate.secret.file": secret_file,
        "spark.authenticate.secret.driver.file": secret_file,
        "spark.authenticate.secret.executor.file": secret_file,
        f"spark.kubernetes.executor.secrets.{secret_name}": posixpath.dirname(secret_file),
        "spark.network.crypto.enabled": "true",
        EXECUTOR_JAVA_TOOL_OPTIONS: f"-Dspark.master={master}",
    }


def merge_conf(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` updated with ``extra``, except that JVM options in the executors'
    JAVA_TOOL_OPTIONS add up instead of replacing each other."""
    merged = {**base, **extra}
    both = [
        c[EXECUTOR_JAVA_TOOL_OPTIONS] for c in (base, extra) if c.get(EXECUTOR_JAVA_TOOL_OPTIONS)
    ]
    if both:
        merged[EXECUTOR_JAVA_TOOL_OPTIONS] = " ".join(both)
    return merged


def env_conf(env: Mapping[str, str], master: str | None) -> dict[str, str]:
    """Spark settings from the job's environment (``coinfeed.job_env``, set by the operator).

    Never a secret value: the RPC key stays in a mounted file (:func:`rpc_auth_conf`); S3 keys
    stay in ``AWS_*`` env vars that S3A's default credential chain reads; executor pods get them
    by ``secretKeyRef`` to the Secret's name.
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
    # Fixed ports, which the chart's NetworkPolicies open between driver and executors.
    conf["spark.driver.port"] = str(jenv.DRIVER_PORT)
    conf["spark.driver.blockManager.port"] = str(jenv.BLOCK_MANAGER_PORT)
    conf["spark.blockManager.port"] = str(jenv.BLOCK_MANAGER_PORT)
    # Client mode inside a pod: only executor pods are ever created, so the driver's Role needs
    # no services, ConfigMaps or PVCs. Spark would otherwise make a ConfigMap for executors and,
    # on stop, try to delete services and PVCs carrying the application's label.
    conf["spark.kubernetes.executor.disableConfigMap"] = "true"
    conf["spark.kubernetes.driver.service.deleteOnTermination"] = "false"
    conf["spark.kubernetes.driver.ownPersistentVolumeClaim"] = "false"
    conf["spark.kubernetes.driver.reusePersistentVolumeClaim"] = "false"
    # The pod's own token and CA (client-mode settings; the token is mounted only in this mode).
    conf["spark.kubernetes.authenticate.caCertFile"] = f"{SERVICE_ACCOUNT_DIR}/ca.crt"
    conf["spark.kubernetes.authenticate.oauthTokenFile"] = f"{SERVICE_ACCOUNT_DIR}/token"
    named = {
        jenv.K8S_IMAGE: "spark.kubernetes.container.image",
        jenv.K8S_IMAGE_PULL_POLICY: "spark.kubernetes.container.image.pullPolicy",
        jenv.POD_NAMESPACE: "spark.kubernetes.namespace",
        jenv.POD_NAME: "spark.kubernetes.driver.pod.name",
        jenv.SERVICE_ACCOUNT: "spark.kubernetes.authenticate.driver.serviceAccountName",
        jenv.EXECUTOR_TEMPLATE: "spark.kubernetes.executor.podTemplateFile",
        jenv.EXECUTOR_INSTANCES: "spark.executor.instances",
        jenv.EXECUTOR_CPU_REQUEST: "spark.kubernetes.executor.request.cores",
        jenv.EXECUTOR_CPU_LIMIT: "spark.kubernetes.executor.limit.cores",
        jenv.EXECUTOR_MEMORY: "spark.executor.memory",
        jenv.EXECUTOR_MEMORY_OVERHEAD: "spark.executor.memoryOverhead",
    }
    conf.update({key: env[var] for var, key in named.items() if env.get(var)})
    if env.get(jenv.SERVICE_ACCOUNT):
        # Executors run as the same account (without its token: the pod template says so).
        conf["spark.kubernetes.authenticate.executor.serviceAccountName"] = env[
            jenv.SERVICE_ACCOUNT
        ]
    if env.get(jenv.EXECUTOR_TEMPLATE):
        conf["spark.kubernetes.executor.podTemplateContainerName"] = jenv.EXECUTOR_CONTAINER
    pvc, path = env.get(jenv.LAKE_PVC, ""), env.get(jenv.LAKE_PATH, "")
    if pvc and path:
        prefix = "spark.kubernetes.executor.volumes.persistentVolumeClaim.lake"
        conf[f"{prefix}.options.claimName"] = pvc
        conf[f"{prefix}.mount.path"] = path
    # The key file's presence is checked at job start (hourly.job_conf), not here: pure.
    return merge_conf(
        conf, rpc_auth_conf(env.get(jenv.RPC_SECRET_NAME, ""), master, rpc_secret_file(env))
    )


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
