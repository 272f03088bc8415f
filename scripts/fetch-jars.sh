#!/usr/bin/env bash
# Fetch the pinned JVM artifacts from Maven Central into ~/.cache/coinfeed/jars/<name>-<version>/.
# Idempotent: a complete folder (marked by .complete) is left alone, so a second run needs no network.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../versions.env
source "$here/../versions.env"
cache="${COINFEED_CACHE:-$HOME/.cache/coinfeed}/jars"
mkdir -p "$cache"

fetch() {  # fetch <dest-folder> <pom> [extra mvn args...]
  local dest="$1" pom="$2"; shift 2
  if [ -f "$dest/.complete" ]; then
    echo "jars: $(basename "$dest") already cached"
    return
  fi
  echo "jars: fetching $(basename "$dest") from Maven Central ..."
  rm -rf "$dest.tmp"
  if ! mvn -B -q -f "$pom" dependency:copy-dependencies \
      -Dkafka.version="$KAFKA_VERSION" -Dspark.version="$SPARK_VERSION" \
      -Dscala.binary.version="$SCALA_BINARY_VERSION" -Dzookeeper.version="$ZOOKEEPER_IMAGE_VERSION" \
      -DoutputDirectory="$dest.tmp" -DincludeScope=runtime "$@"; then
    echo "jars: mvn could not fetch $(basename "$dest"). Is Maven Central reachable (see ~/.m2/settings.xml)?" >&2
    exit 1
  fi
  touch "$dest.tmp/.complete"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  echo "jars: $(find "$dest" -name '*.jar' | wc -l) jars in $dest"
}

fetch "$cache/kafka_${SCALA_BINARY_VERSION}-${KAFKA_VERSION}" "$here/jvm/kafka-pom.xml"
# pyspark already ships kafka's compression codecs, hadoop and scala: take only what it lacks.
fetch "$cache/spark-sql-kafka-0-10_${SCALA_BINARY_VERSION}-${SPARK_VERSION}" "$here/jvm/spark-kafka-pom.xml" \
  -DincludeArtifactIds="spark-sql-kafka-0-10_${SCALA_BINARY_VERSION},spark-token-provider-kafka-0-10_${SCALA_BINARY_VERSION},kafka-clients,commons-pool2"

# `fetch-jars.sh images`: also what only the local Kafka and ZooKeeper images need
# (scripts/base-images.sh): Kafka's command-line tools, and ZooKeeper's own runtime set.
if [ "${1:-}" = images ]; then
  fetch "$cache/kafka-tools-${KAFKA_VERSION}" "$here/jvm/kafka-tools-pom.xml"
  fetch "$cache/zookeeper-${ZOOKEEPER_IMAGE_VERSION}" "$here/jvm/zookeeper-pom.xml"
fi
