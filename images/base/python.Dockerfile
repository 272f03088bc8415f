# Local stand-in for python:3.11-slim-bookworm, for machines without a registry
# (scripts/base-images.sh). Debian bookworm's python3 is 3.11.
ARG DEBIAN_IMAGE=coinfeed.local/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python
ENV LANG=C.UTF-8
CMD ["python3"]
