"""Why a Kafka client could not connect, in words: wrong password, untrusted certificate, TLS port...

kafka-python retries a refused bootstrap until its timeout and then says only "Unable to
bootstrap"; the reason is in the log records of each attempt. ``explain_failures`` listens to
those records while a client is built and, when the build fails, re-raises the same exception
type with the cause appended (callers that catch ``KafkaTimeoutError`` keep working). The
records never hold the password, and neither does the message.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Iterator, Sequence
from typing import Final

from coinfeed.kafka_security import CAFILE_ENV, PROTOCOL_ENV, KafkaSecurity

_NET_LOGGER: Final = "kafka.net.manager"
_PREFIXES: Final = ("Bootstrap connection to", "Connection failed:")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            text = record.getMessage()
            if text.startswith(_PREFIXES):
                self.messages.append(text)


def speaks_tls(server: str, timeout: float = 3.0) -> bool:
    """Whether ``host:port`` completes a TLS handshake (certificate not checked: this only asks
    which protocol the port speaks)."""
    host, _, port = server.rpartition(":")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=host),
        ):
            return True
    except (OSError, ValueError):
        return False


def cause(messages: Sequence[str], servers: Sequence[str], sec: KafkaSecurity) -> str | None:
    """The refusal the attempts' log lines show, named; None when they show none."""
    text = "\n".join(messages)
    if "SaslAuthenticationFailedError" in text or "invalid credentials" in text:
        return (
            f"authentication refused: wrong user name or password for user {sec.username!r} "
            f"({sec.mechanism}); Kafka does not say which of the two"
        )
    if "UnsupportedSaslMechanism" in text:
        return f"the brokers do not accept SASL mechanism {sec.mechanism}"
    if "certificate has expired" in text:
        return "TLS refused: the broker's certificate has expired"
    if "certificate is not yet valid" in text:
        return "TLS refused: the broker's certificate is not valid yet"
    if "mismatch" in text and "CERTIFICATE_VERIFY_FAILED" in text:
        return "TLS refused: the broker's certificate does not name the host connected to"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            "TLS refused: the broker's certificate is not signed by a trusted CA "
            f"(check {CAFILE_ENV}={sec.cafile or '<system CAs>'})"
        )
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return (
            f"{PROTOCOL_ENV}={sec.protocol} uses TLS but the broker port does not speak TLS "
            "(a PLAINTEXT or SASL_PLAINTEXT listener)"
        )
    if not sec.tls and messages and any(speaks_tls(s) for s in servers[:1]):
        return (
            f"{PROTOCOL_ENV}={sec.protocol} but the broker port expects TLS: "
            "use SSL or SASL_SSL with the cluster's CA"
        )
    return None


@contextlib.contextmanager
def explain_failures(servers: Sequence[str], sec: KafkaSecurity) -> Iterator[None]:
    """Run a client constructor; if it fails, append the named cause to its error message."""
    capture = _Capture()
    logger = logging.getLogger(_NET_LOGGER)
    # The level must let WARNING records be made even where "kafka" is silenced (CLIs do that);
    # they still reach other handlers only as they would have before.
    old_level = logger.level
    silenced = not logger.isEnabledFor(logging.WARNING)
    old_propagate = logger.propagate
    logger.addHandler(capture)
    if silenced:
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    try:
        yield
    except Exception as exc:
        found = cause(capture.messages, servers, sec)
        if found is None:
            raise
        try:
            explained = type(exc)(f"{exc}: {found}")
        except Exception:
            raise exc from None
        raise explained from exc
    finally:
        logger.removeHandler(capture)
        if silenced:
            logger.setLevel(old_level)
            logger.propagate = old_propagate
