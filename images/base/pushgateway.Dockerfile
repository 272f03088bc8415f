# Local Prometheus Pushgateway image: Debian's prometheus-pushgateway binary (scripts/base-images.sh
# copies it into the build context), run as nobody like prom/pushgateway.
ARG DEBIAN_IMAGE=coinfeed.local/debian:bookworm
FROM ${DEBIAN_IMAGE}
COPY pushgateway /bin/pushgateway
USER 65534:65534
EXPOSE 9091
ENTRYPOINT ["/bin/pushgateway"]
