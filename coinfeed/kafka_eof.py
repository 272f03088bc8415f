"""Keep the bytes a broker sent just before it closed the connection.

kafka-python 3.0 (``kafka.net.transport``) reads a socket until it would block. When the same read
loop also meets end-of-file or a read error, ``_read_from_sock`` aborts with that error and drops
the bytes already read. A broker that refuses a SASL login sends its SaslAuthenticate error and
closes at once, so the refusal is lost and the client reports only "Unable to bootstrap". The
wrapper below hands the bytes over first and reports the error on the next read (a socket at
end-of-file or in error stays readable, so that read comes at once).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

_PENDING = "_coinfeed_pending_error"
_MARK = "_coinfeed_keeps_bytes_before_eof"

SockRecv = Callable[[Any], tuple[bytes, Any]]


def keep_bytes_before_error(recv: SockRecv) -> SockRecv:
    """Wrap a transport's ``_sock_recv`` (returns ``(data, error_or_None)``)."""

    @functools.wraps(recv)
    def wrapper(self: Any) -> tuple[bytes, Any]:
        pending = getattr(self, _PENDING, None)
        if pending is not None:
            setattr(self, _PENDING, None)
            return b"", pending
        data, err = recv(self)
        if data and err is not None:
            setattr(self, _PENDING, err)
            return data, None
        return data, err

    setattr(wrapper, _MARK, True)
    return wrapper


def install() -> bool:
    """Wrap kafka-python's TCP and TLS transports once; False where the layout is not the one this
    fix was written for (then nothing is changed)."""
    try:
        from kafka.net import transport
    except ImportError:
        return False
    installed = False
    for cls in (transport.KafkaTCPTransport, transport.KafkaSSLTransport):
        recv = cls.__dict__.get("_sock_recv")
        if recv is None:
            continue
        if not getattr(recv, _MARK, False):
            cls._sock_recv = keep_bytes_before_error(recv)
        installed = True
    return installed
