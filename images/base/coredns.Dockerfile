# The local node's cluster DNS: the static CoreDNS built from scripts/go/coredns.
FROM scratch
COPY coredns /coredns
USER 65535:65535
ENTRYPOINT ["/coredns"]
