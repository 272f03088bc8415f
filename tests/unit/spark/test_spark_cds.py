"""The driver JVM's class-data archive: which file, the options that map it, the training run."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pyspark
import pytest

from coinfeed.spark import cds, hourly
from coinfeed.spark.lake import HOURLY, QUARANTINE, RAW_PRICES, RAW_TWEETS, dataset_path
from tests.support.spark import run_executor_entrypoint


def test_the_archive_comes_from_the_environment(tmp_path: Path) -> None:
    cache = {"COINFEED_CACHE": str(tmp_path), "PATH": os.environ["PATH"]}
    expected = tmp_path / "cds" / f"spark-{pyspark.__version__}-{cds.runtime_key(cache)}.jsa"
    assert cds.default_archive(cache) == expected
    assert cds.archive_path(cache) == expected
    assert cds.archive_path({**cache, cds.ARCHIVE_ENV: "/x/y.jsa"}) == Path("/x/y.jsa")
    assert cds.archive_path({**cache, cds.ARCHIVE_ENV: "OFF"}) is None


def test_each_spark_installation_and_jdk_gets_its_own_archive(tmp_path: Path) -> None:
    # The JVM refuses an archive dumped with another class path or JDK: a second virtual
    # environment (or JAVA_HOME) sharing the cache must not find the first one's archive.
    base = {"COINFEED_CACHE": str(tmp_path), "PATH": os.environ["PATH"]}
    keys = {
        cds.runtime_key(base),
        cds.runtime_key({**base, "SPARK_HOME": str(tmp_path / "other-venv" / "pyspark")}),
        cds.runtime_key({**base, "JAVA_HOME": str(tmp_path / "other-jdk")}),
    }
    assert len(keys) == 3
    assert cds.runtime_key(dict(base)) == cds.runtime_key(base)


def test_options_only_for_an_existing_file_and_never_share_on(tmp_path: Path) -> None:
    archive = tmp_path / "with space" / "a.jsa"
    assert cds.java_options(archive) == ""
    assert cds.java_options(None) == ""
    archive.parent.mkdir()
    archive.write_bytes(b"x")
    words = shlex.split(cds.java_options(archive))
    assert f"-XX:SharedArchiveFile={archive}" in words
    assert "-Xshare:auto" in words
    assert "-Xshare:on" not in words
    # The JVM's own messages go to stderr: stdout carries the job's report.
    assert words[-1] == "-Xlog:all=warning:stderr"
    assert cds.archive_in({cds.DRIVER_JAVA_OPTIONS: f"-Da=b {cds.java_options(archive)}"}) == str(
        archive
    )


def test_job_conf_adds_the_archive_after_the_sessions_own_options(tmp_path: Path) -> None:
    archive = tmp_path / "a.jsa"
    archive.write_bytes(b"x")
    args = hourly.build_parser().parse_args(["--coin", "btc", "--lake", str(tmp_path)])
    env = {"COINFEED_CACHE": str(tmp_path / "none"), cds.ARCHIVE_ENV: str(archive)}
    options = hourly.job_conf(args, env)[cds.DRIVER_JAVA_OPTIONS]
    assert options.startswith("-Duser.timezone=UTC ")
    assert cds.archive_in({cds.DRIVER_JAVA_OPTIONS: options}) == str(archive)
    off = hourly.job_conf(args, {**env, cds.ARCHIVE_ENV: cds.OFF})[cds.DRIVER_JAVA_OPTIONS]
    assert "SharedArchiveFile" not in off and "Xshare" not in off
    missing = hourly.job_conf(args, {**env, cds.ARCHIVE_ENV: str(tmp_path / "gone.jsa")})
    assert "SharedArchiveFile" not in missing[cds.DRIVER_JAVA_OPTIONS]
    # Under spark-submit the driver JVM runs already: no option it could not take (and so no
    # warning that it did not map the archive).
    submitted = hourly.job_conf(args, {**env, "PYSPARK_GATEWAY_PORT": "1"})
    assert "SharedArchiveFile" not in submitted[cds.DRIVER_JAVA_OPTIONS]


def test_the_dump_command_uses_the_training_jvms_java_and_class_path(tmp_path: Path) -> None:
    command = cds.dump_command("/jdk/bin/java", tmp_path / "l", tmp_path / "a.jsa", "/s/jars/x.jar")
    assert command[:2] == ["/jdk/bin/java", "-Xshare:dump"]
    assert f"-XX:SharedClassListFile={tmp_path / 'l'}" in command
    assert f"-XX:SharedArchiveFile={tmp_path / 'a.jsa'}" in command
    assert command[-2:] == ["-cp", "/s/jars/x.jar"]


def test_a_failed_build_says_why_in_one_line_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    why = "java -Xshare:dump could not write it (exit 1): Error occurred"

    def refuse(archive: Path) -> None:
        raise RuntimeError(why)

    monkeypatch.setattr(cds, "build", refuse)
    archive = tmp_path / "a.jsa"
    assert cds.main(["--output", str(archive)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"coinfeed spark-cds: no archive at {archive}: {why}"]
    # An existing archive is kept unless --force or stale (cds.stale): one without the class
    # path it was dumped with (built before executors used it) is rebuilt.
    classpath = _jars(tmp_path, "a.jar", "b.jar")
    archive.write_bytes(b"x")
    assert cds.main(["--output", str(archive)]) == 1
    cds.classpath_file(archive).write_text(classpath + "\n")
    assert cds.main(["--output", str(archive)]) == 0
    assert cds.main(["--output", str(archive), "--force"]) == 1


def test_an_archive_whose_jars_changed_since_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Session 29: a virtual environment reinstalled at the same path keeps the archive's name
    # (runtime_key), but the JVM refuses it (every jar is newer) and only says so at info level;
    # `make setup` kept the archive, and every run started without it.
    built: list[Path] = []
    monkeypatch.setattr(cds, "build", built.append)
    archive = tmp_path / "a.jsa"
    classpath = _jars(tmp_path, "a.jar", "b.jar")
    archive.write_bytes(b"x")
    cds.classpath_file(archive).write_text(classpath + "\n")
    jar = tmp_path / "pyspark" / "jars" / "a.jar"
    os.utime(jar, (archive.stat().st_mtime - 60,) * 2)
    os.utime(tmp_path / "pyspark" / "jars" / "b.jar", (archive.stat().st_mtime - 60,) * 2)
    assert cds.stale(archive) is None
    assert cds.main(["--output", str(archive)]) == 0 and built == []
    os.utime(jar, (archive.stat().st_mtime + 60,) * 2)  # reinstalled after the build
    assert cds.stale(archive) == f"{jar} changed after it was built"
    assert cds.main(["--output", str(archive)]) == 0 and built == [archive]
    assert f"rebuilding {archive}: {jar} changed" in capsys.readouterr().out
    jar.unlink()
    assert cds.stale(archive) == f"{jar} is gone"
    cds.classpath_file(archive).unlink()
    assert "no class path" in (cds.stale(archive) or "")


def test_the_build_keeps_the_class_path_beside_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    classpath = "/s/conf/:/s/jars/a.jar:/s/jars/b.jar"
    monkeypatch.setattr(
        cds, "_train_and_list", lambda classlist, work: ("/jdk/bin/java", classpath)
    )
    dumped: list[list[str]] = []

    def dump(command: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        dumped.append(command)
        target = next(w for w in command if w.startswith("-XX:SharedArchiveFile="))
        Path(target.split("=", 1)[1]).write_bytes(b"archive")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(cds.subprocess, "run", dump)
    archive = tmp_path / "a.jsa"
    cds.build(archive)
    assert dumped[0][-2:] == ["-cp", classpath]
    assert archive.read_bytes() == b"archive"
    assert cds.classpath_file(archive).read_text() == classpath + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsa", "a.jsa.classpath"]


def _jars(tmp_path: Path, *names: str) -> str:
    """A pyspark-like conf dir and jars dir holding ``names``; the class path listing them."""
    jars = tmp_path / "pyspark" / "jars"
    jars.mkdir(parents=True, exist_ok=True)
    for name in names:
        (jars / name).write_bytes(b"jar")
    return ":".join([str(tmp_path / "pyspark" / "conf"), *(str(jars / n) for n in names)])


def test_executors_map_the_archive_with_the_class_path_it_was_dumped_with(tmp_path: Path) -> None:
    archive = tmp_path / "a.jsa"
    env = {cds.ARCHIVE_ENV: str(archive)}
    assert cds.executor_launch(env) is None  # no archive
    archive.write_bytes(b"x")
    assert cds.executor_launch(env) is None  # no class path beside it: it could not map
    classpath = _jars(tmp_path, "b.jar", "a.jar")
    cds.classpath_file(archive).write_text(classpath + "\n")
    launch = cds.executor_launch(env)
    assert launch is not None
    assert launch[0] == classpath  # as dumped, in the launcher's order
    assert launch[1] == shlex.split(cds.java_options(archive))
    # Entries put first by SPARK_CLASSPATH would keep any executor from mapping it.
    assert cds.executor_launch({**env, "SPARK_CLASSPATH": "/extra.jar"}) is None
    assert cds.executor_launch({**env, cds.ARCHIVE_ENV: cds.OFF}) is None
    # A jar added since the build (an image built on this one) must reach the executor: no
    # dumped class path then, and the same for a jar gone.
    (tmp_path / "pyspark" / "jars" / "c.jar").write_bytes(b"jar")
    assert cds.executor_launch(env) is None
    (tmp_path / "pyspark" / "jars" / "c.jar").unlink()
    (tmp_path / "pyspark" / "jars" / "a.jar").unlink()
    assert cds.executor_launch(env) is None


BACKEND = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"


def _executor_java_args(tmp_path: Path, env: dict[str, str]) -> list[str]:
    """What the image's entrypoint runs ``java`` with for an executor pod (a ``java`` on PATH
    that prints its arguments stands in for the JDK)."""
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    java = fake / "java"
    java.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    java.chmod(0o755)
    pod = {
        "PATH": f"{fake}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SPARK_JAVA_OPT_0": "-Duser.timezone=UTC",
        "SPARK_JAVA_OPT_1": "-Xshare:off",
        **env,
    }
    done = run_executor_entrypoint(pod, 7078, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_image_entrypoint_starts_executors_from_the_archive(tmp_path: Path) -> None:
    archive = tmp_path / "a.jsa"
    archive.write_bytes(b"x")
    dumped = _jars(tmp_path, "a.jar")
    cds.classpath_file(archive).write_text(dumped + "\n")
    args = _executor_java_args(tmp_path, {cds.ARCHIVE_ENV: str(archive)})
    flags = shlex.split(cds.java_options(archive))
    # The archive's options first, the driver's (spark.executor.extraJavaOptions) after them:
    # a user's -Xshare wins.
    assert args[: len(flags)] == flags
    assert args[len(flags) : len(flags) + 2] == ["-Duser.timezone=UTC", "-Xshare:off"]
    assert args[args.index("-cp") + 1] == dumped
    assert args[args.index("-cp") + 2] == BACKEND
    assert args[args.index("--executor-id") + 1] == "1"

    jars = f"{os.path.dirname(pyspark.__file__)}/jars/*"
    # No class path beside the archive, or SPARK_CLASSPATH first: pyspark's jars, no archive.
    for env, classpath in (
        ({cds.ARCHIVE_ENV: str(tmp_path / "none.jsa")}, jars),
        ({cds.ARCHIVE_ENV: str(archive), "SPARK_CLASSPATH": "/extra.jar"}, f"/extra.jar:{jars}"),
    ):
        args = _executor_java_args(tmp_path, env)
        assert not [a for a in args if "SharedArchiveFile" in a]
        assert args[:2] == ["-Duser.timezone=UTC", "-Xshare:off"]
        assert args[args.index("-cp") + 1] == classpath


def _rows(path: str) -> int:
    return int(pq.read_table(path).num_rows)


def test_the_training_run_writes_every_dataset(spark: Any, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    runs = cds.train(spark, lake)
    assert set(runs) == {"pydantic", "native"}
    for run in runs.values():
        # 200 tweets (5 sent twice, 4 two hours late: merged into their hour), 60 ticks,
        # 5 records the model rejects (two bad tweets, a bad tick, a tombstone on each topic).
        assert run.rows_written == {RAW_PRICES: 60, RAW_TWEETS: 200, QUARANTINE: 5, HOURLY: 1}
        assert run.duplicates == {"prices": 0, "tweets": 5}
        assert run.late_records >= 4
        assert run.latest.tweet_count == 200
    for dataset, n in ((RAW_PRICES, 60), (RAW_TWEETS, 200), (QUARANTINE, 5), (HOURLY, 1)):
        assert _rows(dataset_path(str(lake), dataset)) == n


def test_unused_archive_reads_the_jvms_own_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from py4j.protocol import Py4JError
    from pyspark.errors import IllegalArgumentException

    conf = {cds.DRIVER_JAVA_OPTIONS: "-Da=b '-XX:SharedArchiveFile=/c/a.jsa' -Xshare:auto"}
    options = {"SharedArchiveFile": "/c/a.jsa"}

    def option(spark: Any, name: str) -> str:
        if name not in options:  # JDK 25 has no UseSharedSpaces: asking for it stopped the run
            raise IllegalArgumentException(f'VM option "{name}" does not exist')
        return options[name]

    info = {"now": "mixed mode, sharing"}
    monkeypatch.setattr(cds, "vm_option", option)
    monkeypatch.setattr(cds, "vm_info", lambda spark: info["now"])
    assert cds.unused_archive(None, conf) is None
    assert cds.unused_archive(None, {}) is None  # none asked for
    info["now"] = "mixed mode"  # the JVM refused it (and does not fall back to the JDK's own)
    said = cds.unused_archive(None, conf)
    assert said is not None and "/c/a.jsa" in said and cds.REBUILD in said
    info["now"] = "mixed mode, emulated-client, sharing"
    options["SharedArchiveFile"] = "/other.jsa"
    assert cds.unused_archive(None, conf) is not None

    def no_hotspot(spark: Any, name: str) -> str:
        raise Py4JError("no such class: com.sun.management.HotSpotDiagnosticMXBean")

    monkeypatch.setattr(cds, "vm_option", no_hotspot)
    assert cds.unused_archive(None, conf) is None  # cannot tell: no warning, no failure
