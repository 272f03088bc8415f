"""Record schemas: the one definition of what travels on the topics.

Producers validate against these models, the Spark job derives its ``StructType`` from
:func:`record_fields`, and tests build fixtures from them. Timestamps are UTC and timezone-aware;
JSON carries them as ISO-8601 with a ``Z`` suffix and millisecond precision.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
)

from coinfeed.topics import normalize_coin

SCHEMA_VERSION: Final = 1


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC); naive timestamps are ambiguous")
    return value.astimezone(UTC)


def format_ts(value: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``: the wire format of every timestamp."""
    return _require_utc(value).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


UtcDatetime = Annotated[
    datetime,
    AfterValidator(_require_utc),
    PlainSerializer(format_ts, return_type=str, when_used="json"),
]


class RecordError(ValueError):
    """A record that does not match its schema. ``field`` and ``value`` name the problem."""

    def __init__(self, model: str, field: str, value: Any, message: str) -> None:
        self.model, self.field, self.value, self.message = model, field, value, message
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{model}.{field}: {message} (got {shown})")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)
    kind: ClassVar[str]

    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("coin", mode="before", check_fields=False)
    @classmethod
    def _coin(cls, v: Any) -> Any:
        return normalize_coin(v) if isinstance(v, str) else v

    def to_json(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class PriceTick(_Record):
    """One price observation for a coin: an exchange ticker, a 1-minute candle close, or a replay."""

    kind: ClassVar[str] = "prices"

    coin: str = Field(description="Coin symbol, lower-case (btc).")
    source: str = Field(
        min_length=1,
        max_length=64,
        description="Where the price came from (binance, coingecko, replay).",
    )
    pair: str = Field(min_length=3, max_length=32, description="Market pair, e.g. BTC/USDT.")
    ts: UtcDatetime = Field(description="Observation time, UTC.")
    price: float = Field(
        gt=0, allow_inf_nan=False, description="Last/close price in the quote currency."
    )
    volume: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Base volume in the interval, when known.",
    )


class Tweet(_Record):
    """One post from the X API v2 (or a replay of one), flattened with its author's public metrics."""

    kind: ClassVar[str] = "tweets"

    coin: str = Field(description="Coin symbol the feed collected this tweet for.")
    id: str = Field(
        pattern=r"^[0-9]{1,20}$",
        description="Tweet id (a decimal string, as the X API returns it).",
    )
    created_at: UtcDatetime = Field(description="When the tweet was posted, UTC.")
    text: str = Field(min_length=1, max_length=4000, description="Tweet text.")
    lang: str | None = Field(
        default=None, max_length=8, description="BCP-47 language tag from the X API."
    )
    author_id: str = Field(pattern=r"^[0-9]{1,20}$", description="Author's user id.")
    author_username: str | None = Field(default=None, max_length=64, description="Author's handle.")
    author_followers: int = Field(
        default=0, ge=0, description="Author's follower count at collection time."
    )
    like_count: int = Field(default=0, ge=0)
    retweet_count: int = Field(default=0, ge=0)
    reply_count: int = Field(default=0, ge=0)
    quote_count: int = Field(default=0, ge=0)
    hashtags: list[str] = Field(
        default_factory=list, description="Hashtags without '#', as written."
    )
    cashtags: list[str] = Field(
        default_factory=list, description="Cashtags without '$', upper-case."
    )
    source: str = Field(
        default="x-api", min_length=1, max_length=64, description="x-api or replay."
    )


M = TypeVar("M", bound=_Record)

RECORD_MODELS: Final[dict[str, type[_Record]]] = {"prices": PriceTick, "tweets": Tweet}


def _first_error(model: type[BaseModel], exc: ValidationError) -> RecordError:
    err = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "<record>"
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    if err.get("type") == "missing":
        msg = "required field is missing"
    value = "<missing>" if err.get("type") == "missing" else err.get("input")
    return RecordError(model.__name__, field, value, msg)


def validate_record(model: type[M], data: Any) -> M:
    """Validate a mapping against a schema; raises :class:`RecordError` naming field and value."""
    if not isinstance(data, dict):
        raise RecordError(model.__name__, "<record>", data, "expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _first_error(model, exc) from None


def decode_record(model: type[M], raw: bytes | str) -> M:
    """Decode one JSON record from the wire (bytes must be UTF-8)."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(
                model.__name__, "<record>", raw[:40], f"not UTF-8 ({exc.reason})"
            ) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RecordError(
            model.__name__, "<record>", raw[:40], f"malformed JSON: {exc.msg}"
        ) from None
    return validate_record(model, data)


@dataclass(frozen=True)
class FieldSpec:
    """A schema field in engine-neutral terms (the Spark job maps these to Spark types)."""

    name: str
    type: Literal["string", "long", "double", "timestamp", "array<string>"]
    nullable: bool


def _field_type(annotation: Any) -> tuple[str, bool]:
    nullable = False
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) != len(get_args(annotation))
        annotation = args[0]
        origin = get_origin(annotation)
    if origin is Annotated:
        annotation = get_args(annotation)[0]
        origin = get_origin(annotation)
    if origin is Literal:
        return "long", nullable
    if origin is list:
        return "array<string>", nullable
    mapping = {str: "string", int: "long", float: "double", datetime: "timestamp"}
    try:
        return mapping[annotation], nullable
    except KeyError:
        raise TypeError(f"no engine type for {annotation!r}") from None


def record_fields(model: type[_Record]) -> list[FieldSpec]:
    """The model's fields, in declaration order, as :class:`FieldSpec`."""
    specs = []
    for name, info in model.model_fields.items():
        kind, nullable = _field_type(info.annotation)
        specs.append(FieldSpec(name, kind, nullable or not info.is_required()))  # type: ignore[arg-type]
    return specs
