"""Prometheus metrics and health endpoints: one registry per process, one small HTTP server.

``/metrics`` serves the registry; ``/healthz`` answers 200 while every liveness check passes
(none registered: while the process lives) and 503 naming the failing ones, so a liveness probe can
restart a process whose work loop hangs; ``/readyz`` answers 200 only when every readiness check
passes (and names the failing ones otherwise). A check may come with a detail callable whose text
follows its name in the 503 body (e.g. why a source refuses us).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

NAMESPACE: Final = "coinfeed"
ReadinessCheck = Callable[[], bool]
Detail = Callable[[], str]


def new_registry() -> CollectorRegistry:
    """A fresh registry (no default process collectors from other libraries leak in)."""
    from prometheus_client import PLATFORM_COLLECTOR, PROCESS_COLLECTOR

    registry = CollectorRegistry(auto_describe=True)
    registry.register(PROCESS_COLLECTOR)
    registry.register(PLATFORM_COLLECTOR)
    return registry


class HealthServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` on a background thread."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str = "0.0.0.0") -> None:
        self.registry = registry
        self.checks: dict[str, ReadinessCheck] = {}
        self.liveness: dict[str, ReadinessCheck] = {}
        self.details: dict[str, Detail] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    dead = server.failing(server.liveness)
                    if dead:
                        self._send(503, ("not alive: " + server.describe(dead) + "\n").encode())
                    else:
                        self._send(200, b"ok\n")
                elif path == "/readyz":
                    failing = server.failing_checks()
                    if failing:
                        self._send(503, ("not ready: " + server.describe(failing) + "\n").encode())
                    else:
                        self._send(200, b"ready\n")
                else:
                    self._send(404, b"not found\n")

            def _send(
                self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8"
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds would flood the logs

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def add_check(self, name: str, check: ReadinessCheck, detail: Detail | None = None) -> None:
        self.checks[name] = check
        if detail is not None:
            self.details[name] = detail

    def add_liveness(self, name: str, check: ReadinessCheck, detail: Detail | None = None) -> None:
        """A check /healthz runs: failing means the process is stuck and should be restarted."""
        self.liveness[name] = check
        if detail is not None:
            self.details[name] = detail

    def describe(self, names: list[str]) -> str:
        """``a, b (why b fails)``: each failing check, with its detail when it has one."""
        parts = []
        for name in names:
            try:
                text = self.details[name]() if name in self.details else ""
            except Exception:
                text = ""
            parts.append(f"{name} ({text})" if text else name)
        return ", ".join(parts)

    def failing_checks(self) -> list[str]:
        return self.failing(self.checks)

    @staticmethod
    def failing(checks: dict[str, ReadinessCheck]) -> list[str]:
        failing = []
        for name, check in checks.items():
            try:
                ok = check()
            except Exception:
                ok = False
            if not ok:
                failing.append(name)
        return failing

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
