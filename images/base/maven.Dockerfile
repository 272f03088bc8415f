# Local stand-in for maven:3-eclipse-temurin-17 (the Spark image's jar-resolving stage).
ARG JRE_IMAGE=coinfeed.local/jre:17-bookworm
FROM ${JRE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends maven \
 && rm -rf /var/lib/apt/lists/*
