# Local Java 17 runtime (the base of the local Kafka, ZooKeeper, Maven and Spark images).
ARG DEBIAN_IMAGE=coinfeed.local/debian:bookworm
FROM ${DEBIAN_IMAGE}
# bash and procps: the chart's start scripts and liveness checks use them.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*
ENV LANG=C.UTF-8 JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
