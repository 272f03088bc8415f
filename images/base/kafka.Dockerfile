# Local Apache Kafka image: the same broker jars as apache/kafka:<version>, from Maven Central
# (`make setup`'s kafka jars + kafka-tools), laid out like the official image (/opt/kafka/libs,
# user appuser 1000). The chart starts it with `java -cp /opt/kafka/libs/*`, as it does the
# official image. Build context: a folder with libs/ (scripts/base-images.sh makes it).
ARG JRE_IMAGE=coinfeed.local/jre:17-bookworm
FROM ${JRE_IMAGE}
RUN groupadd -g 1000 appuser && useradd -u 1000 -g 1000 -M -d /home/appuser -s /bin/bash appuser
COPY libs/ /opt/kafka/libs/
USER 1000:1000
