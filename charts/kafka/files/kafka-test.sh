#!/bin/bash
# helm test: create a throwaway topic, produce one record, consume it back, delete the topic.
# Proves the client listener, replication (acks=all needs min.insync.replicas) and consumption.
set -euo pipefail
: "${BOOTSTRAP:?}" "${TOPIC:?}"
# Kafka's tool classes on the image's jar directory (official and local images alike).
# shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags
kafka() { java ${KAFKA_HEAP_OPTS:-} -cp "${KAFKA_HOME:-/opt/kafka}/libs/*" "$@"; }
record="coinfeed-helm-test-$(date +%s)"

kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
  --topic "$TOPIC" --partitions 1 --replication-factor "${REPLICATION_FACTOR:-1}"
echo "$record" | kafka kafka.tools.ConsoleProducer --bootstrap-server "$BOOTSTRAP" \
  --topic "$TOPIC" --producer-property acks=all
got="$(kafka org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" --topic "$TOPIC" \
  --from-beginning --max-messages 1 --timeout-ms 60000 | grep -Fx "$record" || true)"
kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --delete --topic "$TOPIC" || true
if [ "$got" != "$record" ]; then
  echo "FAIL: produced '$record' to $TOPIC but did not consume it back" >&2
  exit 1
fi
echo "OK: produced and consumed '$record' on $TOPIC via $BOOTSTRAP"
