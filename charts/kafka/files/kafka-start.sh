#!/bin/bash
# Start one Kafka broker (or KRaft combined node) of the StatefulSet. The shared server.properties
# comes from the ConfigMap; what differs per pod is added here: the id is the pod ordinal, the
# advertised names are the pod's stable DNS names under the headless Service. Secrets (TLS store
# password, SASL JAAS line) are read from mounted Secret files, so they never enter a ConfigMap.
set -euo pipefail

: "${HEADLESS_SERVICE:?}" "${POD_NAMESPACE:?}" "${CLUSTER_DOMAIN:?}" "${METADATA_MODE:?}"
: "${CLIENT_PORT:?}" "${INTERNAL_PORT:?}" "${CLIENT_PROTOCOL:?}"

ordinal="${HOSTNAME##*-}"
case "$ordinal" in
  '' | *[!0-9]*) echo "kafka-start: cannot take a broker id from hostname '$HOSTNAME'" >&2; exit 1 ;;
esac
fqdn="${HOSTNAME}.${HEADLESS_SERVICE}.${POD_NAMESPACE}.svc.${CLUSTER_DOMAIN}"
props=/tmp/kafka/server.properties
mkdir -p /tmp/kafka /var/lib/kafka/data/logs
cp /etc/kafka/coinfeed/server.properties "$props"

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
      pw="$(cat /etc/kafka/secrets/tls/password)"
      echo "listener.name.client.ssl.keystore.password=${pw}"
      echo "listener.name.client.ssl.truststore.password=${pw}"
      ;;
  esac
  case "$CLIENT_PROTOCOL" in
    SASL_PLAINTEXT | SASL_SSL)
      mech="$(echo "${SASL_MECHANISM:?}" | tr '[:upper:]' '[:lower:]')"
      echo "listener.name.client.${mech}.sasl.jaas.config=$(cat /etc/kafka/secrets/sasl/jaas-config)"
      ;;
  esac
} >> "$props"
chmod 600 "$props"

if [ "$METADATA_MODE" = kraft ]; then
  # Idempotent: an already formatted log directory is left alone.
  /opt/kafka/bin/kafka-storage.sh format --ignore-formatted \
    --cluster-id "${KRAFT_CLUSTER_ID:?}" --config "$props"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$props"
