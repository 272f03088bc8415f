# Local Apache ZooKeeper image: the zookeeper jars Kafka depends on (Maven Central), laid out like
# the official zookeeper image (/apache-zookeeper-<version>-bin/lib, user zookeeper 1000).
ARG JRE_IMAGE=coinfeed.local/jre:17-bookworm
FROM ${JRE_IMAGE}
ARG ZOOKEEPER_VERSION
RUN groupadd -g 1000 zookeeper && useradd -u 1000 -g 1000 -M -d /data -s /bin/bash zookeeper
COPY lib/ /apache-zookeeper-${ZOOKEEPER_VERSION}-bin/lib/
ENV ZK_HOME=/apache-zookeeper-${ZOOKEEPER_VERSION}-bin
USER 1000:1000
