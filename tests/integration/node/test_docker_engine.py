"""`scripts/docker-engine.sh stop` as the image builds and the node tests call it: it leaves no
mount of our dockerd behind (dockerd bind-mounts its network namespace under its exec root and
does not unmount it when it stops; found in session 29 after every stop)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "docker-engine.sh"


def _mounts_under(root: Path) -> list[str]:
    points = (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
    return [p for p in points if p.startswith(f"{root}/")]


def _stop(docker_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "stop"],
        env={**os.environ, "COINFEED_DOCKER_DIR": str(docker_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_stop_unmounts_what_dockerd_left_under_its_exec_root(tmp_path: Path) -> None:
    docker_dir = tmp_path / "docker"
    exec_root = docker_dir / "exec"
    netns = exec_root / "netns" / "default"
    netns.parent.mkdir(parents=True)
    netns.touch()
    # What dockerd mounts there: its network namespace.
    subprocess.run(["mount", "--bind", "/proc/self/ns/net", str(netns)], check=True)
    # A process standing in for a dockerd that still uses this exec root.
    engine = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "--exec-root", str(exec_root)]
    )
    try:
        kept = _stop(docker_dir)
        assert kept.returncode == 0, kept.stderr
        assert _mounts_under(exec_root) == [str(netns)], "a running engine's mount was removed"
        engine.kill()
        engine.wait(timeout=30)
        done = _stop(docker_dir)
        assert done.returncode == 0, done.stderr
        assert _mounts_under(exec_root) == []
    finally:
        engine.kill()
        for left in _mounts_under(exec_root):
            subprocess.run(["umount", "-l", left], check=False)
