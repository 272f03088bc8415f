"""Python workers loaded and the driver JVM warmed before the first tasks need them (I/O only).

Spark starts a Python worker the first time a task needs one, and that worker then imports pandas,
pyarrow, pydantic and the record models, and (for sentiment) loads VADER's lexicon: seconds of CPU
per worker, paid in the middle of the first validation tasks. A small hour's run is short and
leaves a core idle while the driver checks topics and builds and plans its queries; one tiny job
started in the background then lets the workers load then, and Spark reuses them for the real tasks
(``spark.python.worker.reuse``, on by default). Measured on 2 cores, 10,000 tweets + 3,600
ticks, alternating runs: median 27.3 s against 28.8 s (4 runs each). A small run forks only these
two workers; a daemon of our own that imports the modules before it forks them
(``spark.python.daemon.module``) saves one worker's imports, ~1.2 CPU-seconds: within the noise
(session 24, spark/README.md).

The driver JVM is warmed the same way, in a second background thread: Spark 4 maps case with ICU
(``spark.sql.icu.caseMappings.enabled``), and the first ``lower`` in a JVM initialises ICU's case
and break-iterator data, ~1.4 s of a core with the quick profile. The job's first ``lower`` is
the hashtags' (``tweets.top_hashtags``), in the middle of the ``hourly`` rows, where it held up
that stage (the stage's other task waited for the same class initialisation). One constant
query, :data:`JVM_WARMUP_SQL` (folded by the optimizer in the driver), pays it while the driver
checks topics and builds its plans. Measured at 10k: 14.6-15.3 s against 15.5-16.3 s (6
alternating pairs, 6 faster).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pandas as pd

from coinfeed.spark import background
from coinfeed.spark.background import Background

log = logging.getLogger("coinfeed.spark.warmup")
# Initialises what the job's first ``lower`` would (ICU's case mapping), in the driver.
JVM_WARMUP_SQL = "SELECT lower('A')"


def _load(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    # What the job's UDFs import and load in a worker: the validation path and VADER.
    import os
    import sys

    import coinfeed.spark.parse  # noqa: F401 (the import is the work)
    from coinfeed.spark import sentiment

    sentiment.analyzer()
    ready = "coinfeed.spark.parse" in sys.modules and sentiment._analyzer is not None
    for _ in batches:
        pass
    yield pd.DataFrame({"pid": [os.getpid()], "ready": [ready]})


class Warmup:
    """The background warm-ups (:mod:`coinfeed.spark.background`): ``python``'s value is the
    process ids of the Python workers it loaded, ``jvm``'s the warm-up query's rows; either's
    ``error`` says why it did not finish, if so."""

    def __init__(self, python: Background, jvm: Background) -> None:
        self.python = python
        self.jvm = jvm


def start(spark: Any) -> Warmup:
    """Start one task per core in a background driver thread that loads what the job's Python
    UDFs need into the workers, and :data:`JVM_WARMUP_SQL` in another. Never fails the run: a
    failed warm-up only means the real tasks load the workers (or initialise ICU) themselves (the
    reason is logged at debug level and kept in ``error``)."""

    def load_workers() -> list[int]:
        slots = max(1, int(spark.sparkContext.defaultParallelism))
        rows = spark.range(0, slots, 1, slots).mapInPandas(_load, "pid int, ready boolean")
        workers = sorted({int(r.pid) for r in rows.collect() if r.ready})
        log.info("Python workers loaded", extra={"workers": len(workers)})
        return workers

    def warm_jvm() -> list[Any]:
        rows = list(spark.sql(JVM_WARMUP_SQL).collect())
        log.info("driver JVM warmed up")
        return rows

    return Warmup(
        background.start("Python worker warm-up", load_workers),
        background.start("driver JVM warm-up", warm_jvm),
    )
