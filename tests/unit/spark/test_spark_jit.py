"""The driver JVM's compile profile: chosen by the estimated input, applied to the Spark settings."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from coinfeed.devcluster.kafka import find_java
from coinfeed.spark.jit import (
    DRIVER_JAVA_OPTIONS,
    FULL_JAVA_OPTIONS,
    QUICK_JAVA_OPTIONS,
    QUICK_MAX_RECORDS,
    choose,
    choose_validation,
    profile_conf,
    split_reads_for,
)


@pytest.mark.parametrize(
    ("pick", "small", "big"),
    [(choose, "quick", "full"), (choose_validation, "pydantic", "native")],
)
def test_auto_picks_by_the_estimate_and_a_forced_choice_wins(
    pick: Callable[..., str], small: str, big: str
) -> None:
    assert pick("auto", 0) == small
    assert pick("auto", QUICK_MAX_RECORDS) == small
    assert pick("auto", QUICK_MAX_RECORDS + 1) == big
    assert pick("auto", None) == big  # Kafka could not say: it may be big
    assert pick(small, 10**9) == small
    assert pick(big, 0) == big
    assert pick("auto", 5, max_records=4) == big
    assert pick("auto", 0, max_records=0) == small


def test_only_a_big_or_unknown_run_splits_its_kafka_reads() -> None:
    assert split_reads_for(0) is False
    assert split_reads_for(QUICK_MAX_RECORDS) is False
    assert split_reads_for(QUICK_MAX_RECORDS + 1) is True
    assert split_reads_for(None) is True  # Kafka could not say: it may be big
    assert split_reads_for(5, max_records=4) is True


def test_choose_rejects_an_unknown_profile() -> None:
    with pytest.raises(ValueError, match="must be one of auto, quick, full, got 'fast'"):
        choose("fast", 0)


def test_choose_validation_rejects_an_unknown_path() -> None:
    with pytest.raises(
        ValueError, match="validation must be one of auto, pydantic, native, got 'fast'"
    ):
        choose_validation("fast", 0)


def test_quick_adds_to_the_drivers_options_and_turns_whole_stage_codegen_off() -> None:
    conf = {DRIVER_JAVA_OPTIONS: "-Duser.timezone=UTC", "spark.master": "local[2]"}
    quick = profile_conf("quick", conf)
    assert quick == {
        DRIVER_JAVA_OPTIONS: f"-Duser.timezone=UTC {QUICK_JAVA_OPTIONS}",
        "spark.master": "local[2]",
        "spark.sql.codegen.wholeStage": "false",
    }
    assert conf[DRIVER_JAVA_OPTIONS] == "-Duser.timezone=UTC"  # the input is not changed
    assert profile_conf("quick", {})[DRIVER_JAVA_OPTIONS] == QUICK_JAVA_OPTIONS


def test_full_keeps_whole_stage_codegen_and_tunes_only_c2() -> None:
    conf = {DRIVER_JAVA_OPTIONS: "-Duser.timezone=UTC", "spark.master": "local[2]"}
    assert profile_conf("full", conf) == {
        DRIVER_JAVA_OPTIONS: f"-Duser.timezone=UTC {FULL_JAVA_OPTIONS}",
        "spark.master": "local[2]",
    }
    flags = dict(o.removeprefix("-XX:").split("=") for o in FULL_JAVA_OPTIONS.split())
    # Tier 4 only: C1 (tier 3) keeps compiling at once, and C2 stays on (no TieredStopAtLevel),
    # with higher thresholds and shallower inlining than the JDK 17 defaults (5000 invocations,
    # 15 levels, 2500 bytes), each of which was measured to cost more at 1M (spark/jit.py).
    assert set(flags) == {
        "Tier4InvocationThreshold",
        "Tier4MinInvocationThreshold",
        "Tier4CompileThreshold",
        "Tier4BackEdgeThreshold",
        "MaxInlineLevel",
        "InlineSmallCode",
    }
    assert all(int(v) > 0 for v in flags.values())
    assert int(flags["Tier4InvocationThreshold"]) > 5000
    assert 0 < int(flags["MaxInlineLevel"]) < 15
    assert 0 < int(flags["InlineSmallCode"]) < 2500


def test_every_profiles_java_options_start_a_jvm() -> None:
    # A misspelt -XX flag stops the driver JVM before Spark starts: ask the JDK Spark would use
    # (JAVA_HOME, else PATH).
    java = find_java()
    for options in (QUICK_JAVA_OPTIONS, FULL_JAVA_OPTIONS):
        done = subprocess.run(
            [java, *options.split(), "-version"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{options}: {done.stderr}"
