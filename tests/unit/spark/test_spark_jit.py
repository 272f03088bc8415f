"""The driver JVM's compile profile: chosen by the estimated input, applied to the Spark settings."""

from __future__ import annotations

import pytest

from coinfeed.spark.jit import (
    DRIVER_JAVA_OPTIONS,
    QUICK_JAVA_OPTIONS,
    QUICK_MAX_RECORDS,
    choose,
    profile_conf,
)


@pytest.mark.parametrize(
    ("requested", "records", "expected"),
    [
        ("auto", 0, "quick"),
        ("auto", QUICK_MAX_RECORDS, "quick"),
        ("auto", QUICK_MAX_RECORDS + 1, "full"),
        ("auto", None, "full"),  # Kafka could not say: it may be big
        ("quick", 10**9, "quick"),
        ("full", 0, "full"),
    ],
)
def test_choose(requested: str, records: int | None, expected: str) -> None:
    assert choose(requested, records) == expected


def test_choose_honours_the_bound_given() -> None:
    assert choose("auto", 5, max_records=4) == "full"
    assert choose("auto", 0, max_records=0) == "quick"


def test_choose_rejects_an_unknown_profile() -> None:
    with pytest.raises(ValueError, match="must be one of auto, quick, full, got 'fast'"):
        choose("fast", 0)


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


def test_full_changes_nothing() -> None:
    conf = {DRIVER_JAVA_OPTIONS: "-Duser.timezone=UTC"}
    assert profile_conf("full", conf) == conf
