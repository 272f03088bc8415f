"""Pid files, process identity and ports: the thin OS layer under :mod:`coinfeed.devcluster.kafka`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path
from typing import Literal


def read_pid(path: Path) -> int | None:
    """The pid in ``path``, or None when there is no (readable) pid file."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def write_pid(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    tmp.replace(path)


def is_our_process(pid: int, marker: str, where: Literal["cmdline", "environ"] = "cmdline") -> bool:
    """True when ``pid`` is alive (not a zombie) and its command line (or environment) holds ``marker``.

    The marker (the run directory) guards against signalling an unrelated process that reused a
    stale pid.
    """
    try:
        found = Path(f"/proc/{pid}/{where}").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # State is the field after the parenthesised command name.
    state = stat.rpartition(")")[2].split()[:1]
    if state == ["Z"]:
        return False
    if where == "environ":
        return marker.encode() in found.split(b"\0")
    return marker.encode() in found


def send_signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def reap(pid: int) -> None:
    """Collect an exited child of ours, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pid: int, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        reap(pid)
        if not is_our_process(pid, marker):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct free loopback ports (sockets held open together so none repeats)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (SO_REUSEADDR, as the JVM binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def four_letter_word(host: str, port: int, word: str, timeout: float = 1.0) -> str:
    """ZooKeeper's ``ruok``/``srvr`` probes; empty string when it does not answer."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode("ascii"))
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode("utf-8", errors="replace")
    except OSError:
        return ""


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file (or a note that it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])
