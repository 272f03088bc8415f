"""Raw Kafka rows -> typed records, and the records that fail, with the reason (quarantine).

Two paths, one contract. Spark-native checks generated from the shared model
(:mod:`coinfeed.spark.native`) accept the records that are certainly valid and type them, without
Python. Every other record goes to the shared pydantic model itself
(``coinfeed.schemas.decode_record``) in a vectorised ``pandas_udf``: it decides what the native
checks cannot judge and words the reason of every rejected record. A record pydantic accepts is
re-serialised in its canonical form (UTC ``...Z`` timestamps, defaults filled, lower-case coin) and
parsed with the ``StructType`` derived from the same model. The contract test proves both paths
agree, so the job can never accept what a producer would reject, or the reverse.

A small run skips the native checks (``validation="pydantic"``): every record goes to the model.
Building and planning the native checks' few thousand expressions costs the driver seconds of
fixed work per run, more than pydantic needs for tens of thousands of records (measured in
:mod:`coinfeed.spark.jit`, which chooses). There the model's values come back typed, one Arrow
column per field (:func:`typed_columns`), instead of as canonical JSON that Spark would parse
again: measured on 2 cores (session 25, one session, the validation and cache fill alone), 1M
tweets in 39.3 and 32.8 s against 64.8 and 52.9 s (first runs cold).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)
from pyspark.sql.pandas.functions import pandas_udf
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from coinfeed.schemas import RECORD_MODELS, RecordError, decode_record
from coinfeed.spark.jit import Validation
from coinfeed.spark.native import wire_bytes, with_native
from coinfeed.spark.schema import record_struct
from coinfeed.topics import TOPIC_KINDS, TopicKind, parse_topic

# Kafka source columns the job keeps for lineage (and for the quarantine).
KAFKA_COLUMNS = ("topic", "partition", "offset", "timestamp")
EVENT_TIME = {"prices": "ts", "tweets": "created_at"}

# How Spark reads the model's canonical JSON (``schemas.to_json``: millisecond ``Z`` timestamps).
_CANONICAL_JSON: Final = {"mode": "FAILFAST", "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"}

_CHECK_TYPE = StructType(
    [StructField("canonical", StringType(), True), StructField("reason", StringType(), True)]
)


def check_model(kind: TopicKind, topic: str, value: bytes | None) -> tuple[Any, str | None]:
    """(the model's record, None) for a valid record, (None, reason) otherwise."""
    model = RECORD_MODELS[kind]
    if value is None:
        return None, f"{model.__name__}.<record>: empty value (tombstone)"
    try:
        record = decode_record(model, bytes(value))
    except RecordError as exc:
        return None, str(exc)
    topic_coin = parse_topic(topic)[0]
    coin = vars(record)["coin"]
    if coin != topic_coin:
        return None, f"{model.__name__}.coin: {coin!r} does not match topic {topic!r}"
    return record, None


def check_record(kind: TopicKind, topic: str, value: bytes | None) -> tuple[str | None, str | None]:
    """(canonical JSON, None) for a valid record, (None, reason) otherwise."""
    record, reason = check_model(kind, topic, value)
    return (record.to_json().decode("utf-8") if record is not None else None), reason


def _checker(kind: TopicKind) -> Any:
    def check_batch(values: pd.Series, topics: pd.Series, pending: pd.Series) -> pd.DataFrame:
        # Rows the native checks accepted arrive with pending False: nothing to do in Python.
        out: list[tuple[str | None, str | None]] = [(None, None)] * len(values)
        for i in np.flatnonzero(pending.to_numpy(dtype=bool)):
            out[i] = check_record(kind, topics.iat[i], values.iat[i])
        return pd.DataFrame(out, columns=["canonical", "reason"])

    return pandas_udf(check_batch, _CHECK_TYPE)  # type: ignore[call-overload]


_CHECKERS = {kind: _checker(kind) for kind in TOPIC_KINDS}

# The typed checker's column with the reason a record was rejected (null when accepted).
REASON: Final = "_reason"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def epoch_micros(value: datetime) -> int:
    """Microseconds since the epoch, truncated to the millisecond as the wire form is (and the
    canonical JSON, ``schemas.format_ts``)."""
    micros = (value - _EPOCH) // _MICROSECOND
    return micros - micros % 1000


def _typed_type(kind: TopicKind) -> StructType:
    # The record's fields (nullable: a rejected record has none; timestamps as epoch
    # microseconds, which Arrow carries as plain integers) and the reason it was rejected.
    fields = [
        StructField(f.name, LongType() if isinstance(f.dataType, TimestampType) else f.dataType)
        for f in record_struct(kind).fields
    ]
    return StructType([*fields, StructField(REASON, StringType())])


def typed_columns(kind: TopicKind, values: pd.Series, topics: pd.Series) -> pd.DataFrame:
    """Every record through the model: an accepted one's fields returned typed (one column per
    field, null where rejected; timestamps as :func:`epoch_micros`), and the reason of each
    rejected one under :data:`REASON`. Spark takes the values through Arrow: no JSON is written
    or parsed again."""
    fields = record_struct(kind).fields
    columns: dict[str, list[Any]] = {f.name: [None] * len(values) for f in fields}
    reasons: list[str | None] = [None] * len(values)
    # Plain lists: a pandas element access costs microseconds, as much as the model's work.
    value_list, topic_list = values.tolist(), topics.tolist()
    for i, (topic, value) in enumerate(zip(topic_list, value_list, strict=True)):
        record, reasons[i] = check_model(kind, topic, value)
        if record is not None:
            for name, field in vars(record).items():
                columns[name][i] = field
    for f in fields:
        if isinstance(f.dataType, TimestampType):
            columns[f.name] = [None if v is None else epoch_micros(v) for v in columns[f.name]]
    # object columns: Arrow converts them to the declared types (ints stay exact, nulls stay null)
    out = {name: pd.Series(col, dtype=object) for name, col in columns.items()}
    out[REASON] = pd.Series(reasons, dtype=object)
    return pd.DataFrame(out)


def _typed_checker(kind: TopicKind) -> Any:
    def check_batch(values: pd.Series, topics: pd.Series) -> pd.DataFrame:
        return typed_columns(kind, values, topics)

    return pandas_udf(check_batch, _typed_type(kind))  # type: ignore[call-overload]


_TYPED_CHECKERS = {kind: _typed_checker(kind) for kind in TOPIC_KINDS}


def typed_record(kind: TopicKind, typed: Column) -> Column:
    """The record struct (:func:`record_struct`'s fields, timestamps restored) from a typed
    checker's output; null where the record was rejected."""
    fields = []
    for f in record_struct(kind).fields:
        value = typed.getField(f.name)
        if isinstance(f.dataType, TimestampType):
            value = F.timestamp_micros(value)
        fields.append(value.alias(f.name))
    return F.when(typed.getField(REASON).isNull(), F.struct(*fields))


@dataclass(frozen=True)
class Parsed:
    """``records``: typed fields + Kafka lineage; ``rejected``: Kafka row + ``reason``."""

    records: DataFrame
    rejected: DataFrame


def check(raw: DataFrame, kind: TopicKind, validation: Validation = "native") -> DataFrame:
    """Raw Kafka rows + ``_record`` (the typed record, when a check accepted it) and ``_check``
    (pydantic's reason for a rejected record; its canonical JSON for a record it accepted that
    ``_record`` does not hold yet). Persist this one: it runs the UDF.

    ``native``: the native checks first, pydantic for the records they leave pending. ``value``
    is null where the wire tier accepted the record: those bytes are ``wire_bytes(_record)``
    exactly, and :func:`split` gives them back where they are needed (the quarantine of a valid
    record that came too late or early), so the persisted rows hold each record once.
    ``pydantic``: every record through the model (a small run: see the module docstring).
    """
    if validation == "pydantic":
        return _check_pydantic(raw, kind)
    if validation != "native":
        raise ValueError(f"validation must be native or pydantic, got {validation!r}")
    native = with_native(raw, kind)  # the select below keeps only what later steps read
    pending = F.col("_native").isNull()
    kept = F.when(~F.col("_native_wire"), F.col("value"))
    # Spark evaluates a Python UDF for every row of its input, whatever CASE surrounds it, so the
    # accepted rows reach it with null value and topic (cheap in Arrow) and are skipped there.
    return native.select(
        *[kept.alias(c) if c == "value" else F.col(c) for c in raw.columns],
        F.col("_native").alias("_record"),
        _CHECKERS[kind](
            F.when(pending, F.col("value")), F.when(pending, F.col("topic")), pending
        ).alias("_check"),
    )


def _check_pydantic(raw: DataFrame, kind: TopicKind) -> DataFrame:
    """:func:`check` with the model alone: accepted records come back from it typed
    (:func:`typed_columns`), so the persisted rows hold the typed record and the bytes sent."""
    judged = raw.select(
        *raw.columns,
        _TYPED_CHECKERS[kind](F.col("value"), F.col("topic")).alias("_typed"),
    )
    no_json = F.lit(None).cast("string").alias("canonical")
    reason = F.col("_typed").getField(REASON).alias("reason")
    return judged.select(
        *raw.columns,
        typed_record(kind, F.col("_typed")).alias("_record"),
        F.struct(no_json, reason).alias("_check"),
    )


def split(checked: DataFrame, kind: TopicKind) -> Parsed:
    """Typed records (+ Kafka lineage, ``key``/``value``) and rejected rows (+ ``reason``)."""
    lineage = [F.col(c).alias(f"kafka_{c}") for c in KAFKA_COLUMNS]
    parsed = F.from_json(F.col("_check.canonical"), record_struct(kind), _CANONICAL_JSON)
    record = F.coalesce(F.col("_record"), parsed)
    value = F.coalesce(F.col("value"), wire_bytes(F.col("_record"))).alias("value")
    records = checked.where(F.col("_check.reason").isNull()).select(
        record.alias("r"), *lineage, F.col("key"), value
    )
    records = records.select("r.*", *[f"kafka_{c}" for c in KAFKA_COLUMNS], "key", "value")
    rejected = checked.where(F.col("_check.reason").isNotNull()).select(
        *lineage, F.col("key"), F.col("value"), F.col("_check.reason").alias("reason")
    )
    return Parsed(records, rejected)


def parse_records(raw: DataFrame, kind: TopicKind, validation: Validation = "native") -> Parsed:
    """Split raw Kafka rows (``key``, ``value`` + :data:`KAFKA_COLUMNS`) into records and rejects."""
    return split(check(raw, kind, validation), kind)


def event_time(kind: TopicKind) -> Column:
    return F.col(EVENT_TIME[kind])
