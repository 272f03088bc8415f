#!/bin/bash
# Create the SCRAM users of sasl.usersSecret (mounted: one file per user, its password inside)
# and, with authorization.enabled, each one's ACLs. Run in a broker pod, after install/upgrade:
#   kubectl exec <release>-kafka-0 -- bash /etc/kafka/coinfeed/kafka-users.sh
# It connects to the internal listener as the broker itself (mutual TLS, a super user), so the
# path is authenticated and needs no first password. Passwords travel only in 0600 files, never
# in a command line.
set -euo pipefail

: "${HEADLESS_SERVICE:?}" "${POD_NAMESPACE:?}" "${CLUSTER_DOMAIN:?}" "${INTERNAL_PORT:?}"
: "${SASL_MECHANISM:?}" "${AUTHORIZATION:?}"

KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
SECRETS_DIR="${SECRETS_DIR:-/etc/kafka/secrets}"
WORK_DIR="${WORK_DIR:-/tmp/kafka-users}"
CONFIG_DIR="${CONFIG_DIR:-/etc/kafka/coinfeed}"

users_dir="$SECRETS_DIR/users"
if [ ! -d "$users_dir" ]; then
  echo "kafka-users: no users Secret mounted at $users_dir (set sasl.usersSecret)" >&2
  exit 1
fi
fqdn="${HOSTNAME}.${HEADLESS_SERVICE}.${POD_NAMESPACE}.svc.${CLUSTER_DOMAIN}"
bootstrap="${fqdn}:${INTERNAL_PORT}"

umask 077
mkdir -p "$WORK_DIR"
trap 'rm -rf "$WORK_DIR"' EXIT
client="$WORK_DIR/client.properties"
store_pw="$(cat "$SECRETS_DIR/tls/password")"
cat > "$client" <<EOF
security.protocol=SSL
ssl.keystore.type=PKCS12
ssl.keystore.location=$SECRETS_DIR/tls/keystore.p12
ssl.keystore.password=$store_pw
ssl.truststore.type=PKCS12
ssl.truststore.location=$SECRETS_DIR/tls/truststore.p12
ssl.truststore.password=$store_pw
EOF

java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
run() {
  "$java" -Dlog4j.configuration="file:$CONFIG_DIR/log4j.properties" -cp "$KAFKA_HOME/libs/*" "$@"
}
acl() {
  # acl <user> <AclCommand arguments...>
  local user="$1"
  shift
  run kafka.admin.AclCommand --bootstrap-server "$bootstrap" --command-config "$client" \
    --add --allow-principal "User:$user" "$@"
}

for file in "$users_dir"/*; do
  user="$(basename "$file")"
  case "$user" in
    .* | *[!A-Za-z0-9._-]*) continue ;; # the Secret volume's own ..data links and odd keys
  esac
  scram="$WORK_DIR/$user.properties"
  printf '%s=iterations=8192,password=%s\n' "$SASL_MECHANISM" "$(cat "$file")" > "$scram"
  run kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --command-config "$client" \
    --alter --entity-type users --entity-name "$user" --add-config-file "$scram"
  rm -f "$scram"
  echo "kafka-users: $SASL_MECHANISM credential of $user stored"
  if [ "$AUTHORIZATION" != true ]; then
    continue
  fi
  # The same grants as coinfeed.kafka_acls (tested there against real brokers).
  case "$user" in
    coinfeed-operator)
      acl "$user" --operation Create --operation Alter --operation AlterConfigs \
        --operation Describe --operation DescribeConfigs --operation Delete \
        --topic coinfeed. --resource-pattern-type prefixed
      acl "$user" --operation Describe --cluster
      ;;
    coinfeed-spark)
      acl "$user" --operation Read --operation Describe \
        --topic coinfeed. --resource-pattern-type prefixed
      acl "$user" --operation Read --group spark-kafka- --resource-pattern-type prefixed
      ;;
    coinfeed-producer-*)
      coin="${user#coinfeed-producer-}"
      acl "$user" --operation Write --operation Read --operation Describe \
        --topic "coinfeed.${coin}.prices" --topic "coinfeed.${coin}.tweets"
      ;;
    *)
      echo "kafka-users: $user gets no ACLs (not a coinfeed client name)"
      ;;
  esac
done
