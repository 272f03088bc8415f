"""A producer's last word to Kubernetes: why it stopped, as its container's termination message,
read back by the operator into the CoinFeed's status (pure, standard library only: both the
producer and the operator image import it).

A producer stops this way only when retrying cannot help, e.g. its source answers HTTP 451 (the
exchange refuses this address's location). The kubelet keeps the message in the pod's
``containerStatuses[].lastState.terminated.message`` across restarts, where the operator reads it
with the ``get``/``list`` on pods it already has; no new permission, and the producer needs no
ServiceAccount token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

# The kubelet mounts this file into every container (terminationMessagePath's default).
TERMINATION_LOG: Final = "/dev/termination-log"
TERMINATION_LOG_ENV: Final = "COINFEED_TERMINATION_LOG"  # another path (tests, other runtimes)
GEO_BLOCKED: Final = "GeoBlocked"
# Exit code of a producer whose source refuses it: not a crash, not a configuration error (2).
EXIT_SOURCE_REFUSED: Final = 3
_LIMIT = 4096  # what the kubelet keeps of a termination message


def termination_message(reason: str, kind: str, source: str, message: str) -> str:
    """One JSON object: ``producer`` (prices|tweets), ``source``, ``reason`` (CamelCase) and a
    ``message`` for people, within the kubelet's 4 KiB."""
    data = {"producer": kind, "source": source, "reason": reason, "message": message}
    text = json.dumps(data, sort_keys=True)
    while len(text.encode()) > _LIMIT:
        data["message"] = str(data["message"])[: len(str(data["message"])) // 2] + "…"
        text = json.dumps(data, sort_keys=True)
    return text


def parse_termination_message(text: str | None) -> dict[str, str] | None:
    """The fields of :func:`termination_message`, or None for anything else (a log tail, …)."""
    if not text:
        return None
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not {"producer", "reason"} <= set(data):
        return None
    return {k: str(v) for k, v in data.items() if k in ("producer", "source", "reason", "message")}


def write_termination_message(text: str, env: Mapping[str, str] | None = None) -> bool:
    """Write ``text`` where the kubelet reads it; False where there is no such file (a producer
    run outside Kubernetes, e.g. the local demo: its log says the same)."""
    env = os.environ if env is None else env
    path = Path(env.get(TERMINATION_LOG_ENV) or TERMINATION_LOG)
    if not path.exists():
        return False
    try:
        path.write_text(text)
    except OSError:
        return False
    return True
