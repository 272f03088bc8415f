"""The hourly job as installed: the package copied out of the checkout (what a wheel installs,
symlinks resolved), with no versions.env anywhere near it — as in the Spark image, whose
Dockerfile deletes the build tree after `pip install`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coinfeed import versions

ARGS = ["--coin", "btc", "--lake", "/tmp/lake", "--bootstrap", "kafka:9092"]


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(
        versions.REPO_ROOT / "coinfeed",
        site / "coinfeed",
        symlinks=False,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "README.md"),
    )
    assert not any((p / "versions.env").exists() for p in [site, *site.parents])
    return site


def _cache(tmp_path: Path, with_jars: bool = True) -> Path:
    cache = tmp_path / "cache"
    jars = cache / "jars" / "spark-sql-kafka-0-10_2.13-4.2.0"
    jars.mkdir(parents=True)
    if with_jars:
        (jars / "spark-sql-kafka-0-10_2.13-4.2.0.jar").write_bytes(b"")
    return cache


def _run(site: Path, cache: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(site),
        "COINFEED_CACHE": str(cache),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=site.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_installed_job_builds_its_spark_conf_without_versions_env(
    installed: Path, tmp_path: Path
) -> None:
    cache = _cache(tmp_path)
    proc = _run(
        installed,
        cache,
        "import json, os, coinfeed\n"
        "from coinfeed.spark import hourly\n"
        f"args = hourly.build_parser().parse_args({ARGS!r})\n"
        "print(json.dumps({'file': coinfeed.__file__,"
        " 'conf': hourly.job_conf(args, dict(os.environ))}))\n",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["file"].startswith(str(installed))  # the copy, not the checkout
    jar = cache / "jars" / "spark-sql-kafka-0-10_2.13-4.2.0" / "spark-sql-kafka-0-10_2.13-4.2.0.jar"
    assert out["conf"]["spark.jars"] == str(jar)
    assert out["conf"]["spark.master"] == "local[*]"


def test_missing_connector_jars_is_a_clear_error_not_a_traceback(
    installed: Path, tmp_path: Path
) -> None:
    cache = _cache(tmp_path, with_jars=False)
    log = tmp_path / "termination-log"
    argv = [*ARGS, "--termination-log", str(log)]
    proc = _run(
        installed,
        cache,
        f"from coinfeed.spark import hourly\nraise SystemExit(hourly.main({argv!r}))",
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "coinfeed hourly: cannot start: no spark-sql-kafka jars in" in proc.stderr
    assert str(cache / "jars") in proc.stderr
    # The operator reads the same reason from the pod's termination message.
    outcome = json.loads(log.read_text())
    assert outcome["ok"] is False
    assert outcome["error"].startswith("cannot start: no spark-sql-kafka jars in")


def test_a_missing_pin_is_named(installed: Path, tmp_path: Path) -> None:
    module = installed / "coinfeed" / "pinned_versions.py"
    module.write_text(module.read_text().replace('"SPARK_VERSION"', '"NOT_SPARK_VERSION"'))
    proc = _run(
        installed,
        _cache(tmp_path),
        f"from coinfeed.spark import hourly\nraise SystemExit(hourly.main({ARGS!r}))",
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "cannot start: SPARK_VERSION is not pinned" in proc.stderr
