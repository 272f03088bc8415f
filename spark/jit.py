"""What a run does to fit its size (pure): how much the driver JVM compiles, which validation
path the records take, and whether Kafka is read in several tasks per core.

A small hour's run is short and CPU-bound on JVM work that runs once or a few times: the JIT's
optimising compiler (C2) and Spark's whole-stage code generation (Janino) spend more CPU compiling
than the compiled code saves. Measured on 2 cores, one hour of 10,000 tweets and 3,600 ticks: the
job's CPU time fell from about 66 to 36 CPU-seconds with C1 only and no whole-stage code
generation. For 1,000,000 tweets C1 only was slower (91 s -> 126 s): big hours keep both, but
C2 compiles only what is hot there (``full``): with the default thresholds its compiler thread
used ~82 of the driver JVM's ~290 CPU-seconds at 1M (Java Flight Recorder), much of it on code
that runs a few thousand times (Janino compiling generated classes, task serialization). With
tenfold tier-4 thresholds the per-record loops still reach C2 within their first records, and
C2 inlines less deeply (cheaper compiles: its compile time fell by a third at 1M).

The job estimates its input from Kafka's offsets before the JVM starts (JVM options are fixed at
start) and chooses the ``quick`` profile when at most ``max_records`` records can be read.

The same bound chooses the validation path (:func:`choose_validation`): up to it every record goes
to the pydantic model (``pydantic``); above it the Spark-native checks accept the well-formed
records first (``native``). The native checks are a few thousand Spark expressions: building and
planning them is fixed driver work per run that pydantic's per-record cost (~22 s per million
records in one process) only outweighs for big hours. Measured on 2 cores with the quick profile
(alternating runs): 10,000 tweets + 3,600 ticks 23.4 and 26.3 s against 29.5 and 32.5 s; 100,000
tweets 47.0 and 50.7 s against 60.6 and 64.3 s (see spark/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, cast

Profile = Literal["quick", "full"]
PROFILES: Final = ("auto", "quick", "full")
Validation = Literal["native", "pydantic"]
VALIDATION_CHOICES: Final = ("auto", "native", "pydantic")
# Records (both kinds, every coin of the run) up to which ``auto`` chooses ``quick``. Measured
# (wall time quick/full, 2 cores, tweets + 3,600 ticks): 13.6k records 0.86, 103.6k 0.97 (and 29 %
# less CPU), 1M 1.38. The lines cross near 170k; the bound stays below.
QUICK_MAX_RECORDS: Final = 150_000
DRIVER_JAVA_OPTIONS: Final = "spark.driver.extraJavaOptions"
# C1 only: compiled code is less optimised, but compiling costs a fraction of C2's CPU.
QUICK_JAVA_OPTIONS: Final = "-XX:TieredStopAtLevel=1"
# Tried, not kept: spark.sql.codegen.factoryMode=NO_CODEGEN (interpreted projections): 10k a tie,
# 100k 42.3 against 35.7 s (alternating runs). Whole-stage code generation back on (session 19):
# 10k 21.1 against 20.9 s, a tie (medians of 4 alternating runs).
QUICK_SPARK_CONF: Final[Mapping[str, str]] = {"spark.sql.codegen.wholeStage": "false"}
# C2 (tier 4) only for hot code: the JDK 17 defaults (5000 invocations, 600 minimum, 15000
# invocations + loops, 40000 back-edges) times ten. Measured at 1M tweets on 2 cores (full
# profile, alternating runs): 183 and 192 s against 199-212 s with the defaults, 338 against
# 382-385 machine CPU-seconds; threefold: 193 s; thirtyfold: 205 s (too late for hot code).
# And C2 inlines less deeply (JDK 17: MaxInlineLevel 15, InlineSmallCode 2500): each compile is
# cheaper. Measured at 1M tweets on 2 cores (session 20, -XX:+CITime): C2 27.0 s for 2,966
# methods against 41.6 s for 3,054, all compiling 37.2 against 53.8 s; the job 88.6 against
# 92.8 s (means of 6 alternating pairs, 5 of them faster). Tried, not kept (session 23): a second
# C2 compiler thread (-XX:CICompilerCount=3): 149.2 against 141.6 s (3 alternating pairs, a slow
# machine), validation slower in all 3.
FULL_JAVA_OPTIONS: Final = (
    "-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=6000 "
    "-XX:Tier4CompileThreshold=150000 -XX:Tier4BackEdgeThreshold=400000 "
    "-XX:MaxInlineLevel=9 -XX:InlineSmallCode=1000"
)


def is_small(records: int | None, max_records: int = QUICK_MAX_RECORDS) -> bool:
    """Kafka's estimate is known and at most ``max_records`` (an unknown size may be big)."""
    return records is not None and records <= max_records


def _resolve(
    what: str, requested: str, small: str, big: str, records: int | None, max_records: int
) -> str:
    # ``requested`` unless it is auto; then ``small`` for a small run, else ``big``.
    if requested not in ("auto", small, big):
        raise ValueError(f"{what} must be one of auto, {small}, {big}, got {requested!r}")
    if requested != "auto":
        return requested
    return small if is_small(records, max_records) else big


def choose(requested: str, records: int | None, max_records: int = QUICK_MAX_RECORDS) -> Profile:
    """The JVM profile: ``requested`` unless it is ``auto``; then ``quick`` for a small run."""
    return cast(Profile, _resolve("JVM profile", requested, "quick", "full", records, max_records))


def choose_validation(
    requested: str, records: int | None, max_records: int = QUICK_MAX_RECORDS
) -> Validation:
    """The validation path: ``requested`` unless it is ``auto``; then ``pydantic`` for a small
    run."""
    return cast(
        Validation, _resolve("validation", requested, "pydantic", "native", records, max_records)
    )


def with_driver_options(conf: Mapping[str, str], added: str) -> dict[str, str]:
    """``conf`` with ``added`` appended to the driver's JVM options (for a flag given twice the
    JVM takes the last)."""
    out = dict(conf)
    if added:
        out[DRIVER_JAVA_OPTIONS] = f"{out.get(DRIVER_JAVA_OPTIONS, '').strip()} {added}".strip()
    return out


def profile_conf(profile: Profile, conf: Mapping[str, str]) -> dict[str, str]:
    """``conf`` with the profile's settings: each appends its JVM options to the driver's (for a
    flag given twice the JVM takes the last, so the profile's win; ``--jvm-profile`` is the
    switch); ``quick`` also turns whole-stage code generation off."""
    out = with_driver_options(conf, QUICK_JAVA_OPTIONS if profile == "quick" else FULL_JAVA_OPTIONS)
    if profile == "quick":
        out.update(QUICK_SPARK_CONF)
    return out


def split_reads_for(records: int | None, max_records: int = QUICK_MAX_RECORDS) -> bool:
    """Read Kafka in several tasks per core (``hourly.READ_TASKS_PER_CORE``) unless the run is
    small: a big run's validation tasks then end together instead of one running alone; a small
    run's tasks are mostly fixed cost, so more of them only add work."""
    return not is_small(records, max_records)
