"""Where heavy, version-keyed artifacts live: outside the repository, shared by runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from coinfeed import versions


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$COINFEED_CACHE`` or ``~/.cache/coinfeed`` (of ``env``, default the process's)."""
    value = (os.environ if env is None else env).get("COINFEED_CACHE")
    return Path(value) if value else Path.home() / ".cache" / "coinfeed"


def kafka_jars_dir() -> Path:
    """Apache Kafka broker + ZooKeeper runtime classpath (fetched by ``make setup``)."""
    return (
        cache_dir()
        / "jars"
        / f"kafka_{versions.get('SCALA_BINARY_VERSION')}-{versions.get('KAFKA_VERSION')}"
    )


def spark_kafka_jars_dir() -> Path:
    """``spark-sql-kafka-0-10`` and its dependencies for the pinned Spark (fetched by ``make setup``)."""
    scala = versions.get("SCALA_BINARY_VERSION")
    return cache_dir() / "jars" / f"spark-sql-kafka-0-10_{scala}-{versions.get('SPARK_VERSION')}"


def spark_kafka_jars() -> list[Path]:
    """The jar files to pass as ``spark.jars``; a clear error when setup has not run."""
    d = spark_kafka_jars_dir()
    jars = sorted(d.glob("*.jar"))
    if not jars:
        raise FileNotFoundError(
            f"no spark-sql-kafka jars in {d}: run `make setup` (fetches them from Maven Central)"
        )
    return jars


def bin_dir() -> Path:
    """Go-built tools (kube-apiserver, etcd, helm, kube-linter), one folder per tool and version."""
    return cache_dir() / "bin"
