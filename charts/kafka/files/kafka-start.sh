#!/bin/bash
# Start one Kafka broker (or KRaft combined node) of the StatefulSet. The shared server.properties
# comes from the ConfigMap; what differs per pod is added here: the id is the pod ordinal, the
# advertised names are the pod's stable DNS names under the headless Service. Secrets (TLS store
# password, SASL JAAS line) are read from mounted Secret files, so they never enter a ConfigMap.
set -euo pipefail

: "${HEADLESS_SERVICE:?}" "${POD_NAMESPACE:?}" "${CLUSTER_DOMAIN:?}" "${METADATA_MODE:?}"
: "${CLIENT_PORT:?}" "${INTERNAL_PORT:?}" "${CLIENT_PROTOCOL:?}"

# Paths of the apache/kafka image and of this chart's mounts (overridable for tests). Only the
# image's jar directory is used (java -cp $KAFKA_HOME/libs/*), not the tarball's bin/ scripts, so
# any image with Kafka's jars in /opt/kafka/libs and a java works (the official one, the local one).
KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
CONFIG_DIR="${CONFIG_DIR:-/etc/kafka/coinfeed}"
SECRETS_DIR="${SECRETS_DIR:-/etc/kafka/secrets}"
WORK_DIR="${WORK_DIR:-/tmp/kafka}"

ordinal="${HOSTNAME##*-}"
case "$ordinal" in
  '' | *[!0-9]*) echo "kafka-start: cannot take a broker id from hostname '$HOSTNAME'" >&2; exit 1 ;;
esac
fqdn="${HOSTNAME}.${HEADLESS_SERVICE}.${POD_NAMESPACE}.svc.${CLUSTER_DOMAIN}"
props="$WORK_DIR/server.properties"
mkdir -p "$WORK_DIR"
cp "$CONFIG_DIR/server.properties" "$props"

{
  echo
  echo "# per pod (kafka-start.sh)"
  if [ "$METADATA_MODE" = kraft ]; then
    echo "node.id=${ordinal}"
  else
    echo "broker.id=${ordinal}"
  fi
  echo "advertised.listeners=CLIENT://${fqdn}:${CLIENT_PORT},INTERNAL://${fqdn}:${INTERNAL_PORT}"
  case "$CLIENT_PROTOCOL" in
    SSL | SASL_SSL)
      pw="$(cat "$SECRETS_DIR/tls/password")"
      echo "listener.name.client.ssl.keystore.password=${pw}"
      echo "listener.name.client.ssl.truststore.password=${pw}"
      ;;
  esac
  if [ "$CLIENT_PROTOCOL" != PLAINTEXT ]; then
    # The internal (and controller) listeners are mutual TLS whenever the client one is secured.
    pw="$(cat "$SECRETS_DIR/tls/password")"
    echo "ssl.keystore.password=${pw}"
    echo "ssl.truststore.password=${pw}"
  fi
  case "$CLIENT_PROTOCOL" in
    SASL_PLAINTEXT | SASL_SSL)
      mech="$(echo "${SASL_MECHANISM:?}" | tr '[:upper:]' '[:lower:]')"
      echo "listener.name.client.${mech}.sasl.jaas.config=$(cat "$SECRETS_DIR/sasl/jaas-config")"
      ;;
  esac
} >> "$props"
chmod 600 "$props"

java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
classpath="$KAFKA_HOME/libs/*"
log4j="-Dlog4j.configuration=file:$CONFIG_DIR/log4j.properties"
if [ "$METADATA_MODE" = kraft ]; then
  # Idempotent: an already formatted log directory is left alone.
  "$java" "$log4j" -cp "$classpath" kafka.tools.StorageTool format --ignore-formatted \
    --cluster-id "${KRAFT_CLUSTER_ID:?}" --config "$props"
fi
# What kafka-server-start.sh would add: heap, G1, headless.
# shellcheck disable=SC2086 # the option strings are lists of JVM flags
exec "$java" ${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true} \
  "$log4j" -cp "$classpath" kafka.Kafka "$props"
