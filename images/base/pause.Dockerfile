# The local node's pod sandbox image: one static binary (pause.c), like Kubernetes' own pause.
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
