"""Lake writes replace exactly the processed hours, including hours that now yield no rows."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from coinfeed.spark.lake import stale_partitions, write_partitions
from tests.unit.spark.rows import t

SCHEMA = "coin string, date string, hour int, v long"


def _parts(path: Path) -> dict[str, list[int]]:
    out = {}
    for part in sorted(path.glob("coin=*/date=*/hour=*")):
        files = list(part.glob("*.parquet"))
        assert len(files) == 1, part
        import pyarrow.parquet as pq

        out[str(part.relative_to(path))] = sorted(pq.read_table(files[0])["v"].to_pylist())
    return out


def test_stale_partitions_are_the_processed_hours_without_rows() -> None:
    present = [("btc", "2024-01-01", 1)]
    got = stale_partitions("/lake/q/", "btc", [t(0), t(1)], present)
    assert got == ["/lake/q/coin=btc/date=2024-01-01/hour=0"]


def test_rerun_removes_a_partition_the_hour_no_longer_yields(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "quarantine"
    first = spark.createDataFrame(
        [("btc", "2024-01-01", 0, 1), ("btc", "2024-01-01", 1, 2), ("btc", "2024-01-01", 2, 3)],
        SCHEMA,
    )
    write_partitions(first, str(path), ("v",), {"btc": [t(0), t(1), t(2)]})
    eth = spark.createDataFrame([("eth", "2024-01-01", 0, 9)], SCHEMA)
    write_partitions(eth, str(path), ("v",), {"eth": [t(0)]})
    # Rerun of hours 00 and 01: hour 00 now yields nothing, hour 01 yields a different row.
    rerun = spark.createDataFrame([("btc", "2024-01-01", 1, 5)], SCHEMA)
    write_partitions(rerun, str(path), ("v",), {"btc": [t(0), t(1)]})
    assert _parts(path) == {
        "coin=btc/date=2024-01-01/hour=1": [5],
        "coin=btc/date=2024-01-01/hour=2": [3],  # not processed: untouched
        "coin=eth/date=2024-01-01/hour=0": [9],  # another coin's hour: untouched
    }
    # Nothing at all for the processed hour: still removed (the empty write replaces nothing).
    write_partitions(rerun.limit(0), str(path), ("v",), {"btc": [t(1)]})
    assert "coin=btc/date=2024-01-01/hour=1" not in _parts(path)


def test_known_empty_output_is_not_written_and_its_hours_are_cleared(
    spark: SparkSession, tmp_path: Path
) -> None:
    from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)

    path = tmp_path / "quarantine"
    first = spark.createDataFrame(
        [("btc", "2024-01-01", 0, 1), ("btc", "2024-01-01", 1, 2)], SCHEMA
    )
    write_partitions(first, str(path), ("v",), {"btc": [t(0), t(1)]})
    # The caller knows the output has no rows (present=[]): no Spark job may run, so a frame
    # that fails when computed must not be computed; the processed hour is still cleared.
    boom = F.udf(lambda v: 1 // 0, "long")
    failing = spark.createDataFrame([("btc", "2024-01-01", 0, 7)], SCHEMA).withColumn(
        "v", boom("v")
    )
    write_partitions(failing, str(path), ("v",), {"btc": [t(0)]}, present=[])
    assert _parts(path) == {"coin=btc/date=2024-01-01/hour=1": [2]}
