#!/bin/bash
# helm test: create a throwaway topic, produce one record, consume it back, delete the topic.
# Proves the client listener, replication (acks=all needs min.insync.replicas) and consumption.
set -euo pipefail
: "${BOOTSTRAP:?}" "${TOPIC:?}"
bin=/opt/kafka/bin
record="coinfeed-helm-test-$(date +%s)"

"$bin/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
  --topic "$TOPIC" --partitions 1 --replication-factor "${REPLICATION_FACTOR:-1}"
echo "$record" | "$bin/kafka-console-producer.sh" --bootstrap-server "$BOOTSTRAP" \
  --topic "$TOPIC" --producer-property acks=all
got="$("$bin/kafka-console-consumer.sh" --bootstrap-server "$BOOTSTRAP" --topic "$TOPIC" \
  --from-beginning --timeout-ms 60000 | grep -Fx "$record" || true)"
"$bin/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --delete --topic "$TOPIC" || true
if [ "$got" != "$record" ]; then
  echo "FAIL: produced '$record' to $TOPIC but did not consume it back" >&2
  exit 1
fi
echo "OK: produced and consumed '$record' on $TOPIC via $BOOTSTRAP"
