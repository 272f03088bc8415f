"""Spark-native record checks, generated from the shared pydantic models (no Python per record).

:func:`field_rules` reads each model field's type, default, nullability and constraints (length,
bounds, finiteness, literal values) from ``coinfeed.schemas``; :func:`with_native` turns them into
Spark expressions that yields the typed record when the record is *certainly* valid
and null otherwise. Null means "the pydantic model decides": records that are invalid (to word the
reason) or in a form only pydantic's lax parsing judges (a number sent as a string, an epoch
timestamp, a non-canonical coin, JSON that Spark's parser reads more leniently than Python's).
The cross-field rules of ``Tweet`` are written here with the model's own patterns. The contract
test (``tests/unit/spark/test_spark_native_contract.py``) proves native and pydantic agree.

Records in the producers' own wire form (``schemas.to_json``: every field, model order, compact,
millisecond ``Z`` timestamps), i.e. nearly all of them, take a cheaper first tier: one ``from_json``
with the model's Spark types, then Spark's JSON writer must give back the record byte for byte.
That proves each field's JSON type, no unknown or duplicate keys, no trailing data and valid bytes
in one step; only the constraints are left to check on the typed values. A record not in that exact
form goes through the full checks above (about 8x the CPU per record, measured).
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

from pydantic_core import PydanticUndefined
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (PySpark convention)
from pyspark.sql.types import ArrayType

from coinfeed.schemas import (
    BLUESKY_DID_PATTERN,
    BLUESKY_URI_PATTERN,
    RECORD_MODELS,
    X_ID_PATTERN,
    FieldSpec,
    record_fields,
)
from coinfeed.spark.schema import record_struct
from coinfeed.topics import TopicKind

# schema_of_variant names of JSON integers and of every JSON number.
_INTEGER_TYPES: Final = ("TINYINT", "SMALLINT", "INT", "BIGINT")
# A JSON string literal, unrolled and possessive: no backtracking stack on long texts.
_JSON_STRING: Final = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# Timestamps Spark parses exactly as pydantic does: years 1970-2999 (no pre-epoch rounding),
# 1-6 fraction digits, an explicit offset within Spark's +-18:00. Anything else: pydantic decides.
_TS_SHAPE: Final = (
    r"^(19[7-9][0-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"([Zz]|[+-](0[0-9]|1[0-7]):?[0-5][0-9])$"
)

# The wire format of timestamps (schemas.format_ts), as Spark's JSON reader and writer spell it.
_WIRE_TS: Final = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
# The years _TS_SHAPE lets through: the wire tier accepts no other either.
_WIRE_YEARS: Final = (1970, 2999)


@dataclass(frozen=True)
class FieldRule:
    """One model field as the native checks see it."""

    name: str
    type: str  # FieldSpec.type
    required: bool
    optional: bool  # JSON null allowed (``X | None``)
    default: Any  # used when the field is absent (None when there is none)
    literals: tuple[Any, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    finite: bool = False


def _optional(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, types.UnionType):
        return type(None) in get_args(annotation)
    return False


def _literals(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return get_args(annotation) if get_origin(annotation) is Literal else ()


def field_rules(kind: TopicKind) -> list[FieldRule]:
    """Every field of the kind's model with its constraints (pure: reads pydantic metadata)."""
    model = RECORD_MODELS[kind]
    specs: dict[str, FieldSpec] = {s.name: s for s in record_fields(model)}
    rules = []
    for name, info in model.model_fields.items():
        limits: dict[str, Any] = {}
        for meta in info.metadata:
            for attr in ("min_length", "max_length", "gt", "ge", "le"):
                if getattr(meta, attr, None) is not None:
                    limits[attr] = getattr(meta, attr)
            if getattr(meta, "allow_inf_nan", None) is False:
                limits["finite"] = True
        if info.default_factory is not None:
            default = info.default_factory()  # type: ignore[call-arg]
        else:
            default = None if info.default is PydanticUndefined else info.default
        rules.append(
            FieldRule(
                name=name,
                type=specs[name].type,
                required=info.is_required(),
                optional=_optional(info.annotation),
                default=default,
                literals=_literals(info.annotation),
                **limits,
            )
        )
    return rules


def python_pattern(pattern: str) -> str:
    """A Python ``re.match`` pattern ending in ``$`` as a Java regex with the same meaning:
    Python's ``$`` also matches before one final newline, Java's before any line terminator."""
    return pattern[:-1] + r"(?=\n?\z)" if pattern.endswith("$") else pattern


def _matches(col: Column, pattern: str) -> Column:
    return col.rlike(python_pattern(pattern))


def _constraints(rule: FieldRule, value: Column) -> Column:
    """The rule's constraints on a typed, non-null ``value``: length, array elements, literal
    values, bounds."""
    ok = F.lit(True)
    if rule.type == "string":
        length = F.char_length(value)  # code points, like Python's len()
        if rule.min_length is not None:
            ok = ok & (length >= rule.min_length)
        if rule.max_length is not None:
            ok = ok & (length <= rule.max_length)
    elif rule.type == "array<string>":
        # JSON nulls among the elements: Spark reads them into the array, pydantic rejects them.
        # ``exists`` runs outside generated code (and Spark 4.2 builds a SQLConf per element
        # read: 7 % of the wire tier's samples at 1M). Tried, not kept (session 23): the wire
        # tier proving it from the bytes instead (no ``[null``/``,null``); its projection then
        # joined the full checks' whole-stage-generated stage and 1M tweets' validation took
        # 55.2-57.2 s against 48.2-57.6 s (means 56.3 and 51.2 s, 4 alternating pairs).
        ok = ok & ~F.exists(value, lambda x: x.isNull())
    if rule.literals:
        ok = ok & value.isin(list(rule.literals))
    if rule.gt is not None:
        ok = ok & (value > rule.gt)
    if rule.ge is not None:
        ok = ok & (value >= rule.ge)
    if rule.le is not None:
        ok = ok & (value <= rule.le)
    return ok


def _wire_field(rule: FieldRule, value: Column) -> Column:
    """Whether one field of a record in the wire form is valid (its JSON type is already proven):
    present unless optional, within the rule's constraints. Doubles must be finite and timestamps
    within _TS_SHAPE's years, as in the full checks, whatever the rule says: only certain records
    are accepted here."""
    ok = _constraints(rule, value)
    if rule.type == "double":
        ok = ok & ~F.isnan(value) & (F.abs(value) != F.lit(float("inf")))
    elif rule.type == "timestamp":
        ok = ok & F.year(value).between(*_WIRE_YEARS)
    return value.isNull() & F.lit(rule.optional) | value.isNotNull() & ok


def _field(rule: FieldRule) -> tuple[Column, Column, Column]:
    """(valid, typed value, lax) of one field from the helper columns of :func:`with_native`; an
    absent field takes the model's default. ``lax``: a form only pydantic's lax mode judges (a
    number as a string, a bool as a number, an epoch or free-form timestamp)."""
    got = F.col(f"_s_{rule.name}")  # the JSON value as text (a number's own digits)
    jtype = F.col(f"_t_{rule.name}")  # its JSON type, as schema_of_variant names it
    present = F.array_contains(F.col("_keys"), rule.name)
    value: Column
    if rule.type == "string":
        value = got
        ok = jtype == "STRING"
        lax = F.lit(False)  # pydantic never turns another JSON type into a string
    elif rule.type == "long":
        value = F.try_variant_get(F.col("_v"), f"$.{rule.name}", "bigint")
        ok = jtype.isin(list(_INTEGER_TYPES)) & value.isNotNull()
        lax = jtype.isin("STRING", "BOOLEAN", "DOUBLE") | jtype.startswith("DECIMAL")
    elif rule.type == "double":
        # Via the number's text: Java parses it exactly as Python's float() does.
        value = got.try_cast("double")
        ok = (
            (jtype.isin(list(_INTEGER_TYPES)) | jtype.startswith("DECIMAL") | (jtype == "DOUBLE"))
            & value.isNotNull()
            & ~F.isnan(value)
            & (F.abs(value) != F.lit(float("inf")))
        )
        lax = jtype.isin("STRING", "BOOLEAN")
    elif rule.type == "timestamp":
        text = F.regexp_replace(F.regexp_replace(got, " ", "T"), "z$", "Z")
        text = F.regexp_replace(text, r"([+-][0-9]{2})([0-9]{2})$", "$1:$2")
        # A plain cast parses ISO-8601 with offset (no formatter, no exceptions); _TS_SHAPE has
        # already narrowed the text to forms where cast and pydantic agree.
        parsed = text.try_cast("timestamp")
        # The wire format keeps milliseconds (schemas.format_ts truncates): so does the job.
        value = F.timestamp_millis(F.unix_millis(parsed))
        ok = (jtype == "STRING") & _matches(got, _TS_SHAPE) & parsed.isNotNull()
        # Epoch numbers and other ISO forms are pydantic's to judge; so is what Spark cannot parse.
        lax = (jtype != "STRING") | ~ok
    elif rule.type == "array<string>":
        value = F.try_variant_get(F.col("_v"), f"$.{rule.name}", "array<string>")
        ok = value.isNotNull() & (
            (jtype == "ARRAY<STRING>") | (jtype.startswith("ARRAY<") & (F.size(value) == 0))
        )
        lax = F.lit(False)
    else:  # a new engine type: pydantic decides until this module learns it
        value, ok, lax = F.lit(None), F.lit(False), F.lit(True)
    ok = ok & _constraints(rule, value)
    is_null = jtype == "VOID"
    valid = F.when(~present, F.lit(not rule.required))
    valid = valid.when(is_null, F.lit(rule.optional)).otherwise(ok)
    typed = F.when(present & ~is_null, value).otherwise(F.lit(rule.default))
    lax = present & ~is_null & ~ok & lax
    return F.coalesce(valid, F.lit(False)), typed, F.coalesce(lax, F.lit(False))


def _tweet_rules(f: dict[str, Column]) -> Column:
    """``Tweet._platform_ids`` in Spark terms (same patterns, imported from the schema)."""
    x = f["platform"] == "x"
    v1 = (f["schema_version"] != 1) | (x & f["observed_at"].isNull())
    x_ids = _matches(f["id"], X_ID_PATTERN) & _matches(f["author_id"], X_ID_PATTERN)
    uri = python_pattern(BLUESKY_URI_PATTERN)
    bluesky_ids = (
        f["id"].rlike(uri)
        & _matches(f["author_id"], BLUESKY_DID_PATTERN)
        & (F.regexp_extract(f["id"], uri, 1) == f["author_id"])
    )
    return v1 & F.when(x, x_ids).otherwise(bluesky_ids)


def wire_bytes(record: Column) -> Column:
    """A typed record (``record_struct``) in the producers' wire form, as Kafka value bytes: what
    Spark's JSON writer gives back. For a record the wire tier accepted this is its value, byte
    for byte (that is the tier's test), so the value need not be kept beside the record."""
    return F.to_json(record, {"timestampFormat": _WIRE_TS, "ignoreNullFields": "false"}).cast(
        "binary"
    )


def with_native(df: DataFrame, kind: TopicKind, out: str = "_native") -> DataFrame:
    """``df`` (with ``value`` bytes and ``topic``) + ``out``: the typed record
    (``record_struct(kind)``) when the native checks accept it, else null; + ``<out>_judged``:
    false when the record is in a form only pydantic judges (then pydantic decides, as it does
    for every record not accepted here); + ``<out>_wire``: accepted by the wire-form tier.

    Built in steps of helper columns so the JSON is parsed once per record: Spark does not merge a
    projection into the next when that would repeat an expensive expression.
    """
    rules = field_rules(kind)
    struct = record_struct(kind)
    text = F.col("value").cast("string")
    topic_coin = F.split(F.col("topic"), r"\.").getItem(1)
    # First tier: the producers' wire form, proven by writing the parsed record back.
    step = df.withColumn("_w", F.from_json(text, struct, {"timestampFormat": _WIRE_TS}))
    wire_fields = {r.name: F.col("_w").getField(r.name) for r in rules}
    wire_ok = wire_bytes(F.col("_w")) == F.col("value")
    for rule in rules:
        wire_ok = wire_ok & _wire_field(rule, wire_fields[rule.name])
    wire_ok = wire_ok & (wire_fields["coin"] == topic_coin)
    if kind == "tweets":
        wire_ok = wire_ok & _tweet_rules(wire_fields)
    step = step.withColumn("_wire", F.coalesce(wire_ok, F.lit(False)))
    # Second tier, the full checks, for the other records only: a null text makes every step null.
    step = step.withColumn("_text", F.when(~F.col("_wire"), text)).withColumns(
        {"_v": F.try_parse_json(F.col("_text")), "_keys": F.json_object_keys(F.col("_text"))}
    )
    step = step.withColumns(
        {
            name: expr
            for r in rules
            for name, expr in (
                (f"_s_{r.name}", F.try_variant_get(F.col("_v"), f"$.{r.name}", "string")),
                (
                    f"_t_{r.name}",
                    F.schema_of_variant(F.try_variant_get(F.col("_v"), f"$.{r.name}", "variant")),
                ),
            )
        }
    )
    known = F.array(*[F.lit(r.name) for r in rules])
    # Spark's parser stops after the first JSON value, Python's rejects trailing data: with the
    # string literals removed, an accepted record (no nested objects) is one {...} and nothing else.
    skeleton = F.regexp_replace(
        F.regexp_replace(F.col("_text"), _JSON_STRING, ""), r"[ \t\n\r]", ""
    )
    # Bytes, JSON syntax and trailing data: where Spark's and Python's parsers may differ.
    well_formed = (
        F.is_valid_utf8(F.col("_text")) & F.col("_v").isNotNull() & skeleton.rlike(r"^\{[^{}]*\}$")
    )
    ok = well_formed & (F.size(F.array_except(F.col("_keys"), known)) == 0)
    fields: dict[str, Column] = {}
    valid: dict[str, Column] = {}
    lax: list[Column] = []
    for rule in rules:
        valid[rule.name], fields[rule.name], field_lax = _field(rule)
        lax.append(field_lax)
    step = step.withColumns({f"_f_{n}": c for n, c in fields.items()})
    step = step.withColumns({f"_ok_{n}": c for n, c in valid.items()})
    fields = {n: F.col(f"_f_{n}") for n in fields}
    for n in valid:
        ok = ok & F.col(f"_ok_{n}")
    # The coin must be the topic's: exactly, or in a form normalize_coin maps to it.
    coin = fields["coin"]
    coin_ok = (coin == topic_coin) | (F.lower(F.trim(coin)) == topic_coin)
    ok = ok & coin_ok
    lax.append(F.col("_t_coin").eqNullSafe("STRING") & ~F.coalesce(coin_ok, F.lit(False)))
    fields["coin"] = topic_coin
    if kind == "tweets":
        ok = ok & _tweet_rules(fields)

    def record(values: dict[str, Column]) -> Column:
        # Arrays stay as parsed: Spark cannot cast away element nullability (none are null here).
        return F.struct(
            *[
                (
                    values[f.name]
                    if isinstance(f.dataType, ArrayType)
                    else values[f.name].cast(f.dataType)
                ).alias(f.name)
                for f in struct.fields
            ]
        )

    helpers = [c for c in step.columns if c not in df.columns]
    wire = F.col("_wire")
    judged = wire | F.coalesce(well_formed, F.lit(False)) & ~F.greatest(*lax)
    native = F.when(wire, record(wire_fields)).when(F.coalesce(ok, F.lit(False)), record(fields))
    return step.withColumns({out: native, f"{out}_judged": judged, f"{out}_wire": wire}).drop(
        *helpers
    )
