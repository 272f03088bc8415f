#!/usr/bin/env bash
# make deploy-local: the umbrella chart on the local node (`make cluster-up` first), as a user would
# install it: builds what is missing (base images, the three coinfeed images), loads them into the
# node, creates namespace $NAMESPACE labelled Pod Security `enforce: restricted`, installs
# charts/coinfeed with values-local.yaml (+ $EXTRA_VALUES) and returns when every pod is Ready.
# KAFKA_MODE=kraft installs three combined KRaft nodes instead of ZooKeeper + brokers.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../versions.env
source "$ROOT/versions.env"
# shellcheck source=docker-engine.sh
source "$ROOT/scripts/docker-engine.sh"
NAMESPACE="${NAMESPACE:-coinfeed}"
RELEASE="${RELEASE:-coinfeed}"
KAFKA_MODE="${KAFKA_MODE:-zookeeper}"
TIMEOUT="${TIMEOUT:-15m}"
PY="${PY:-$ROOT/.venv/bin/python}"
CLUSTER_RUN_DIR="${CLUSTER_RUN_DIR:-$ROOT/run/cluster}"
KUBECONFIG="$CLUSTER_RUN_DIR/kubeconfig"
export KUBECONFIG
CACHE="${COINFEED_CACHE:-$HOME/.cache/coinfeed}"
HELM="$CACHE/bin/helm-$HELM_VERSION/helm"
KUBECTL="$CACHE/bin/envtest-$KUBERNETES_VERSION/kubectl"

say() { echo "deploy-local: $*" >&2; }
die() { echo "deploy-local: $*" >&2; exit 1; }

[ -x "$HELM" ] || die "helm not built: run 'make tools'"
[ -x "$KUBECTL" ] || die "kubectl not built: run 'make envtest'"
"$PY" -m localnode --run-dir "$CLUSTER_RUN_DIR" status >/dev/null 2>&1 || die "the local node is not running: run 'make cluster-up' first"

ensure_docker_engine
bash "$ROOT/scripts/images.sh"
images=(coinfeed-producer:dev coinfeed-operator:dev coinfeed-spark:dev
  "coinfeed.local/kafka:$KAFKA_VERSION" "coinfeed.local/zookeeper:$ZOOKEEPER_IMAGE_VERSION"
  coinfeed.local/pushgateway:debian)
"$PY" -m localnode --run-dir "$CLUSTER_RUN_DIR" load "${images[@]}"

"$KUBECTL" create namespace "$NAMESPACE" --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
"$KUBECTL" label namespace "$NAMESPACE" --overwrite >/dev/null \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted \
  pod-security.kubernetes.io/audit=restricted
"$HELM" dependency build charts/coinfeed >/dev/null
start=$(date +%s)
say "installing $RELEASE into $NAMESPACE (metadata mode $KAFKA_MODE) ..."
# shellcheck disable=SC2086 # EXTRA_VALUES is a list of -f/--set arguments
if ! "$HELM" upgrade --install "$RELEASE" charts/coinfeed --namespace "$NAMESPACE" \
    -f charts/coinfeed/values-local.yaml --set "kafka.metadataMode=$KAFKA_MODE" ${EXTRA_VALUES:-} \
    --wait --timeout "$TIMEOUT" 2>&1 | tee "$CLUSTER_RUN_DIR/helm-install-$NAMESPACE.log"; then
  "$KUBECTL" -n "$NAMESPACE" get pods -o wide >&2 || true
  die "helm upgrade --install failed (log: $CLUSTER_RUN_DIR/helm-install-$NAMESPACE.log)"
fi
# Finished pods (the hourly jobs', helm tests') are never Ready: wait for the others only.
"$KUBECTL" -n "$NAMESPACE" wait pod --all --for=condition=Ready --timeout=300s \
  --field-selector=status.phase!=Succeeded,status.phase!=Failed >/dev/null
say "all pods Ready in $(($(date +%s) - start)) s:"
"$KUBECTL" -n "$NAMESPACE" get pods -o wide
echo "KUBECONFIG=$KUBECONFIG"
