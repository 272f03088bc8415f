"""Background processes of one demo run: started detached with a pid file, stopped by pid file.

Every process gets ``COINFEED_DEMO_RUN_DIR=<run dir>`` in its environment; stopping checks it in
``/proc/<pid>/environ`` first, so a stale pid file never signals an unrelated process that reused
the pid. Each process leads its own session, so stopping its group also stops its children.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from coinfeed.devcluster.procs import is_our_process, read_pid, reap, write_pid

RUN_DIR_ENV: Final = "COINFEED_DEMO_RUN_DIR"


def pid_dir(run_dir: Path) -> Path:
    return run_dir / "pids"


def log_path(run_dir: Path, name: str) -> Path:
    return run_dir / "logs" / f"{name}.log"


def _pid_file(run_dir: Path, name: str) -> Path:
    return pid_dir(run_dir) / f"{name}.pid"


def _marker(run_dir: Path) -> str:
    return f"{RUN_DIR_ENV}={run_dir.resolve()}"


def is_ours(pid: int, run_dir: Path) -> bool:
    """Alive, not a zombie, and started by a demo in ``run_dir``."""
    return is_our_process(pid, _marker(run_dir), where="environ")


def spawn(
    name: str,
    argv: Sequence[str],
    run_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached (own session), logging to ``logs/<name>.log``; write its pid file."""
    run_dir = run_dir.resolve()
    log = log_path(run_dir, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_dir(run_dir).mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {}), RUN_DIR_ENV: str(run_dir)}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    write_pid(_pid_file(run_dir, name), proc.pid)
    return proc


def running(run_dir: Path) -> dict[str, int]:
    """name -> pid of every live process this run dir's pid files name."""
    found = {}
    for f in sorted(pid_dir(run_dir).glob("*.pid")) if pid_dir(run_dir).is_dir() else []:
        pid = read_pid(f)
        if pid is not None and is_ours(pid, run_dir.resolve()):
            found[f.stem] = pid
    return found


def stop(name: str, run_dir: Path, timeout: float = 20.0) -> bool:
    """Stop ``name`` (SIGTERM to its group, SIGKILL after ``timeout``); True if it was running."""
    run_dir = run_dir.resolve()
    f = _pid_file(run_dir, name)
    pid = read_pid(f)
    was_running = pid is not None and is_ours(pid, run_dir)
    if pid is not None and was_running:
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reap(pid)
            if not is_ours(pid, run_dir):
                break
            time.sleep(0.1)
        else:
            _signal_group(pid, signal.SIGKILL)
            time.sleep(0.2)
            reap(pid)
    f.unlink(missing_ok=True)
    return was_running


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The process leads its own session (start_new_session), so its group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_all(run_dir: Path, timeout: float = 20.0) -> list[str]:
    """Stop every process with a pid file in ``run_dir``; returns the names that were running."""
    names = (
        sorted(p.stem for p in pid_dir(run_dir).glob("*.pid")) if pid_dir(run_dir).is_dir() else []
    )
    return [n for n in names if stop(n, run_dir, timeout)]
