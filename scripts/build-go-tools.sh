#!/usr/bin/env bash
# Build the Go tools the tests and the kind workflow need, from the Go module proxy only, and cache
# them by version outside the repository: ~/.cache/coinfeed/bin/<tool>-<version>/<binary>
# (envtest: ~/.cache/coinfeed/bin/envtest-<kubernetes version>/{kube-apiserver,etcd,kubectl}).
#
# Each tool is one tiny Go module under scripts/go/<tool>/ (go.mod + go.sum committed) whose
# `tool` directive names the main package; `pin` rewrites those modules from versions.env.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
GO_DIR="$ROOT/scripts/go"
CACHE="${COINFEED_CACHE:-$HOME/.cache/coinfeed}"
BIN="$CACHE/bin"

usage() {
  cat <<'EOF'
usage: scripts/build-go-tools.sh envtest|helm|kube-linter|kind|all|pin

  node         kubelet, kube-controller-manager, kube-scheduler, kube-proxy (same module and
               go.mod as kube-apiserver) and CoreDNS (COREDNS_VERSION) for `make cluster-up`;
               prints NODE_BIN=<dir> and COREDNS=<binary>.
  envtest      kube-apiserver + etcd (+ kubectl of the same release) for the test API server;
               prints KUBEBUILDER_ASSETS=<dir>.
               If $KUBEBUILDER_ASSETS already holds both binaries, that folder is used as is.
  helm         the helm CLI (HELM_VERSION)
  kube-linter  the kube-linter CLI (KUBE_LINTER_VERSION), if the Go module proxy serves it
  kind         the kind CLI (KIND_VERSION; it needs Docker to do anything)
  all          envtest, helm, kind, then kube-linter (a kube-linter the proxy does not serve
               is reported, not fatal)
  pin          rewrite scripts/go/*/go.mod for the versions in versions.env (needs the proxy)

Binaries are cached in ${COINFEED_CACHE:-~/.cache/coinfeed}/bin/<tool>-<version>/; a tool whose
binary exists (built from the same go.mod and flags) is not rebuilt. Versions: versions.env.
EOF
}

die() { echo "build-go-tools: $*" >&2; exit 1; }
say() { echo "build-go-tools: $*" >&2; }

command -v go >/dev/null || die "go not found: install Go >= 1.24 (https://go.dev/doc/install)"

# versions.env holds plain KEY=value lines.
read_version() {
  local key="$1" value
  value="$(sed -n "s/^${key}=//p" "$ROOT/versions.env" | tail -n 1)"
  [ -n "$value" ] || die "$key is not pinned in versions.env"
  printf '%s\n' "$value"
}

K8S_VERSION="$(read_version KUBERNETES_VERSION)"
ETCD_VERSION="$(read_version ETCD_VERSION)"
HELM_VERSION="$(read_version HELM_VERSION)"
KUBE_LINTER_VERSION="$(read_version KUBE_LINTER_VERSION)"
KIND_VERSION="$(read_version KIND_VERSION)"
COREDNS_VERSION="$(read_version COREDNS_VERSION)"

# -mod=mod: the tool modules may be completed (go.sum) on first use; -buildvcs=false: the binaries
# are keyed by version, not by this repository's commit.
export GOFLAGS="-mod=mod -buildvcs=false"

SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT

# The version of module $2 that the tool module in scripts/go/$1 requires.
module_version() {
  (cd "$GO_DIR/$1" && go list -m -f '{{.Version}}' "$2")
}

# Fail early, naming the fix, when a committed go.mod and versions.env disagree.
check_pin() {
  local tool="$1" module="$2" want="$3" have
  have="$(module_version "$tool" "$module")" || die "cannot read $module from scripts/go/$tool/go.mod"
  [ "$have" = "$want" ] \
    || die "scripts/go/$tool/go.mod has $module $have but versions.env asks for $want: run scripts/build-go-tools.sh pin"
}

# go_build <tool module dir> <main package> <output file> [-X settings]: build into a temporary
# file, then move it into place so an interrupted build never leaves a half-written binary cached.
go_build() {
  local tool="$1" pkg="$2" out="$3" start
  shift 3
  mkdir -p "$(dirname "$out")"
  start=$(date +%s)
  say "building $pkg (first build takes minutes) ..."
  (cd "$GO_DIR/$tool" && go build -trimpath -ldflags="-s -w $*" -o "$out.tmp.$$" "$pkg") \
    || { rm -f "$out.tmp.$$"; die "go build $pkg failed (see the errors above)"; }
  mv -f "$out.tmp.$$" "$out"
  recipe "$tool" "$@" >"$out.recipe"
  say "built $out in $(($(date +%s) - start)) s"
}

# What a binary was built from: its tool module's go.mod and the -X settings. A cached binary with a
# different (or no) recipe, e.g. from an older version of this script, is rebuilt.
recipe() {
  local tool="$1"
  shift
  printf '%s %s\n' "$(sha256sum <"$GO_DIR/$tool/go.mod" | cut -c1-16)" "$*"
}

# up_to_date <output file> <tool module dir> [-X settings]
up_to_date() {
  local out="$1"
  shift
  [ -x "$out" ] && [ -f "$out.recipe" ] && [ "$(cat "$out.recipe")" = "$(recipe "$@")" ]
}

has_envtest_binaries() {
  [ -n "$1" ] && [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]
}

build_envtest() {
  if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
    if has_envtest_binaries "$KUBEBUILDER_ASSETS"; then
      echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
      return 0
    fi
    say "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no kube-apiserver and etcd; building them instead"
  fi
  local dir="$BIN/envtest-$K8S_VERSION"
  # What Kubernetes' own build stamps in (hack/lib/version.sh): without it the server reports
  # v0.0.0-master, and clients that check the server version (helm's kubeVersion) refuse it.
  local pkg stamp=()
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=("-X $pkg.gitVersion=v$K8S_VERSION" "-X $pkg.gitMajor=${K8S_VERSION%%.*}"
      "-X $pkg.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")" "-X $pkg.gitTreeState=clean")
  done
  if ! up_to_date "$dir/kube-apiserver" kube-apiserver "${stamp[@]}"; then
    check_pin kube-apiserver k8s.io/kubernetes "v$K8S_VERSION"
    go_build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$dir/kube-apiserver" "${stamp[@]}"
  fi
  # envtest ships a kubectl of the same release too (the Debian one may be out of version skew).
  if ! up_to_date "$dir/kubectl" kube-apiserver "${stamp[@]}"; then
    check_pin kube-apiserver k8s.io/kubernetes "v$K8S_VERSION"
    go_build kube-apiserver k8s.io/kubernetes/cmd/kubectl "$dir/kubectl" "${stamp[@]}"
  fi
  if ! up_to_date "$dir/etcd" etcd; then
    check_pin etcd go.etcd.io/etcd/server/v3 "v$ETCD_VERSION"
    go_build etcd go.etcd.io/etcd/server/v3 "$dir/etcd"
  fi
  echo "KUBEBUILDER_ASSETS=$dir"
}

# The same version stamp as kube-apiserver's: the kubelet reports it as the node's version.
k8s_stamp() {
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf '%s\n' "-X $pkg.gitVersion=v$K8S_VERSION" "-X $pkg.gitMajor=${K8S_VERSION%%.*}" \
      "-X $pkg.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")" "-X $pkg.gitTreeState=clean"
  done
}

# The node's programs, from the same k8s.io/kubernetes module (and go.mod) as kube-apiserver, so
# the whole local cluster is one release; CoreDNS from its own module (scripts/go/coredns).
build_node() {
  local dir="$BIN/node-$K8S_VERSION" cmd stamp=()
  mapfile -t stamp < <(k8s_stamp)
  for cmd in kubelet kube-controller-manager kube-scheduler kube-proxy; do
    if ! up_to_date "$dir/$cmd" kube-apiserver "${stamp[@]}"; then
      check_pin kube-apiserver k8s.io/kubernetes "v$K8S_VERSION"
      go_build kube-apiserver "k8s.io/kubernetes/cmd/$cmd" "$dir/$cmd" "${stamp[@]}"
    fi
  done
  local coredns="$BIN/coredns-$COREDNS_VERSION/coredns"
  if ! up_to_date "$coredns" coredns; then
    check_pin coredns github.com/coredns/coredns "v$COREDNS_VERSION"
    # Static: it runs in an image that holds nothing else.
    CGO_ENABLED=0 go_build coredns . "$coredns"
  fi
  echo "NODE_BIN=$dir"
  echo "COREDNS=$coredns"
}

build_helm() {
  local out="$BIN/helm-$HELM_VERSION/helm" client_go minor
  # As helm's Makefile does: its version, and the Kubernetes version `helm template` and
  # `helm lint` assume by default (client-go v0.N.P means Kubernetes 1.N), not the source's 1.20.
  client_go="$(module_version helm k8s.io/client-go)" || die "cannot read k8s.io/client-go from scripts/go/helm/go.mod"
  minor="$(cut -d. -f2 <<<"$client_go")"
  local stamp=(
    "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
    "-X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
    "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
    "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
    "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  )
  if ! up_to_date "$out" helm "${stamp[@]}"; then
    check_pin helm helm.sh/helm/v3 "v$HELM_VERSION"
    go_build helm helm.sh/helm/v3/cmd/helm "$out" "${stamp[@]}"
  fi
  echo "HELM=$out"
}

build_kind() {
  local out="$BIN/kind-$KIND_VERSION/kind"
  if ! up_to_date "$out" kind; then
    check_pin kind sigs.k8s.io/kind "v$KIND_VERSION"
    go_build kind sigs.k8s.io/kind "$out"
  fi
  echo "KIND=$out"
}

# kube-linter has no module of its own under scripts/go/ unless the proxy serves it: its vanity
# path and its GitHub path have both been answered "403 Forbidden" by the proxy reachable here.
build_kube_linter() {
  local out="$BIN/kube-linter-$KUBE_LINTER_VERSION/kube-linter"
  if [ -x "$out" ]; then
    echo "KUBE_LINTER=$out"
    return 0
  fi
  local module errors="" answer work
  for module in golang.stackrox.io/kube-linter github.com/stackrox/kube-linter; do
    if answer="$(cd "$SCRATCH" && go mod download -json "$module@v$KUBE_LINTER_VERSION" 2>&1)"; then
      work="$(mktemp -d -p "$SCRATCH")"
      printf 'module coinfeed.local/tools/kube-linter\n\ngo 1.24.0\n\ntool %s/cmd/kube-linter\n\nrequire %s v%s\n' \
        "$module" "$module" "$KUBE_LINTER_VERSION" >"$work/go.mod"
      (cd "$work" && go mod tidy) || die "go mod tidy for $module failed"
      mkdir -p "$GO_DIR/kube-linter"
      cp "$work/go.mod" "$work/go.sum" "$GO_DIR/kube-linter/"
      go_build kube-linter "$module/cmd/kube-linter" "$out"
      echo "KUBE_LINTER=$out"
      return 0
    fi
    errors+="  $module@v$KUBE_LINTER_VERSION: $(sed -n 's/^[[:space:]]*"Error": "\(.*\)"$/\1/p' <<<"$answer" | head -n 1)"$'\n'
  done
  say "kube-linter v$KUBE_LINTER_VERSION is not available from the Go module proxy:"
  printf '%s' "$errors" >&2
  return 3
}

# pin: rewrite each tool module for versions.env. kube-apiserver's replace list is taken from the
# replace block of that Kubernetes release's own go.mod; the etcd version must be the one it names.
pin() {
  local mod gomod staging etcd_named
  gomod="$(cd "$SCRATCH" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$gomod" ] || die "the Go module proxy does not serve k8s.io/kubernetes@v$K8S_VERSION"
  etcd_named="$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2}' "$gomod")"
  [ "$etcd_named" = "v$ETCD_VERSION" ] \
    || die "Kubernetes v$K8S_VERSION names etcd $etcd_named but versions.env has ETCD_VERSION=$ETCD_VERSION: set ETCD_VERSION=${etcd_named#v}"
  staging="$(sed -n '/^replace (/,/^)/p' "$gomod" | awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}')"
  # The replace block is rewritten as one block (go mod edit would leave one line per module).
  local gomod_ours="$GO_DIR/kube-apiserver/go.mod" minor="0.${K8S_VERSION#1.}"
  {
    awk '/^replace \($/ {skip = 1; next} skip && /^\)$/ {skip = 0; next} !skip && !/^replace /' "$gomod_ours" \
      | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
    echo
    echo "replace ("
    for mod in $staging; do
      printf '\t%s => %s v%s\n' "$mod" "$mod" "$minor"
    done
    echo ")"
  } >"$SCRATCH/go.mod"
  mv "$SCRATCH/go.mod" "$gomod_ours"
  (cd "$GO_DIR/kube-apiserver" && go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION" && go mod tidy)
  (cd "$GO_DIR/etcd" && go mod edit -require="go.etcd.io/etcd/server/v3@v$ETCD_VERSION" && go mod tidy)
  (cd "$GO_DIR/helm" && go mod edit -require="helm.sh/helm/v3@v$HELM_VERSION" && go mod tidy)
  (cd "$GO_DIR/kind" && go mod edit -require="sigs.k8s.io/kind@v$KIND_VERSION" && go mod tidy)
  (cd "$GO_DIR/coredns" && go mod edit -require="github.com/coredns/coredns@v$COREDNS_VERSION" && go mod tidy)
  say "scripts/go/*/go.mod now match versions.env (kubernetes $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION, kind $KIND_VERSION)"
}

[ $# -eq 1 ] || { usage >&2; exit 2; }
case "$1" in
  -h | --help) usage ;;
  envtest) build_envtest ;;
  helm) build_helm ;;
  kind) build_kind ;;
  node) build_node ;;
  kube-linter) build_kube_linter ;;
  all)
    build_envtest
    build_helm
    build_kind
    build_node
    build_kube_linter || say "continuing without kube-linter (scripts/lint-static.sh skips it with a message)"
    ;;
  pin) pin ;;
  *) usage >&2; exit 2 ;;
esac
