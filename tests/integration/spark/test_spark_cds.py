"""The class-data archive ``make setup`` built, mapped by a driver JVM started as the job starts it.

Each session runs in a fresh Python process: a session already running in this one (the unit
tests' fixture) would be returned by ``getOrCreate`` with its own JVM options.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from coinfeed.spark import cds
from tests.support.spark import run_executor_entrypoint

# Builds a session the way `coinfeed hourly` does (job_conf + the quick profile) with the JVM
# logging each class it loads, runs one job and prints what cds.unused_archive says.
PROBE = """
import json, os, sys
from coinfeed.spark import cds, hourly
from coinfeed.spark.jit import profile_conf
from coinfeed.spark.session import build_session
lake, log = sys.argv[1], sys.argv[2]
args = hourly.build_parser().parse_args(["--coin", "btc", "--lake", lake])
conf = profile_conf("quick", hourly.job_conf(args, os.environ))
conf[cds.DRIVER_JAVA_OPTIONS] += f" -Xlog:class+load=info:file={log}"
spark = build_session("coinfeed-cds-probe", conf)
rows = spark.range(0, 100, 1, 2).selectExpr("sum(id) AS s").collect()
print(json.dumps({"sum": rows[0].s, "unused": cds.unused_archive(spark, conf)}))
spark.stop()
"""


def _probe(tmp_path: Path, archive: str, name: str) -> tuple[int, set[str], Any, str]:
    """(classes mapped from an archive, their names, what unused_archive said, stderr)."""
    log = tmp_path / f"classes-{name}.log"
    env = {**os.environ, cds.ARCHIVE_ENV: archive}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "lake"), str(log)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said["sum"] == 4950
    shared = {
        line.split()[1]
        for line in log.read_text().splitlines()
        if "source: shared objects file" in line
    }
    return len(shared), shared, said["unused"], done.stderr


def test_the_driver_maps_sparks_classes_from_the_archive(tmp_path: Path) -> None:
    archive = cds.default_archive()
    assert archive.is_file(), f"no class-data archive at {archive}: run `make setup`"
    n, names, said, err = _probe(tmp_path, str(archive), "archive")
    # The JVM's own reason (class path mismatch, another JDK) is on stderr.
    assert said is None, f"{said}\nJVM stderr (tail):\n{err[-3000:]}"
    assert n > 10_000, f"{n} classes mapped\nJVM stderr (tail):\n{err[-3000:]}"
    assert "org.apache.spark.sql.SparkSession" in names
    n_off, names_off, said_off, _ = _probe(tmp_path, cds.OFF, "off")
    assert said_off is None  # no archive asked for: nothing to report
    assert n_off < 3_000  # at most the JDK's own default archive
    assert "org.apache.spark.sql.SparkSession" not in names_off


def test_an_unusable_archive_never_stops_a_run_and_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.jsa"
    garbage.write_bytes(os.urandom(64 * 1024))
    n, _, said, _ = _probe(tmp_path, str(garbage), "garbage")
    assert said is not None and str(garbage) in said and cds.REBUILD in said
    assert n < 3_000


def _executor_classes(tmp_path: Path, archive: str, name: str) -> tuple[set[str], str]:
    """Classes an executor JVM started by the Spark image's entrypoint mapped from an archive
    (it connects to a driver port nothing listens on, so it stops after its start-up), and its
    stderr."""
    from coinfeed.devcluster.procs import free_ports

    log = tmp_path / f"executor-{name}.log"
    env = {cds.ARCHIVE_ENV: archive, "SPARK_JAVA_OPT_0": f"-Xlog:class+load=info:file={log}"}
    done = run_executor_entrypoint(env, free_ports(1)[0], timeout=180)
    # No driver answers: the executor gives up after its start-up, having loaded its classes.
    assert done.returncode != 0 and "127.0.0.1" in done.stderr, done.stderr[-3000:]
    shared = {
        line.split()[1]
        for line in log.read_text().splitlines()
        if "source: shared objects file" in line
    }
    return shared, done.stderr


def test_an_executor_started_by_the_image_entrypoint_maps_the_archive(tmp_path: Path) -> None:
    archive = cds.default_archive()
    assert cds.classpath_file(archive).is_file(), f"no class path beside {archive}: make setup"
    names, err = _executor_classes(tmp_path, str(archive), "archive")
    assert "org.apache.spark.SparkConf" in names, f"JVM stderr (tail):\n{err[-3000:]}"
    assert len(names) > 3_000, f"{len(names)} classes mapped\nJVM stderr (tail):\n{err[-3000:]}"
    names_off, _ = _executor_classes(tmp_path, cds.OFF, "off")
    assert "org.apache.spark.SparkConf" not in names_off
    assert len(names_off) < len(names) / 2
