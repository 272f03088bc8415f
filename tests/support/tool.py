"""One way for the test harnesses to run a command-line tool (kubectl, helm): output captured as
text, and a failure that names the command and shows the end of what it printed."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence


def run_tool(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    stdin: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
        input=stdin,
        check=False,
    )
    if check and proc.returncode != 0:
        name = argv[0].rsplit("/", 1)[-1]
        raise AssertionError(
            f"{name} {' '.join(argv[1:])} exited {proc.returncode}:\n"
            f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return proc
