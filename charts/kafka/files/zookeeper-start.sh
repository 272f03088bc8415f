#!/bin/bash
# Start one ZooKeeper server of the StatefulSet: its myid is the pod ordinal + 1 (ids start at 1).
# zoo.cfg (with every server.N line) comes from the ConfigMap mounted as ZOOCFGDIR.
set -euo pipefail

ordinal="${HOSTNAME##*-}"
case "$ordinal" in
  '' | *[!0-9]*) echo "zookeeper-start: cannot take an id from hostname '$HOSTNAME'" >&2; exit 1 ;;
esac
echo "$((ordinal + 1))" > /data/myid
exec zkServer.sh start-foreground
