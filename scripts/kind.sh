#!/usr/bin/env bash
# The kind workflow behind `make images|kind-up|kind-load|deploy|e2e|kind-down`:
#
#   scripts/kind.sh images   build coinfeed-producer, coinfeed-operator, coinfeed-spark (Docker)
#   scripts/kind.sh up       create the kind cluster (manifests/kind-config.yaml)
#   scripts/kind.sh load     load the three images into the cluster
#   scripts/kind.sh deploy   helm upgrade --install the umbrella chart with values-kind.yaml
#   scripts/kind.sh e2e      apply coinfeed-btc.yaml, wait for Ready, see records on both topics,
#                            run the hourly CronJob once, find the hourly rows in the lake
#   scripts/kind.sh down     delete the cluster
#
# Each verb checks its prerequisites first and names what is missing. Settings (environment):
# KIND_CLUSTER (coinfeed), NAMESPACE (coinfeed), RELEASE (coinfeed), IMAGE_TAG (dev), E2E_TIMEOUT
# (600 s), COINFEED_CACHE (~/.cache/coinfeed: helm and kind built by scripts/build-go-tools.sh),
# X_BEARER_TOKEN (e2e: an X API v2 token; without it the feed runs with tweets disabled).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091  # versions.env holds plain KEY=value lines
source "$ROOT/versions.env"

KIND_CLUSTER="${KIND_CLUSTER:-coinfeed}"
NAMESPACE="${NAMESPACE:-coinfeed}"
RELEASE="${RELEASE:-coinfeed}"
IMAGE_TAG="${IMAGE_TAG:-dev}"
E2E_TIMEOUT="${E2E_TIMEOUT:-600}"
CACHE="${COINFEED_CACHE:-$HOME/.cache/coinfeed}"
CHART="$ROOT/charts/coinfeed"
VALUES="$CHART/values-kind.yaml"
FEED_MANIFEST="$ROOT/manifests/coinfeed-btc.yaml"
FEED=btc
# Fixed names from charts/coinfeed/values.yaml (fullnameOverride, kafka.fullnameOverride).
KAFKA_POD=coinfeed-kafka-0
LAKE_CLAIM=coinfeed-lake
IMAGES=(producer operator spark)
KIND="" HELM=""  # set by need_kind / need_helm

die() { echo "kind.sh: $*" >&2; exit 1; }
say() { echo "kind.sh: $*" >&2; }

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
}

# A tool on PATH, else the one scripts/build-go-tools.sh built; sets the variable named $1.
find_tool() {
  local var="$1" name="$2" version="$3" hint="$4" path
  if path="$(command -v "$name")"; then
    printf -v "$var" '%s' "$path"
  elif [ -x "$CACHE/bin/$name-$version/$name" ]; then
    printf -v "$var" '%s' "$CACHE/bin/$name-$version/$name"
  else
    die "$name not found (not on PATH, not in $CACHE/bin/$name-$version/): $hint"
  fi
}

need_docker() {
  command -v docker >/dev/null || die "docker not found: install Docker Engine (https://docs.docker.com/engine/install/)"
  docker info >/dev/null 2>&1 \
    || die "the Docker engine is not reachable ('docker info' fails): start dockerd or set DOCKER_HOST"
}
need_kind() { find_tool KIND kind "$KIND_VERSION" "run 'bash scripts/build-go-tools.sh kind' (or install kind $KIND_VERSION)"; }
need_helm() { find_tool HELM helm "$HELM_VERSION" "run 'bash scripts/build-go-tools.sh helm' (or install helm $HELM_VERSION)"; }
need_kubectl() { command -v kubectl >/dev/null || die "kubectl not found: install kubectl (https://kubernetes.io/docs/tasks/tools/)"; }
need_cluster() {
  "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER" \
    || die "kind cluster '$KIND_CLUSTER' does not exist: run 'make kind-up' first"
  kubectl config use-context "kind-$KIND_CLUSTER" >/dev/null
}

image_ref() { echo "coinfeed-$1:$IMAGE_TAG"; }

cmd_images() {
  need_docker
  local img
  for img in "${IMAGES[@]}"; do
    say "building $(image_ref "$img") from images/$img/Dockerfile ..."
    docker build -f "images/$img/Dockerfile" -t "$(image_ref "$img")" \
      --build-arg SPARK_VERSION="$SPARK_VERSION" \
      --build-arg SCALA_BINARY_VERSION="$SCALA_BINARY_VERSION" \
      "$ROOT"
  done
}

cmd_up() {
  need_docker; need_kind; need_kubectl
  if "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
    say "kind cluster '$KIND_CLUSTER' already exists"
  else
    "$KIND" create cluster --name "$KIND_CLUSTER" --config "$ROOT/manifests/kind-config.yaml" --wait 120s
  fi
  kubectl cluster-info --context "kind-$KIND_CLUSTER"
}

cmd_load() {
  need_docker; need_kind; need_kubectl; need_cluster
  local img
  for img in "${IMAGES[@]}"; do
    docker image inspect "$(image_ref "$img")" >/dev/null 2>&1 \
      || die "image $(image_ref "$img") not built: run 'make images' first"
    "$KIND" load docker-image --name "$KIND_CLUSTER" "$(image_ref "$img")"
  done
}

cmd_deploy() {
  need_docker; need_kind; need_kubectl; need_helm; need_cluster
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
  # Everything coinfeed runs must pass the restricted Pod Security level.
  kubectl label namespace "$NAMESPACE" --overwrite \
    pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
  "$HELM" dependency build "$CHART" >/dev/null
  "$HELM" upgrade --install "$RELEASE" "$CHART" --namespace "$NAMESPACE" \
    -f "$VALUES" \
    --set "operator.image.tag=$IMAGE_TAG,operator.producer.image.tag=$IMAGE_TAG,operator.spark.image.tag=$IMAGE_TAG" \
    --wait --timeout 15m
  "$HELM" test "$RELEASE" --namespace "$NAMESPACE" --timeout 5m
}

# kubectl exec into broker 0 of the release's Kafka.
kafka_exec() {
  kubectl -n "$NAMESPACE" exec "$KAFKA_POD" -c kafka -- "$@"
}

cmd_e2e() {
  need_docker; need_kind; need_kubectl; need_helm; need_cluster
  [ -f "$FEED_MANIFEST" ] || die "$FEED_MANIFEST not found"
  "$HELM" status "$RELEASE" --namespace "$NAMESPACE" >/dev/null 2>&1 \
    || die "release '$RELEASE' is not installed in namespace '$NAMESPACE': run 'make deploy' first"

  if [ -n "${X_BEARER_TOKEN:-}" ]; then
    # From a file descriptor, so the token never appears in a process list or a log.
    kubectl -n "$NAMESPACE" create secret generic x-api --from-file=token=<(printf '%s' "$X_BEARER_TOKEN") \
      --dry-run=client -o yaml | kubectl -n "$NAMESPACE" apply -f - >/dev/null
    say "applying $FEED_MANIFEST (prices and tweets)"
    kubectl -n "$NAMESPACE" apply -f "$FEED_MANIFEST"
  else
    say "X_BEARER_TOKEN is not set: applying $FEED_MANIFEST with tweets disabled (prices only)"
    kubectl patch --local -f "$FEED_MANIFEST" --type merge -p '{"spec":{"tweets":{"enabled":false}}}' -o yaml \
      | kubectl -n "$NAMESPACE" apply -f -
  fi
  kubectl -n "$NAMESPACE" wait "coinfeed/$FEED" --for=condition=Ready --timeout="${E2E_TIMEOUT}s"

  local kind topic kinds=(prices)
  # The tweets producer runs only when the feed enables it (it needs an X API token Secret).
  if [ "$(kubectl -n "$NAMESPACE" get "coinfeed/$FEED" -o jsonpath='{.spec.tweets.enabled}')" = true ]; then
    kinds+=(tweets)
  fi
  for kind in "${kinds[@]}"; do
    topic="coinfeed.$FEED.$kind"
    say "waiting for one record on $topic ..."
    kafka_exec /opt/kafka/bin/kafka-console-consumer.sh --bootstrap-server "localhost:9092" \
      --topic "$topic" --from-beginning --max-messages 1 --timeout-ms $((E2E_TIMEOUT * 1000)) \
      | grep -q . || die "no record on $topic within ${E2E_TIMEOUT}s"
  done

  local job uid cron
  # Feeds on one schedule share a CronJob: the one listing this feed among its owners.
  uid="$(kubectl -n "$NAMESPACE" get "coinfeed/$FEED" -o jsonpath='{.metadata.uid}')"
  cron="$(kubectl -n "$NAMESPACE" get cronjobs -l coinfeed.io/hourly-group -o \
    jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.ownerReferences[*].uid}{"\n"}{end}' \
    | awk -v uid="$uid" '{for (i = 2; i <= NF; i++) if ($i == uid) print $1}')"
  [ -n "$cron" ] || die "no hourly CronJob runs coinfeed/$FEED"
  job="$FEED-hourly-e2e-$(date +%s)"
  say "running the hourly job ($cron) once as job/$job"
  kubectl -n "$NAMESPACE" create job "$job" --from="cronjob/$cron"
  kubectl -n "$NAMESPACE" wait "job/$job" --for=condition=Complete --timeout="${E2E_TIMEOUT}s" \
    || { kubectl -n "$NAMESPACE" logs "job/$job" --tail=100 >&2 || true; die "job/$job did not complete"; }

  say "looking for hourly rows in the lake"
  local claim="$LAKE_CLAIM" pod
  pod="lake-check-$(date +%s)"
  kubectl -n "$NAMESPACE" run "$pod" --restart=Never --image="$(image_ref spark)" \
    --overrides="$(lake_check_overrides "$pod" "$claim")" >/dev/null
  kubectl -n "$NAMESPACE" wait "pod/$pod" --for=jsonpath='{.status.phase}'=Succeeded --timeout=300s \
    || { kubectl -n "$NAMESPACE" logs "$pod" >&2 || true; kubectl -n "$NAMESPACE" delete pod "$pod" --wait=false; die "no hourly rows found in the lake"; }
  kubectl -n "$NAMESPACE" logs "$pod"
  kubectl -n "$NAMESPACE" delete pod "$pod" --wait=false
  say "e2e passed: feed Ready, records on ${kinds[*]} topics, hourly rows in the lake"
}

# A restricted pod that mounts the lake read-only and counts the rows of hourly/coin=<feed>.
lake_check_overrides() {
  local pod="$1" claim="$2"
  cat <<JSON
{"apiVersion": "v1", "spec": {
  "securityContext": {"runAsNonRoot": true, "runAsUser": 185, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{"name": "$pod", "image": "$(image_ref spark)",
    "command": ["python", "-c", "import pyarrow.dataset as ds, sys; n = ds.dataset('/lake/hourly/coin=$FEED', format='parquet').count_rows(); print('hourly rows for $FEED:', n); sys.exit(0 if n > 0 else 1)"],
    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    "volumeMounts": [{"name": "lake", "mountPath": "/lake", "readOnly": true}]}],
  "volumes": [{"name": "lake", "persistentVolumeClaim": {"claimName": "$claim", "readOnly": true}}]}}
JSON
}

cmd_down() {
  need_kind
  if "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
    "$KIND" delete cluster --name "$KIND_CLUSTER"
  else
    say "kind cluster '$KIND_CLUSTER' does not exist; nothing to delete"
  fi
}

[ $# -eq 1 ] || { usage >&2; exit 2; }
case "$1" in
  -h | --help) usage ;;
  images) cmd_images ;;
  up) cmd_up ;;
  load) cmd_load ;;
  deploy) cmd_deploy ;;
  e2e) cmd_e2e ;;
  down) cmd_down ;;
  *) usage >&2; exit 2 ;;
esac
