"""Later plans built in a background driver thread while the first collect runs
(``background.start`` + ``hourly.settle``): used only when valid, else released and built again."""

from __future__ import annotations

import threading
from typing import Any

from pyspark.sql import SparkSession

from coinfeed.spark import background
from coinfeed.spark.hourly import settle


def test_valid_speculation_gives_its_plans_built_in_another_thread(spark: SparkSession) -> None:
    main = threading.get_ident()

    def build() -> dict[str, Any]:
        df = spark.range(5).persist()
        return {"df": df, "thread": threading.get_ident(), "kept": [df]}

    planned = settle(background.start("plans", build), valid=True)
    assert planned is not None
    assert planned["thread"] != main
    assert planned["df"].is_cached
    assert planned["df"].count() == 5
    planned["df"].unpersist()


def test_invalid_speculation_releases_what_it_persisted(spark: SparkSession) -> None:
    kept: list[Any] = []

    def build() -> dict[str, Any]:
        kept.append(spark.range(7).persist())
        return {"kept": kept}

    assert settle(background.start("plans", build), valid=False) is None
    assert kept and not kept[0].is_cached


def test_failed_speculation_is_left_to_the_caller(spark: SparkSession) -> None:
    kept: list[Any] = []

    def build() -> dict[str, Any]:
        kept.append(spark.range(3).persist())
        raise ValueError("no such column: nope")

    spec = background.start("plans", build)
    # Valid or not, a failed build gives nothing: the caller builds again and raises there.
    assert settle(spec, valid=True) is None
    assert isinstance(spec.error, ValueError)


def test_settle_waits_for_the_build(spark: SparkSession) -> None:
    release = threading.Event()

    def build() -> dict[str, Any]:
        release.wait(10)
        return {"done": True, "kept": []}

    spec = background.start("plans", build)
    assert spec.thread.is_alive()
    release.set()
    assert settle(spec, valid=True) == {"done": True, "kept": []}
