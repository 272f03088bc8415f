"""The hourly Spark job's environment: the contract between the operator (which writes it into the
CronJob) and ``coinfeed.spark.session`` (which turns it into Spark settings).

Secrets are never values here: the S3 keys reach the pod as ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` through ``valueFrom.secretKeyRef`` (S3A's default credential chain reads
them), and executors get the same ``secretKeyRef`` from the Secret's *name* in ``S3_SECRET``.
"""

from __future__ import annotations

from typing import Final

# Where the job writes its outcome (JSON summary, < 4 KiB) as the container's termination message:
# /dev/termination-log in the CronJob; the operator reads it back from the pod's status.
TERMINATION_LOG: Final = "COINFEED_TERMINATION_LOG"

# Lake in S3 (s3a://...).
S3_ENDPOINT: Final = "COINFEED_S3_ENDPOINT"  # S3-compatible endpoint (MinIO); unset = AWS
S3_SECRET: Final = "COINFEED_S3_SECRET"  # name of the Secret holding the two keys below
AWS_ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"  # key in that Secret, and the env var name
AWS_SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"  # key in that Secret, and the env var name

# Spark on Kubernetes (master k8s://...): the driver runs in the CronJob pod (client mode) and
# starts executor pods next to it.
K8S_IMAGE: Final = "COINFEED_SPARK_K8S_IMAGE"  # executor image (the job's own image)
POD_NAME: Final = "COINFEED_POD_NAME"  # driver pod: owner of the executors (garbage-collected)
POD_NAMESPACE: Final = "COINFEED_POD_NAMESPACE"  # where executors start
POD_IP: Final = "COINFEED_POD_IP"  # address executors connect back to
LAKE_PVC: Final = "COINFEED_SPARK_LAKE_PVC"  # lake PVC, mounted into executors too
LAKE_PATH: Final = "COINFEED_SPARK_LAKE_PATH"  # its mount path
SERVICE_ACCOUNT: Final = "COINFEED_SPARK_SERVICE_ACCOUNT"  # the driver's, also the executors'
K8S_IMAGE_PULL_POLICY: Final = "COINFEED_SPARK_K8S_IMAGE_PULL_POLICY"  # executors' pull policy
EXECUTOR_TEMPLATE: Final = "COINFEED_SPARK_EXECUTOR_TEMPLATE"  # pod template file (a ConfigMap)
EXECUTOR_INSTANCES: Final = "COINFEED_SPARK_EXECUTOR_INSTANCES"  # how many executors
EXECUTOR_CPU_REQUEST: Final = "COINFEED_SPARK_EXECUTOR_CPU_REQUEST"  # k8s quantity, e.g. 500m
EXECUTOR_CPU_LIMIT: Final = "COINFEED_SPARK_EXECUTOR_CPU_LIMIT"  # k8s quantity, e.g. 1
EXECUTOR_MEMORY: Final = "COINFEED_SPARK_EXECUTOR_MEMORY"  # JVM heap, Spark size (1152m)
EXECUTOR_MEMORY_OVERHEAD: Final = "COINFEED_SPARK_EXECUTOR_MEMORY_OVERHEAD"  # Spark size (384m)
# Spark RPC authentication and encryption between driver and executors (k8s:// master): the
# Secret's *name* (Spark mounts that Secret into executor pods itself) and the path of its key
# file in the driver (the CronJob mounts the same Secret there). Never the key itself.
RPC_SECRET_NAME: Final = "COINFEED_SPARK_RPC_SECRET_NAME"
RPC_SECRET: Final = "COINFEED_SPARK_RPC_SECRET_FILE"

# The executor container's name in the pod template (Spark fills in image, args and env).
EXECUTOR_CONTAINER: Final = "executor"
# Where the Spark RPC Secret is mounted, in the driver and in executors alike, and the key in it
# (the chart's <operator>-spark-rpc Secret holds one key, ``secret``).
RPC_SECRET_DIR: Final = "/etc/coinfeed/spark-rpc"
RPC_SECRET_KEY: Final = "secret"
# Fixed ports, so that the chart's NetworkPolicies can name them: executors connect to the
# driver's RPC port; block managers (driver and executors) serve shuffle and result blocks.
DRIVER_PORT: Final = 7078
BLOCK_MANAGER_PORT: Final = 7079
