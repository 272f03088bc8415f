# shellcheck shell=bash
# Sourced by scripts that build images. ensure_docker_engine: use the Docker engine the user has
# (DOCKER_HOST or the default socket); if none answers, start Debian's dockerd as our own engine
# on run/docker/docker.sock. That engine changes nothing on the host's network: no bridge, no
# iptables or forwarding rules (builds use --network host). `make cluster-down` (or
# `scripts/docker-engine.sh stop`) stops it. Its images and layers live in
# ~/.cache/coinfeed/docker, outside the repository, so a second build is fast.

COINFEED_DOCKER_DIR="${COINFEED_DOCKER_DIR:-${RUN_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/run}/docker}"
COINFEED_DOCKER_ROOT="${COINFEED_DOCKER_ROOT:-${COINFEED_CACHE:-$HOME/.cache/coinfeed}/docker}"

ensure_docker_engine() {
  command -v docker >/dev/null || { echo "docker CLI not found: apt-get install docker.io" >&2; return 1; }
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  local sock="$COINFEED_DOCKER_DIR/docker.sock"
  export DOCKER_HOST="unix://$sock"
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  command -v dockerd >/dev/null || { echo "no Docker engine answers and dockerd is not installed: apt-get install docker.io" >&2; return 1; }
  [ "$(id -u)" = 0 ] || { echo "no Docker engine answers; starting our own dockerd needs root" >&2; return 1; }
  mkdir -p "$COINFEED_DOCKER_DIR" "$COINFEED_DOCKER_ROOT"
  echo "docker-engine: starting dockerd (data in $COINFEED_DOCKER_ROOT, socket $sock)" >&2
  setsid dockerd --host "$DOCKER_HOST" --data-root "$COINFEED_DOCKER_ROOT" \
    --exec-root "$COINFEED_DOCKER_DIR/exec" --pidfile "$COINFEED_DOCKER_DIR/dockerd.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    </dev/null >"$COINFEED_DOCKER_DIR/dockerd.log" 2>&1 &
  local _
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "dockerd did not answer within 60 s; last lines of $COINFEED_DOCKER_DIR/dockerd.log:" >&2
  tail -20 "$COINFEED_DOCKER_DIR/dockerd.log" >&2
  return 1
}

stop_docker_engine() {
  local pidfile="$COINFEED_DOCKER_DIR/dockerd.pid" pid mount
  if [ -f "$pidfile" ]; then
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    # dockerd's own containerd may outlive it (e.g. after a SIGKILL); it holds the data root's lock.
    pkill -f "containerd --config $COINFEED_DOCKER_DIR/exec/containerd/containerd.toml" 2>/dev/null || true
  fi
  # dockerd bind-mounts its network namespace at exec/netns/default and leaves it mounted when it
  # stops: a mount the host did not have before. Deepest first; none while a dockerd uses them.
  pgrep -f -- "--exec-root $COINFEED_DOCKER_DIR/exec" >/dev/null && return 0
  while read -r mount; do
    umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
  done < <(awk -v root="$COINFEED_DOCKER_DIR/exec/" 'index($5, root) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start) ensure_docker_engine && echo "DOCKER_HOST=${DOCKER_HOST:-default}" ;;
    stop) stop_docker_engine ;;
    *) echo "usage: scripts/docker-engine.sh start|stop" >&2; exit 2 ;;
  esac
fi
