#!/bin/bash
# Entrypoint of the coinfeed Spark image, for any base (apache/spark or the local one).
# - `executor`: what Spark on Kubernetes starts executor pods with (as apache/spark's
#   /opt/entrypoint.sh does): a KubernetesExecutorBackend on pyspark's own jars, configured by the
#   SPARK_* variables the driver sets on the pod, and started from the driver's class-data
#   archive when the image has one.
# - anything else: run it (the CronJob runs `coinfeed hourly ...`).
# Pods may run under any non-root UID. Without a passwd entry Hadoop's login fails ("invalid
# null input: name"), so a UID the image does not know gets one through nss_wrapper (an
# LD_PRELOAD library that answers getpwuid from a file), as OpenShift-style images do; the image
# itself stays read-only.
set -euo pipefail

if ! getent passwd "$(id -u)" >/dev/null 2>&1; then
  wrapper=""
  for f in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
    [ -f "$f" ] && { wrapper="$f"; break; }
  done
  if [ -z "$wrapper" ]; then
    echo "entrypoint: UID $(id -u) has no passwd entry and libnss_wrapper is missing; run as UID 185 (spark)" >&2
    exit 1
  fi
  dir="$(mktemp -d)"
  { cat /etc/passwd; echo "coinfeed:x:$(id -u):$(id -g):coinfeed:${HOME:-/tmp}:/bin/false"; } >"$dir/passwd"
  { cat /etc/group; echo "coinfeed:x:$(id -g):"; } >"$dir/group"
  export LD_PRELOAD="$wrapper" NSS_WRAPPER_PASSWD="$dir/passwd" NSS_WRAPPER_GROUP="$dir/group"
fi

if [ "${1:-}" = executor ]; then
  shift
  # pyspark's directory, then (when the image has the driver's class-data archive and the class
  # path it was dumped with) that class path and the JVM options that map the archive: the
  # executor then starts from the classes the driver's training run loaded (coinfeed.spark.cds).
  # Without them: pyspark's jars, no archive.
  mapfile -t launch < <(coinfeed spark-cds --executor-launch)
  spark_home="${launch[0]:?coinfeed spark-cds --executor-launch printed no pyspark directory}"
  classpath="${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}$spark_home/jars/*"
  cds_opts=()
  if [ "${#launch[@]}" -eq 3 ]; then
    classpath="${launch[1]}"
    read -r -a cds_opts <<<"${launch[2]}"
  fi
  mapfile -t java_opts < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//')
  # The driver's options last: an -Xshare of spark.executor.extraJavaOptions wins.
  exec java "${cds_opts[@]}" "${java_opts[@]}" \
    -Xms"${SPARK_EXECUTOR_MEMORY:?}" -Xmx"${SPARK_EXECUTOR_MEMORY:?}" \
    -cp "$classpath" \
    org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
    --driver-url "${SPARK_DRIVER_URL:?}" \
    --executor-id "${SPARK_EXECUTOR_ID:?}" \
    --cores "${SPARK_EXECUTOR_CORES:?}" \
    --app-id "${SPARK_APPLICATION_ID:?}" \
    --hostname "${SPARK_EXECUTOR_POD_IP:?}" \
    --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
    --podName "${SPARK_EXECUTOR_POD_NAME:-}" \
    "$@"
fi
exec "$@"
