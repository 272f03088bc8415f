#!/bin/bash
# Start one ZooKeeper server of the StatefulSet: its myid is the pod ordinal + 1 (ids start at 1).
# zoo.cfg (with every server.N line) comes from the ConfigMap mounted as ZOOCFGDIR.
set -euo pipefail

ordinal="${HOSTNAME##*-}"
case "$ordinal" in
  '' | *[!0-9]*) echo "zookeeper-start: cannot take an id from hostname '$HOSTNAME'" >&2; exit 1 ;;
esac
echo "$((ordinal + 1))" > /data/myid
# java on the image's jar directory rather than zkServer.sh, so the official image
# (/apache-zookeeper-<v>-bin/lib) and the local one (same layout) start the same way.
lib=""
for d in /apache-zookeeper-*-bin/lib "${ZK_HOME:-/nonexistent}/lib"; do
  [ -d "$d" ] && { lib="$d"; break; }
done
[ -n "$lib" ] || { echo "zookeeper-start: no ZooKeeper jar directory (/apache-zookeeper-*-bin/lib) in this image" >&2; exit 1; }
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
exec "$java" "-Xmx${ZK_SERVER_HEAP:-256}m" "-Xms${ZK_SERVER_HEAP:-256}m" \
  -Dzookeeper.log.dir="${ZOO_LOG_DIR:-/tmp}" \
  -Dlog4j.configuration="file:$ZOOCFGDIR/log4j.properties" \
  -Dlogback.configurationFile="$ZOOCFGDIR/logback.xml" \
  -cp "$lib/*:$ZOOCFGDIR" org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZOOCFGDIR/zoo.cfg"
