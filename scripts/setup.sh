#!/usr/bin/env bash
# make setup: .venv with every component (editable) + dev tools, and the pinned JVM jars.
# Idempotent; a second run with nothing changed takes seconds and needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

die() { echo "setup: $*" >&2; exit 1; }

# Prerequisites, each with what to install.
command -v python3 >/dev/null || die "python3 not found: install Python >= 3.11 (apt-get install python3 python3-venv)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python >= 3.11 required, found $(python3 -V 2>&1): install a newer python3"
command -v java >/dev/null || die "java not found: install Java 17+ (apt-get install openjdk-17-jdk-headless)"
jv=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
[ "${jv%%.*}" -ge 17 ] 2>/dev/null || die "Java 17+ required (Kafka 3.9 and Spark 4), found ${jv:-unknown}: install openjdk-17-jdk-headless"
command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven); it fetches the Kafka and Spark jars"

hash=$(cat pyproject.toml versions.env | sha256sum | cut -c1-16)
stamp="$VENV/.coinfeed-setup"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] && [ -x "$VENV/bin/python" ]; then
  echo "setup: python environment up to date ($VENV)"
else
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  echo "setup: installing coinfeed[dev,bench] into $VENV (first run downloads pyspark, ~5 min) ..."
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[dev,bench]"
fi
bash scripts/fetch-jars.sh
# The hourly job's driver JVM starts from a class-data sharing archive of Spark's classes (a
# training run, then java -Xshare:dump; ~1.5 min once, ~200 MB; coinfeed spark-cds). Without it
# runs only start slower, so a failed build warns and setup goes on.
"$VENV/bin/coinfeed" spark-cds \
  || echo "setup: warning: no class-data archive (runs start ~5 s slower); retry: $VENV/bin/coinfeed spark-cds" >&2
# Checkov (manifest security lint in `make lint`): its own venv, because its pins (an old
# packaging, networkx 2) would downgrade packages the project's environment uses.
# shellcheck disable=SC1091  # versions.env holds plain KEY=value lines
source versions.env
checkov_venv="${COINFEED_CACHE:-$HOME/.cache/coinfeed}/tools/checkov-$CHECKOV_VERSION"
if [ ! -x "$checkov_venv/bin/checkov" ]; then
  echo "setup: installing checkov $CHECKOV_VERSION into $checkov_venv ..."
  python3 -m venv "$checkov_venv"
  "$checkov_venv/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"
fi
echo "$hash" > "$stamp"
echo "setup: done. Next: make demo, or make test"
