"""Session fixture ``pushgateway``: Debian's real ``prometheus-pushgateway`` on a free loopback port.

Yields the base URL (``http://127.0.0.1:<port>``); the process is stopped after the session.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.ports import free_port


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    program = shutil.which("prometheus-pushgateway")
    if program is None:
        pytest.fail(
            "prometheus-pushgateway is not installed (Debian package prometheus-pushgateway)"
        )
    work = tmp_path_factory.mktemp("pushgateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "pushgateway.log").open("wb")
    proc = subprocess.Popen(
        [
            program,
            f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={work / 'metrics.store'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"pushgateway did not become ready; log:\n{(work / 'pushgateway.log').read_text()}"
                )
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
