#!/usr/bin/env bash
# make base-images: local builds of every image coinfeed's charts and Dockerfiles start from, for a
# machine that can reach package registries but no container registry. Nothing is pulled:
#
#   coinfeed.local/debian:bookworm        debootstrap --variant=minbase (Debian's archive)
#   coinfeed.local/python:3.11-bookworm   stands in for python:3.11-slim-bookworm
#   coinfeed.local/jre:17-bookworm        Java 17 runtime
#   coinfeed.local/maven:3-jre17          stands in for maven:3-eclipse-temurin-17
#   coinfeed.local/spark-base:<spark>     stands in for apache/spark (Java 17, python3, user 185)
#   coinfeed.local/kafka:<kafka>          stands in for apache/kafka (jars from Maven Central)
#   coinfeed.local/zookeeper:<zk>         stands in for zookeeper (jars from Maven Central)
#   coinfeed.local/pushgateway:debian     stands in for prom/pushgateway (Debian's binary)
#   coinfeed.local/pause:<ver>            the node's sandbox image (a static C program)
#   coinfeed.local/coredns:<ver>          the node's cluster DNS (scripts/go/coredns)
#
# Each image is built once per version (an image that exists is kept; FORCE=1 rebuilds). The bases
# trust the build host's extra CA certificates (/usr/local/share/ca-certificates), so apt, pip
# and mvn inside builds reach the registries as the host does. Usage:
#   scripts/base-images.sh [all|node|app]   node: pause + coredns; app: everything else
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=../versions.env
source "$ROOT/versions.env"
# shellcheck source=docker-engine.sh
source "$ROOT/scripts/docker-engine.sh"
CACHE="${COINFEED_CACHE:-$HOME/.cache/coinfeed}"
BASE="$ROOT/images/base"
PAUSE_VERSION=3.10
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() { echo "base-images: $*" >&2; exit 1; }
say() { echo "base-images: $*" >&2; }

have_image() { [ -z "${FORCE:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }

# build <tag> <dockerfile> <context> [build args...]: the legacy builder (buildx is not packaged
# in Debian) with the host's network, so RUN steps resolve and reach registries like the host.
build() {
  local tag="$1" file="$2" ctx="$3" start
  shift 3
  if have_image "$tag"; then
    say "$tag present"
    return 0
  fi
  start=$(date +%s)
  say "building $tag ..."
  DOCKER_BUILDKIT=0 docker build -q --network host -f "$file" -t "$tag" "$@" "$ctx" >/dev/null \
    || die "docker build of $tag failed (see above)"
  say "built $tag in $(($(date +%s) - start)) s"
}

# A scratch folder for a build context; removed on exit.
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
context() {
  local dir="$SCRATCH/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "$dir"
}

debian_base() {
  local tag=coinfeed.local/debian:bookworm
  have_image "$tag" && { say "$tag present"; return 0; }
  command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
  local rootfs="$SCRATCH/rootfs" start
  start=$(date +%s)
  say "debootstrap bookworm (minbase) ..."
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$DEBIAN_MIRROR" \
    >"$SCRATCH/debootstrap.log" 2>&1 || { tail -20 "$SCRATCH/debootstrap.log" >&2; die "debootstrap failed"; }
  # The same archives the host uses (updates and security included), no recommends, no docs.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    rm -f "$rootfs/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
  fi
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/99coinfeed"
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null
  fi
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["bash"]' - "$tag" >/dev/null
  say "built $tag in $(($(date +%s) - start)) s"
}

app_bases() {
  debian_base
  local d=coinfeed.local/debian:bookworm jre=coinfeed.local/jre:17-bookworm ctx
  build coinfeed.local/python:3.11-bookworm "$BASE/python.Dockerfile" "$(context empty)" --build-arg DEBIAN_IMAGE=$d
  build "$jre" "$BASE/jre.Dockerfile" "$(context empty)" --build-arg DEBIAN_IMAGE=$d
  build coinfeed.local/maven:3-jre17 "$BASE/maven.Dockerfile" "$(context empty)" --build-arg JRE_IMAGE=$jre
  build "coinfeed.local/spark-base:$SPARK_VERSION" "$BASE/spark.Dockerfile" "$(context empty)" --build-arg JRE_IMAGE=$jre

  if ! have_image "coinfeed.local/kafka:$KAFKA_VERSION" || ! have_image "coinfeed.local/zookeeper:$ZOOKEEPER_IMAGE_VERSION"; then
    bash "$ROOT/scripts/fetch-jars.sh" images >&2 || die "cannot fetch the images' jars from Maven Central"
    ctx="$(context kafka)"
    mkdir -p "$ctx/libs"
    cp "$CACHE/jars/kafka_${SCALA_BINARY_VERSION}-$KAFKA_VERSION"/*.jar "$ctx/libs/"
    cp -n "$CACHE/jars/kafka-tools-$KAFKA_VERSION"/*.jar "$ctx/libs/"
    build "coinfeed.local/kafka:$KAFKA_VERSION" "$BASE/kafka.Dockerfile" "$ctx" --build-arg JRE_IMAGE=$jre
    ctx="$(context zookeeper)"
    mkdir -p "$ctx/lib"
    cp "$CACHE/jars/zookeeper-$ZOOKEEPER_IMAGE_VERSION"/*.jar "$ctx/lib/"
    build "coinfeed.local/zookeeper:$ZOOKEEPER_IMAGE_VERSION" "$BASE/zookeeper.Dockerfile" "$ctx" \
      --build-arg JRE_IMAGE=$jre --build-arg ZOOKEEPER_VERSION="$ZOOKEEPER_IMAGE_VERSION"
  fi

  command -v prometheus-pushgateway >/dev/null || die "prometheus-pushgateway not found: apt-get install prometheus-pushgateway"
  ctx="$(context pushgateway)"
  cp "$(command -v prometheus-pushgateway)" "$ctx/pushgateway"
  build coinfeed.local/pushgateway:debian "$BASE/pushgateway.Dockerfile" "$ctx" --build-arg DEBIAN_IMAGE=$d
}

node_images() {
  local ctx
  command -v cc >/dev/null || die "cc not found: apt-get install gcc libc6-dev"
  ctx="$(context pause)"
  cc -Os -static -o "$ctx/pause" "$BASE/pause.c" || die "cannot build the static pause binary (libc6-dev needed)"
  build "coinfeed.local/pause:$PAUSE_VERSION" "$BASE/pause.Dockerfile" "$ctx"
  local coredns
  coredns="$(bash "$ROOT/scripts/build-go-tools.sh" node | sed -n 's/^COREDNS=//p')"
  ctx="$(context coredns)"
  cp "$coredns" "$ctx/coredns"
  build "coinfeed.local/coredns:$COREDNS_VERSION" "$BASE/coredns.Dockerfile" "$ctx"
}

ensure_docker_engine
case "${1:-all}" in
  all) app_bases; node_images ;;
  app) app_bases ;;
  node) node_images ;;
  -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "usage: scripts/base-images.sh [all|node|app]" ;;
esac
