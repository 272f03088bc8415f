#!/usr/bin/env bash
# Static checks of everything that is not Python (`make lint` runs it after ruff and mypy):
#   1. shellcheck on every *.sh and .ci/run
#   2. yamllint (.yamllint) on manifests/, the charts' Chart.yaml, values files and CRDs
#   3. helm lint --strict on every chart, with its defaults and with each shipped values file
#      (values-*.yaml and ci/*.yaml)
#   4. kube-linter (.kube-linter.yaml) on every chart rendered with each of those values files;
#      skipped, with the reason, when no kube-linter binary exists (the Go module proxy reachable
#      here does not serve it).
#   5. Checkov (.checkov.yaml, every skipped check justified there) on every chart rendered with
#      each values file, in one run; from the venv `make setup` makes under $CACHE/tools.
# Every step runs; the script fails at the end if any step failed.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
# shellcheck disable=SC1091  # versions.env holds plain KEY=value lines
source "$ROOT/versions.env"
CACHE="${COINFEED_CACHE:-$HOME/.cache/coinfeed}"

failed=()
step() { echo "== lint-static: $*"; }
fail() { echo "lint-static: FAILED: $*" >&2; failed+=("$1"); }

# A tool on PATH, else the one scripts/build-go-tools.sh built; prints its path.
find_tool() {
  local name="$1" version="$2"
  if command -v "$name" 2>/dev/null; then return 0; fi
  if [ -x "$CACHE/bin/$name-$version/$name" ]; then echo "$CACHE/bin/$name-$version/$name"; return 0; fi
  return 1
}

# Charts: every folder under charts/ with a Chart.yaml (not the vendored charts/*/charts/).
charts=()
for c in charts/*/Chart.yaml; do charts+=("$(dirname "$c")"); done

# Values files of a chart: its defaults (empty argument) and every shipped file.
values_files() {
  local chart="$1" f
  echo ""
  for f in "$chart"/values-*.yaml "$chart"/ci/*.yaml; do
    [ -f "$f" ] && echo "$f"
  done
}

# 1. shellcheck
step "shellcheck"
if command -v shellcheck >/dev/null; then
  mapfile -t scripts < <(git ls-files --cached --others --exclude-standard -- '*.sh' .ci/run | sort -u)
  [ -f .ci/run ] && ! printf '%s\n' "${scripts[@]}" | grep -qx .ci/run && scripts+=(.ci/run)
  if shellcheck -x --source-path=SCRIPTDIR "${scripts[@]}"; then
    echo "shellcheck: ${#scripts[@]} scripts clean"
  else
    fail shellcheck "shellcheck reported problems"
  fi
else
  fail shellcheck "shellcheck not found: apt-get install shellcheck"
fi

# 2. yamllint
step "yamllint"
if command -v yamllint >/dev/null; then
  yaml=(manifests/)
  for c in "${charts[@]}"; do
    yaml+=("$c/Chart.yaml")
    for f in "$c"/values*.yaml "$c"/ci/*.yaml "$c"/crds/*.yaml; do [ -f "$f" ] && yaml+=("$f"); done
  done
  if yamllint -c .yamllint --strict "${yaml[@]}"; then
    echo "yamllint: clean"
  else
    fail yamllint "yamllint reported problems"
  fi
else
  fail yamllint "yamllint not found: apt-get install yamllint"
fi

# 3. helm lint
step "helm lint --strict"
if HELM="$(find_tool helm "$HELM_VERSION")"; then
  for c in "${charts[@]}"; do
    if grep -q '^dependencies:' "$c/Chart.yaml"; then
      "$HELM" dependency build "$c" >/dev/null || { fail helm "helm dependency build $c"; continue; }
    fi
    while IFS= read -r v; do
      args=(lint --strict --quiet "$c")
      [ -n "$v" ] && args+=(-f "$v")
      if "$HELM" "${args[@]}"; then
        echo "helm lint: $c ${v:-(defaults)}: clean"
      else
        fail helm "helm lint $c ${v:-(defaults)}"
      fi
    done < <(values_files "$c")
  done
else
  fail helm "helm $HELM_VERSION not found: run 'bash scripts/build-go-tools.sh helm'"
fi

# 4. kube-linter
step "kube-linter"
if [ -z "${HELM:-}" ]; then
  fail kube-linter "needs helm to render the charts"
elif KUBE_LINTER="$(find_tool kube-linter "$KUBE_LINTER_VERSION")"; then
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
  for c in "${charts[@]}"; do
    while IFS= read -r v; do
      args=(template coinfeed "$c" --namespace coinfeed)
      [ -n "$v" ] && args+=(-f "$v")
      name="$(basename "$c")-$(basename "${v:-defaults}" .yaml)"
      "$HELM" "${args[@]}" >"$out/$name.yaml" || { fail kube-linter "helm template $c ${v:-(defaults)}"; continue; }
      if "$KUBE_LINTER" lint --config .kube-linter.yaml "$out/$name.yaml"; then
        echo "kube-linter: $c ${v:-(defaults)}: clean"
      else
        fail kube-linter "kube-linter $c ${v:-(defaults)}"
      fi
    done < <(values_files "$c")
  done
else
  echo "kube-linter: SKIPPED: no kube-linter $KUBE_LINTER_VERSION on PATH or in $CACHE/bin/kube-linter-$KUBE_LINTER_VERSION/;"
  echo "  the Go module proxy reachable here does not serve golang.stackrox.io/kube-linter (see"
  echo "  'bash scripts/build-go-tools.sh kube-linter'). Install it to run this step; the chart"
  echo "  tests (tests/integration/charts) check the same security and resource rules meanwhile."
fi

# 5. Checkov
step "checkov"
CHECKOV="$CACHE/tools/checkov-${CHECKOV_VERSION}/bin/checkov"
if [ -z "${HELM:-}" ]; then
  fail checkov "needs helm to render the charts"
elif [ -x "$CHECKOV" ]; then
  rendered="$(mktemp -d)"
  for c in "${charts[@]}"; do
    while IFS= read -r v; do
      args=(template coinfeed "$c" --namespace coinfeed)
      [ -n "$v" ] && args+=(-f "$v")
      name="$(basename "$c")-$(basename "${v:-defaults}" .yaml)"
      "$HELM" "${args[@]}" >"$rendered/$name.yaml" || fail checkov "helm template $c ${v:-(defaults)}"
    done < <(values_files "$c")
  done
  # One process over every rendering: Checkov's start-up dominates its run time.
  if "$CHECKOV" --config-file .checkov.yaml -d "$rendered"; then
    echo "checkov: $(find "$rendered" -name '*.yaml' | wc -l) renderings clean"
  else
    fail checkov "checkov reported problems (see above; exceptions go in .checkov.yaml, justified)"
  fi
  rm -rf "$rendered"
else
  fail checkov "checkov $CHECKOV_VERSION not found at $CHECKOV: run 'make setup'"
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "lint-static: failed steps: ${failed[*]}" >&2
  exit 1
fi
echo "lint-static: all steps passed"
