"""kafka-python's read loop must not drop the bytes a broker sent right before closing (real
sockets: a TCP pair, and TLS against an in-process server)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kafka.net import transport

import coinfeed.kafka  # noqa: F401  (installs the fix, as every client factory does)
from coinfeed import kafka_eof
from coinfeed.devcluster.kafka import broker_keystore, new_ca

pytestmark = pytest.mark.unit

REFUSAL = b"\x00\x00\x00\x2aSaslAuthenticate: Authentication failed: Invalid credentials"


def _read_until_quiet(recv: Any, conn: Any, calls: int = 3) -> list[tuple[bytes, Any]]:
    out = []
    for _ in range(calls):
        time.sleep(0.2)  # the peer's bytes and its close have both arrived
        out.append(recv(conn))
    return out


def _tcp_pair_closed_after(payload: bytes) -> socket.socket:
    client, server = socket.socketpair()
    server.sendall(payload)
    server.close()
    client.setblocking(False)
    return client


def test_install_wraps_both_transports_once() -> None:
    assert kafka_eof.install() is True
    assert kafka_eof.install() is True
    for cls in (transport.KafkaTCPTransport, transport.KafkaSSLTransport):
        recv = cls.__dict__["_sock_recv"]
        assert getattr(recv, "_coinfeed_keeps_bytes_before_eof", False), cls
        # Wrapped exactly once: the inner function is kafka-python's own.
        assert not getattr(recv.__wrapped__, "_coinfeed_keeps_bytes_before_eof", False)


def test_tcp_refusal_then_close_delivers_bytes_before_the_error() -> None:
    sock = _tcp_pair_closed_after(REFUSAL)
    conn = SimpleNamespace(_sock=sock)
    try:
        first, second, *_ = _read_until_quiet(transport.KafkaTCPTransport._sock_recv, conn)
    finally:
        sock.close()
    assert first == (REFUSAL, None)
    data, err = second
    assert data == b"" and "socket disconnected" in str(err)


def test_kafka_pythons_own_read_returns_bytes_with_the_error() -> None:
    """Why the fix exists: unwrapped, one call returns both, and its caller keeps only the error."""
    sock = _tcp_pair_closed_after(REFUSAL)
    try:
        data, err = transport.KafkaTCPTransport._sock_recv.__wrapped__(SimpleNamespace(_sock=sock))
    finally:
        sock.close()
    assert data == REFUSAL and err is not None


def test_bytes_without_close_are_unchanged() -> None:
    client, server = socket.socketpair()
    client.setblocking(False)
    conn = SimpleNamespace(_sock=client)
    try:
        server.sendall(b"partial response")
        time.sleep(0.1)
        assert transport.KafkaTCPTransport._sock_recv(conn) == (b"partial response", None)
        assert transport.KafkaTCPTransport._sock_recv(conn) == (b"", None)
    finally:
        client.close()
        server.close()


def test_tls_refusal_then_close_delivers_bytes_before_the_error(tmp_path: Path) -> None:
    ca_pem, ca_key = new_ca()
    keystore = tmp_path / "server.pem"
    keystore.write_bytes(broker_keystore("127.0.0.1", ca_pem, ca_key))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(keystore))
    client_ctx = ssl.create_default_context(cadata=ca_pem.decode())

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        raw, _ = listener.accept()
        with server_ctx.wrap_socket(raw, server_side=True) as tls:
            tls.sendall(REFUSAL)
        # Closed without a TLS close_notify reply wait: as a JVM broker closing at once.

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    tls_client = client_ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"
    )
    thread.join(timeout=10)
    listener.close()
    tls_client.setblocking(False)
    conn = SimpleNamespace(_sock=tls_client)
    try:
        results = _read_until_quiet(transport.KafkaSSLTransport._sock_recv, conn)
    finally:
        tls_client.close()
    assert results[0] == (REFUSAL, None)
    assert results[1][0] == b"" and results[1][1] is not None
