"""Spark types derived from the shared record schemas (never a hand-written copy).

:func:`coinfeed.schemas.record_fields` describes each model's fields in engine-neutral terms; this
module only maps those terms to Spark types, so a field added to a model reaches the job unchanged.
"""

from __future__ import annotations

from typing import Final

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from coinfeed.schemas import RECORD_MODELS, FieldSpec, record_fields
from coinfeed.topics import TopicKind

# A row of Spark's Kafka source, as the job reads it (``hourly._read_kafka`` selects these).
KAFKA_ROW: Final = StructType(
    [
        StructField("key", BinaryType(), True),
        StructField("value", BinaryType(), True),
        StructField("topic", StringType(), False),
        StructField("partition", IntegerType(), False),
        StructField("offset", LongType(), False),
        StructField("timestamp", TimestampType(), False),
    ]
)

_SPARK_TYPES: Final[dict[str, DataType]] = {
    "string": StringType(),
    "long": LongType(),
    "double": DoubleType(),
    "timestamp": TimestampType(),
    "array<string>": ArrayType(StringType(), containsNull=False),
}


def spark_type(spec: FieldSpec) -> DataType:
    """The Spark type of one schema field; a clear error for a type the job cannot map."""
    try:
        return _SPARK_TYPES[spec.type]
    except KeyError:
        raise TypeError(f"field {spec.name!r}: no Spark type for {spec.type!r}") from None


def record_struct(kind: TopicKind) -> StructType:
    """The ``StructType`` of the records on a ``prices`` or ``tweets`` topic."""
    return StructType(
        [
            StructField(spec.name, spark_type(spec), spec.nullable)
            for spec in record_fields(RECORD_MODELS[kind])
        ]
    )
