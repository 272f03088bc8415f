# Local stand-in for apache/spark:<version>-scala2.13-java17-python3: Java 17, python3 and the
# `spark` user (185) with /opt/spark/work-dir. Spark itself comes from pyspark (images/spark).
ARG JRE_IMAGE=coinfeed.local/jre:17-bookworm
FROM ${JRE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv libnss-wrapper \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 185 spark && useradd -u 185 -g 185 -M -d /opt/spark -s /bin/bash spark \
 && mkdir -p /opt/spark/work-dir && chown 185:185 /opt/spark/work-dir
WORKDIR /opt/spark/work-dir
USER 185:185
