"""Record schemas: the one definition of what travels on the topics.

Producers validate against these models, the Spark job derives its ``StructType`` from
:func:`record_fields`, and tests build fixtures from them. Timestamps are UTC and timezone-aware;
JSON carries them as ISO-8601 with a ``Z`` suffix and millisecond precision.

Versions (``schema_version`` on every record, per kind in :data:`SCHEMA_VERSIONS`):

- ``PriceTick`` 1.
- ``Tweet`` 2: a social post from any platform on the feed's social topic, with ``platform``
  (``x`` | ``bluesky``), an id unique across platforms (an X id is a decimal string, a Bluesky id
  the post's ``at://`` URI) and the author id as a string (X user id, Bluesky DID); ``observed_at``
  is when the platform's stream delivered it (Jetstream's ``time_us``), used to resume. Version 1
  records (X only, written before Bluesky existed) still validate: they read as ``platform: x``.
"""

from __future__ import annotations

import json
import re
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
    model_validator,
)

from coinfeed.topics import normalize_coin

# The version each producer writes, per record kind. Readers accept every version listed in the
# model's ``schema_version`` Literal.
SCHEMA_VERSIONS: Final[dict[str, int]] = {"prices": 1, "tweets": 2}

# The largest integer a record may carry: the lake stores integers as 64-bit (Spark's LongType,
# Parquet INT64), so a bigger one could never be written; rejected where it is read, with a reason.
INT64_MAX: Final = 2**63 - 1

# Social platforms a post can come from; the hourly job reports each one (columns derived from this).
PLATFORMS: Final = ("x", "bluesky")
Platform = Literal["x", "bluesky"]
X_ID_PATTERN: Final = r"^[0-9]{1,20}$"
# A Bluesky post's AT URI: at://<DID>/app.bsky.feed.post/<record key>. DID methods in use are
# did:plc (24 base32 characters) and did:web (a host name); record keys are TIDs (13 characters).
BLUESKY_DID_PATTERN: Final = r"^did:[a-z]+:[a-zA-Z0-9._:%-]{1,256}$"
BLUESKY_URI_PATTERN: Final = (
    r"^at://(did:[a-z]+:[a-zA-Z0-9._:%-]{1,256})/app\.bsky\.feed\.post/([a-zA-Z0-9._~:-]{1,512})$"
)


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC); naive timestamps are ambiguous")
    return value.astimezone(UTC)


def format_ts(value: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``: the wire format of every timestamp. The year
    always has four digits (``strftime("%Y")`` writes year 1 as ``1`` here, which no ISO-8601
    reader, pydantic or Spark, takes back)."""
    v = _require_utc(value)
    return f"{v.year:04d}-{v:%m-%dT%H:%M:%S}.{v.microsecond // 1000:03d}Z"


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

    schema_version: Literal[1] = 1
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
    """One social post (X, or Bluesky through Jetstream; or a replay of one), flattened with what
    the platform says about its author. Kept under its first name: the topic is ``tweets``."""

    kind: ClassVar[str] = "tweets"

    schema_version: Literal[1, 2] = 2
    platform: Platform = Field(
        default="x", description="Where the post was made: x or bluesky (version 1: always x)."
    )
    coin: str = Field(description="Coin symbol the feed collected this post for.")
    id: str = Field(
        min_length=1,
        max_length=900,
        description="Post id, unique across platforms: X a decimal string, Bluesky the at:// URI.",
    )
    created_at: UtcDatetime = Field(
        description="When the post was made, UTC (Bluesky: the client-declared createdAt)."
    )
    text: str = Field(min_length=1, max_length=4000, description="Post text.")
    lang: str | None = Field(
        default=None,
        max_length=35,
        description="BCP-47 language tag (Bluesky: the first of langs).",
    )
    author_id: str = Field(
        min_length=1, max_length=300, description="Author id: X user id, or Bluesky DID."
    )
    author_username: str | None = Field(
        default=None, max_length=253, description="Author's handle, when known."
    )
    author_followers: int = Field(
        default=0,
        ge=0,
        le=INT64_MAX,
        description="Author's follower count at collection time (0 if unknown).",
    )
    like_count: int = Field(default=0, ge=0, le=INT64_MAX)
    retweet_count: int = Field(default=0, ge=0, le=INT64_MAX, description="Reposts.")
    reply_count: int = Field(default=0, ge=0, le=INT64_MAX)
    quote_count: int = Field(default=0, ge=0, le=INT64_MAX)
    hashtags: list[str] = Field(
        default_factory=list, description="Hashtags without '#', as written."
    )
    cashtags: list[str] = Field(
        default_factory=list, description="Cashtags without '$', upper-case."
    )
    source: str = Field(
        default="x-api",
        min_length=1,
        max_length=64,
        description="Producer source: x-api, bluesky, replay, synthetic.",
    )
    observed_at: UtcDatetime | None = Field(
        default=None,
        description="When the platform's stream delivered the post (Jetstream time_us), UTC.",
    )

    @model_validator(mode="after")
    def _platform_ids(self) -> Tweet:
        # Field errors name the field; these raise ValueError, reported on the record.
        if self.schema_version == 1 and self.platform != "x":
            raise _CrossFieldError(
                "platform", self.platform, "schema_version 1 records are X posts"
            )
        if self.schema_version == 1 and self.observed_at is not None:
            raise _CrossFieldError(
                "observed_at", format_ts(self.observed_at), "schema_version 1 has no observed_at"
            )
        if self.platform == "x":
            if not re.match(X_ID_PATTERN, self.id):
                raise _CrossFieldError("id", self.id, f"an X post id must match {X_ID_PATTERN}")
            if not re.match(X_ID_PATTERN, self.author_id):
                raise _CrossFieldError(
                    "author_id", self.author_id, f"an X user id must match {X_ID_PATTERN}"
                )
        else:
            m = re.match(BLUESKY_URI_PATTERN, self.id)
            if m is None:
                raise _CrossFieldError(
                    "id", self.id, "a Bluesky post id must be at://<did>/app.bsky.feed.post/<rkey>"
                )
            if not re.match(BLUESKY_DID_PATTERN, self.author_id):
                raise _CrossFieldError("author_id", self.author_id, "a Bluesky author id is a DID")
            if m.group(1) != self.author_id:
                raise _CrossFieldError(
                    "author_id", self.author_id, "must be the DID in the post's at:// URI"
                )
        return self


class _CrossFieldError(ValueError):
    """A cross-field check that fails on one field: reported with that field's name and value."""

    def __init__(self, field: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.field, self.value, self.message = field, value, message


M = TypeVar("M", bound=_Record)

RECORD_MODELS: Final[dict[str, type[_Record]]] = {"prices": PriceTick, "tweets": Tweet}


def _first_error(model: type[BaseModel], exc: ValidationError) -> RecordError:
    err = exc.errors(include_url=False)[0]
    problem = (err.get("ctx") or {}).get("error")
    if isinstance(problem, _CrossFieldError):
        return RecordError(model.__name__, problem.field, problem.value, problem.message)
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
        values = get_args(annotation)
        return ("string" if all(isinstance(v, str) for v in values) else "long"), nullable
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
