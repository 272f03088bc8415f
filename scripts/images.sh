#!/usr/bin/env bash
# make images: build coinfeed-producer, coinfeed-operator and coinfeed-spark (tag IMAGE_TAG, "dev")
# from images/*/Dockerfile with the repository root as context.
#
# Bases: BASES=official uses the pinned public images (python, apache/spark, maven) from a
# registry; BASES=local uses the local builds of `make base-images` (Debian packages, no
# registry); BASES=auto (default) takes the official ones when they are present or can be pulled
# within PULL_TIMEOUT seconds, else builds and uses the local ones. Same Dockerfiles either way.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../versions.env
source "$ROOT/versions.env"
# shellcheck source=docker-engine.sh
source "$ROOT/scripts/docker-engine.sh"
IMAGE_TAG="${IMAGE_TAG:-dev}"
BASES="${BASES:-auto}"
PULL_TIMEOUT="${PULL_TIMEOUT:-30}"
OFFICIAL_PYTHON=python:3.11.14-slim-bookworm

say() { echo "images: $*" >&2; }
die() { echo "images: $*" >&2; exit 1; }

ensure_docker_engine

if [ "$BASES" = auto ]; then
  if docker image inspect "$OFFICIAL_PYTHON" >/dev/null 2>&1 \
      || timeout "$PULL_TIMEOUT" docker pull -q "$OFFICIAL_PYTHON" >/dev/null 2>&1; then
    BASES=official
  else
    BASES=local
    say "no registry answers for $OFFICIAL_PYTHON: building on local bases (make base-images)"
  fi
fi
args=(--build-arg SPARK_VERSION="$SPARK_VERSION" --build-arg SCALA_BINARY_VERSION="$SCALA_BINARY_VERSION")
case "$BASES" in
  official) ;;
  local)
    bash "$ROOT/scripts/base-images.sh" app
    args+=(--build-arg PYTHON_IMAGE=coinfeed.local/python:3.11-bookworm
      --build-arg SPARK_IMAGE="coinfeed.local/spark-base:$SPARK_VERSION"
      --build-arg MAVEN_IMAGE=coinfeed.local/maven:3-jre17
      # RUN steps resolve and reach the package registries the way the host does.
      --network host)
    ;;
  *) die "BASES must be auto, official or local (got '$BASES')" ;;
esac

for img in producer operator spark; do
  start=$(date +%s)
  say "building coinfeed-$img:$IMAGE_TAG from images/$img/Dockerfile ($BASES bases) ..."
  log="$ROOT/run/images/$img.log"
  mkdir -p "$(dirname "$log")"
  DOCKER_BUILDKIT=0 docker build -f "images/$img/Dockerfile" -t "coinfeed-$img:$IMAGE_TAG" \
    "${args[@]}" "$ROOT" >"$log" 2>&1 || { tail -30 "$log" >&2; die "building coinfeed-$img failed (log: $log)"; }
  say "built coinfeed-$img:$IMAGE_TAG in $(($(date +%s) - start)) s"
done
