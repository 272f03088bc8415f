"""Class-data sharing (CDS) for the driver JVM: Spark's classes mapped from an archive at start.

A small hour's run is mostly fixed cost, and much of it is the driver JVM loading, verifying and
linking the ~18,000 classes Spark needs (the bare baseline of ``make bench``: session, one empty
Kafka read, one empty write, loads ~16,000 of them). ``coinfeed spark-cds`` builds a static CDS
archive of them once: a training run of the job's own passes (:func:`train`: generated records
through :func:`coinfeed.spark.hourly.process_batch` with both validation paths, quarantine,
dedup, late data, aggregation and every dataset written; no Kafka) lists the classes its JVM
loads (``-XX:DumpLoadedClassList``), then ``java -Xshare:dump`` writes them, with that JVM's own
class path, to ``$COINFEED_CACHE/cds/spark-<pyspark version>-<runtime_key>.jsa`` (one per Spark
installation and JDK). ``make setup`` and the Spark image's build run it.

Every run whose archive file exists starts its driver with it (:func:`java_options`, added by
``hourly.job_conf``); ``COINFEED_CDS_ARCHIVE`` names another file, or ``off``. ``-Xshare:auto``:
an archive built for another JDK or class path never stops a run; the JVM starts without it, says
why on stderr, and the job logs a warning naming the file (:func:`unused_archive`). Classes Spark
loads from ``spark.jars`` (the Kafka connector) come from its own class loader and are not
archived.

Executor JVMs (Kubernetes' executor pods, started by the Spark image's entrypoint) map the same
archive: a JVM maps it only with the class path it was dumped with, so the build keeps that class
path beside it (:func:`classpath_file`) and the entrypoint starts executors with it
(:func:`executor_launch`; ``coinfeed spark-cds --executor-launch``). An executor then maps the
classes the driver's training run loaded, which include the task side (local mode runs tasks in
the driver JVM).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from coinfeed.spark.jit import DRIVER_JAVA_OPTIONS, profile_conf, with_driver_options

ARCHIVE_ENV: Final = "COINFEED_CDS_ARCHIVE"
OFF: Final = "off"
# The training hour and coin (any closed hour works: the training reads no Kafka).
TRAIN_HOUR: Final = datetime(2024, 1, 1, 0, tzinfo=UTC)
TRAIN_COIN: Final = "btc"
REBUILD: Final = "coinfeed spark-cds --force"


def runtime_key(env: Mapping[str, str]) -> str:
    """What an archive is only valid for: the Spark installation (its jars are the driver's class
    path) and the ``java`` that spark-submit starts (``$JAVA_HOME/bin/java``, else the one on
    ``PATH``), as a short hash. Two virtual environments or JDKs sharing one cache then get an
    archive each, instead of one whose class path the other's JVM refuses."""
    import pyspark

    spark_home = env.get("SPARK_HOME") or os.path.dirname(os.path.abspath(pyspark.__file__))
    java_home = env.get("JAVA_HOME")
    java = (
        os.path.join(java_home, "bin", "java")
        if java_home
        else shutil.which("java", path=env.get("PATH"))
    )
    where = f"{os.path.realpath(spark_home)}\n{os.path.realpath(java) if java else ''}"
    return hashlib.sha256(where.encode()).hexdigest()[:12]


def default_archive(env: Mapping[str, str] | None = None) -> Path:
    """Where ``coinfeed spark-cds`` writes the archive: one per PySpark (hence Spark) version and
    :func:`runtime_key`."""
    import pyspark

    from coinfeed.paths import cache_dir

    env = os.environ if env is None else env
    name = f"spark-{pyspark.__version__}-{runtime_key(env)}.jsa"
    return cache_dir(env) / "cds" / name


def archive_path(env: Mapping[str, str]) -> Path | None:
    """The archive runs use: ``$COINFEED_CDS_ARCHIVE`` (a path, or ``off`` for none), else
    :func:`default_archive`."""
    value = env.get(ARCHIVE_ENV, "").strip()
    if value.lower() == OFF:
        return None
    return Path(value) if value else default_archive(env)


def _archive_flags(archive: Path) -> list[str]:
    # -Xshare:auto (never on): an archive the JVM cannot use is skipped, not fatal. The JVM's
    # own warnings go to stderr, not stdout, where the job writes its report.
    return [
        f"-XX:SharedArchiveFile={archive}",
        "-Xshare:auto",
        "-Xlog:disable",
        "-Xlog:all=warning:stderr",
    ]


def java_options(archive: Path | None) -> str:
    """Driver JVM options that map ``archive``; empty when there is none or the file is missing.
    ``-Xshare:auto``, never ``on``: an archive the JVM cannot use is skipped, not fatal."""
    if archive is None or not archive.is_file():
        return ""
    return " ".join(shlex.quote(flag) for flag in _archive_flags(archive))


def classpath_file(archive: Path) -> Path:
    """Where the build keeps the class path ``archive`` was dumped with (one line)."""
    return archive.with_name(archive.name + ".classpath")


def executor_launch(env: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """The class path and JVM options with which an executor JVM maps the driver's archive:
    the class path it was dumped with (:func:`classpath_file`) and :func:`java_options`' flags.
    None (the entrypoint's own class path, no archive) when there is no archive or no class
    path beside it (an archive built before session 28: ``coinfeed spark-cds`` rebuilds it),
    when a jar directory of that class path has gained or lost jars since, or when
    ``SPARK_CLASSPATH`` puts other entries first (the archive could not map)."""
    if env.get("SPARK_CLASSPATH"):
        return None
    archive = archive_path(env)
    if archive is None or not archive.is_file():
        return None
    try:
        classpath = classpath_file(archive).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not classpath or "\n" in classpath or not _same_jars(classpath.split(os.pathsep)):
        return None
    return classpath, _archive_flags(archive)


def _same_jars(entries: Sequence[str]) -> bool:
    # Every directory the dumped class path took jars from holds exactly those jars still: a jar
    # added to (or removed from) pyspark's jars since the build, e.g. by an image built on this
    # one, must reach the executor, which then starts on the directory itself, without the
    # archive (the driver's launcher lists the directory anew and would not map it either).
    recorded = {Path(e) for e in entries if e.endswith(".jar")}
    if not recorded:
        return False
    return all(
        set(folder.glob("*.jar")) == {j for j in recorded if j.parent == folder}
        for folder in {j.parent for j in recorded}
    )


def stale(archive: Path) -> str | None:
    """Why the JVM would refuse an existing ``archive``, when that can be told without a JVM:
    no class path beside it, or a jar of that class path changed (newer than the archive: e.g.
    the virtual environment reinstalled at the same path; the JVM compares each jar's time and
    size, and says so only in its info log), gone, or joined by another in its directory."""
    try:
        classpath = classpath_file(archive).read_text(encoding="utf-8").strip()
    except OSError:
        return f"no class path beside it ({classpath_file(archive)})"
    built = archive.stat().st_mtime
    entries = classpath.split(os.pathsep)
    for entry in entries:
        if not entry.endswith(".jar"):
            continue
        try:
            if Path(entry).stat().st_mtime > built:
                return f"{entry} changed after it was built"
        except OSError:
            return f"{entry} is gone"
    if not _same_jars(entries):
        return "a jar directory of its class path gained or lost jars"
    return None


def with_archive(conf: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """``conf`` with :func:`java_options` appended to the driver's JVM options."""
    return with_driver_options(conf, java_options(archive_path(env)))


def archive_in(conf: Mapping[str, str]) -> str | None:
    """The archive the driver was told to map (from its JVM options), if any."""
    for word in shlex.split(conf.get(DRIVER_JAVA_OPTIONS, "")):
        if word.startswith("-XX:SharedArchiveFile="):
            return word.split("=", 1)[1]
    return None


def vm_option(spark: Any, name: str) -> str:
    """A HotSpot option's value in the driver JVM (``HotSpotDiagnosticMXBean``)."""
    jvm = spark.sparkContext._jvm
    bean_class = jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean")
    bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(bean_class)
    return str(bean.getVMOption(name).getValue())


def vm_info(spark: Any) -> str:
    """The driver JVM's ``java.vm.info``: "mixed mode, sharing" while it maps a class-data
    archive, on JDK 17 and 25 alike (JDK 25 has no ``UseSharedSpaces`` option to ask)."""
    return str(spark.sparkContext._jvm.java.lang.System.getProperty("java.vm.info"))


def unused_archive(spark: Any, conf: Mapping[str, str]) -> str | None:
    """Why the driver JVM does not map the archive ``conf`` names (None when it does, or when
    ``conf`` names none): the JVM's own ``SharedArchiveFile`` and :func:`vm_info` (an archive
    the JVM refuses is not replaced by the JDK's default one: the JVM then says no "sharing")."""
    from py4j.protocol import Py4JError

    wanted = archive_in(conf)
    if wanted is None:
        return None
    try:
        mapped = "sharing" in vm_info(spark) and vm_option(spark, "SharedArchiveFile") == str(
            wanted
        )
    except Py4JError:  # not a HotSpot JVM: it cannot say, and nothing is wrong with the run
        return None
    if mapped:
        return None
    return (
        f"the driver JVM does not map the class-data archive {wanted} (built for another JDK "
        f"or Spark, or the JVM was started without it; the JVM's warning is on stderr): the run "
        f"starts slower; rebuild it with `{REBUILD}`"
    )


# --- the training run ------------------------------------------------------------------------


def _training_rows(kind: str) -> list[tuple[bytes | None, bytes | None, datetime]]:
    """(key, value, Kafka timestamp) of one training hour: valid records (some duplicated, some
    late), records the model rejects, and a tombstone."""
    from coinfeed.schemas import PriceTick, Tweet

    rows: list[tuple[bytes | None, bytes | None, datetime]] = []
    if kind == "prices":
        for i in range(60):
            ts = TRAIN_HOUR + timedelta(minutes=i)
            tick = PriceTick(
                coin=TRAIN_COIN, source="binance", pair="BTC/USDT", ts=ts, price=40_000.0 + i
            )
            rows.append((b"binance", tick.to_json(), ts + timedelta(seconds=1)))
        rows.append((None, b'{"coin": "btc", "price": "not a number"}', TRAIN_HOUR))
    else:
        words = ["great rally #btc", "terrible crash", "sideways again", "to the moon! #hodl"]
        for i in range(200):
            created = TRAIN_HOUR + timedelta(seconds=17 * i)
            tweet = Tweet(
                coin=TRAIN_COIN,
                id=str(1_000_000 + i),
                created_at=created,
                text=f"{words[i % len(words)]} {i}",
                author_id=str(i % 7),
                like_count=i % 11,
                retweet_count=i % 3,
                hashtags=["btc"] if i % 2 else [],
            )
            sent = created + timedelta(seconds=2)
            if i % 50 == 0:
                sent = created + timedelta(hours=2)  # late: amends the hour
            rows.append((tweet.id.encode(), tweet.to_json(), sent))
            if i % 40 == 0:
                rows.append((tweet.id.encode(), tweet.to_json(), sent))  # a duplicate
        rows.append((None, b"{not json", TRAIN_HOUR))
        rows.append((None, b'{"coin": "eth"}', TRAIN_HOUR))
    rows.append((None, None, TRAIN_HOUR))  # tombstone
    return rows


def train(spark: Any, lake: Path) -> dict[str, Any]:
    """Run the job's passes on generated records (both validation paths) into ``lake``; the
    JVM loads every class a real run's driver loads, less the Kafka connector's. Returns each
    pass's :class:`~coinfeed.spark.summary.CoinRun`."""
    from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

    from coinfeed.spark import hourly, warmup
    from coinfeed.spark.lake import existing_hours_by_coin
    from coinfeed.spark.schema import KAFKA_ROW
    from coinfeed.topics import topic_name

    frames = {}
    for kind in ("prices", "tweets"):
        topic = topic_name(TRAIN_COIN, kind)
        data = [
            (key, value, topic, i % 3, i, ts)
            for i, (key, value, ts) in enumerate(_training_rows(kind))
        ]
        frames[topic] = spark.createDataFrame(data, KAFKA_ROW)

    def reader(
        spark_: Any, bootstrap: str, topics: Any, windows: Sequence[Any], split: bool = False
    ) -> Any:
        # What _read_kafka returns: the topics' rows inside one of the windows.
        names = [topics] if isinstance(topics, str) else list(topics)
        rows = frames[names[0]]
        for name in names[1:]:
            rows = rows.unionByName(frames[name])
        ts = F.col("timestamp")
        inside = [(ts >= F.lit(w.start)) & (ts < F.lit(w.end)) for w in windows]
        condition = inside[0]
        for c in inside[1:]:
            condition = condition | c
        return rows.where(condition)

    warm = warmup.start(spark)
    args = hourly.build_parser().parse_args(
        ["--coin", TRAIN_COIN, "--lake", str(lake), "--bootstrap", "127.0.0.1:9"]
    )
    now = TRAIN_HOUR + timedelta(hours=3)
    runs: dict[str, Any] = {}
    for validation in ("pydantic", "native"):
        existing_hours_by_coin(spark, str(lake), [TRAIN_COIN])
        batch = hourly.process_batch(
            spark,
            args,
            [TRAIN_COIN],
            [TRAIN_HOUR],
            timedelta(minutes=5),
            now,
            validation,
            reader=reader,
        )
        runs[validation] = batch[TRAIN_COIN]
    for done in (warm.python, warm.jvm):
        done.thread.join()
    return runs


def dump_command(java: str, classlist: Path, archive: Path, classpath: str) -> list[str]:
    """``java -Xshare:dump`` writing the classes of ``classlist`` to ``archive``."""
    return [
        java,
        "-Xshare:dump",
        f"-XX:SharedClassListFile={classlist}",
        f"-XX:SharedArchiveFile={archive}",
        "-cp",
        classpath,
    ]


def _train_and_list(classlist: Path, work: Path) -> tuple[str, str]:
    """The training run in a JVM that lists the classes it loads into ``classlist``; returns
    that JVM's ``java`` and class path (the archive must be dumped with both)."""
    from coinfeed.spark import hourly
    from coinfeed.spark.session import build_session

    args = hourly.build_parser().parse_args(["--coin", TRAIN_COIN, "--lake", str(work)])
    # The job's own settings, without an archive (the one being built may be stale).
    conf = profile_conf("quick", hourly.job_conf(args, {**os.environ, ARCHIVE_ENV: OFF}))
    conf = with_driver_options(conf, f"-XX:DumpLoadedClassList={classlist}")
    spark = build_session("coinfeed-cds-training", conf)
    gateway = spark.sparkContext._gateway
    system = spark.sparkContext._jvm.java.lang.System
    java = str(Path(system.getProperty("java.home")) / "bin" / "java")
    classpath = str(system.getProperty("java.class.path"))
    try:
        train(spark, work / "lake")
    finally:
        spark.stop()
        # The JVM completes its class list as it exits, and it exits when its stdin closes;
        # the gateway is shut first, so that nothing in Python talks to a JVM that is gone.
        proc = getattr(gateway, "proc", None)
        gateway.shutdown()
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()
            proc.wait(timeout=120)
    return java, classpath


def build(archive: Path) -> None:
    """Train, then dump the archive (written to a temporary file first: a failed build leaves
    no half archive). Raises ``RuntimeError`` naming the archive when the JVM refuses."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coinfeed-cds-") as tmp:
        work = Path(tmp)
        classlist = work / "classes.lst"
        java, classpath = _train_and_list(classlist, work)
        partial = archive.with_name(archive.name + ".partial")
        done = subprocess.run(
            dump_command(java, classlist, partial, classpath),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not partial.is_file():
            partial.unlink(missing_ok=True)
            last = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(
                f"java -Xshare:dump could not write {archive} (exit {done.returncode}): "
                + " / ".join(last)
            )
        # The class path first: an archive is never there without the class path that maps it.
        listed = classpath_file(archive)
        pending = listed.with_name(listed.name + ".partial")
        pending.write_text(classpath + "\n", encoding="utf-8")
        os.replace(pending, listed)
        os.replace(partial, archive)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coinfeed spark-cds",
        description=(
            "Build the class-data sharing archive the hourly job's driver JVM starts from "
            "(a training run of the job on generated records, then java -Xshare:dump; ~1.5 min, "
            "~200 MB). Runs start ~5 s faster with it; without it they only start slower."
        ),
    )
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help=(
            f"archive file (default ${ARCHIVE_ENV}, else "
            "$COINFEED_CACHE/cds/spark-<version>-<Spark and JDK key>.jsa)"
        ),
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the archive exists")
    p.add_argument(
        "--executor-launch",
        action="store_true",
        help=(
            "build nothing; print what the Spark image's entrypoint starts executor JVMs with: "
            "pyspark's directory, then the archive's class path and JVM options (two more lines, "
            "only when the archive and its class path exist)"
        ),
    )
    return p


def print_executor_launch(env: Mapping[str, str]) -> None:
    """``--executor-launch``: pyspark's directory, then (when :func:`executor_launch` has them)
    the class path and the JVM options, space-separated, one line each."""
    import pyspark

    print(os.path.dirname(os.path.abspath(pyspark.__file__)))
    launch = executor_launch(env)
    if launch is not None and not any(" " in flag for flag in launch[1]):
        print(launch[0])
        print(" ".join(launch[1]))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.executor_launch:
        print_executor_launch(os.environ)
        return 0
    archive = args.output or archive_path(os.environ)
    if archive is None:
        print(f"coinfeed spark-cds: ${ARCHIVE_ENV} is {OFF}: nothing to build", file=sys.stderr)
        return 0
    if archive.is_file() and not args.force:
        reason = stale(archive)
        if reason is None:
            print(f"coinfeed spark-cds: {archive} exists (--force rebuilds it)")
            return 0
        print(f"coinfeed spark-cds: rebuilding {archive}: {reason}")
    started = time.monotonic()
    print(f"coinfeed spark-cds: training run, then java -Xshare:dump into {archive} ...")
    try:
        build(archive)
    except Exception as exc:  # a failed build only means slower starts: say why, in one line
        print(f"coinfeed spark-cds: no archive at {archive}: {exc}", file=sys.stderr)
        return 1
    size = archive.stat().st_size / 2**20
    print(
        json.dumps(
            {
                "archive": str(archive),
                "mib": round(size, 1),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
