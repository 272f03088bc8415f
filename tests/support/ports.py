"""Free loopback ports for services the tests start (the project's one implementation)."""

from __future__ import annotations

from coinfeed.devcluster.procs import free_ports


def free_port() -> int:
    return free_ports(1)[0]


__all__ = ["free_port", "free_ports"]
