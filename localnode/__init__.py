"""A real single-node Kubernetes cluster on this machine, for `make cluster-up` and the tests.

Dev tooling: it lives outside the `coinfeed` distribution, so no image installs it.
"""
