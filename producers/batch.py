"""What a source hands the runner: validated records plus the items it skipped, with reasons.

Skip reasons are a small fixed vocabulary because they become a metric label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from coinfeed.schemas import PriceTick, RecordError, Tweet

Record = PriceTick | Tweet

# The closed set of skip reasons (metric label values).
MISSING_FIELD: Final = "missing_field"
NULL_FIELD: Final = "null_field"
INVALID_FIELD: Final = "invalid_field"
MALFORMED_JSON: Final = "malformed_json"
NOT_UTF8: Final = "not_utf8"
HTML_BODY: Final = "html_body"
ERROR_BODY: Final = "error_body"
UNEXPECTED_SHAPE: Final = "unexpected_shape"
WRONG_COIN: Final = "wrong_coin"
SKIP_REASONS: Final = frozenset(
    {
        MISSING_FIELD,
        NULL_FIELD,
        INVALID_FIELD,
        MALFORMED_JSON,
        NOT_UTF8,
        HTML_BODY,
        ERROR_BODY,
        UNEXPECTED_SHAPE,
        WRONG_COIN,
    }
)


@dataclass(frozen=True)
class Skip:
    """One item left out: ``reason`` is a label from :data:`SKIP_REASONS`, ``detail`` is for the log."""

    reason: str
    detail: str


Header = tuple[str, bytes]


@dataclass
class Batch:
    """``headers``: empty, or one list of extra Kafka headers per record (a source's bookkeeping,
    e.g. which X search pagination a page belongs to, read back when resuming)."""

    records: list[Record] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    headers: list[list[Header]] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        if other.headers or self.headers:
            self.headers = self.headers_list() + other.headers_list()
        self.records.extend(other.records)
        self.skips.extend(other.skips)

    def headers_list(self) -> list[list[Header]]:
        return self.headers if self.headers else [[] for _ in self.records]

    def extra_headers(self, i: int) -> list[Header] | None:
        return self.headers[i] if self.headers else None


class BodyError(ValueError):
    """A response body that cannot be used at all (HTML page, truncated JSON, not UTF-8, ...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.skip = Skip(reason, detail)


def skip_for(err: RecordError, where: str = "") -> Skip:
    """Map a schema error to a skip reason; the detail names the field and the bad value."""
    if err.value == "<missing>":
        reason = MISSING_FIELD
    elif err.value is None:
        reason = NULL_FIELD
    else:
        reason = INVALID_FIELD
    prefix = f"{where}: " if where else ""
    return Skip(reason, f"{prefix}{err}")


def decode_json_body(body: bytes, content_type: str | None = None) -> Any:
    """Decode a JSON response body, or raise :class:`BodyError` saying why it is unusable."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(
            NOT_UTF8, f"response body is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    stripped = text.lstrip()
    ctype = (content_type or "").lower()
    if "html" in ctype or stripped[:1] == "<":
        first = stripped[:60].replace("\n", " ")
        raise BodyError(HTML_BODY, f"expected JSON, got an HTML page: {first!r}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyError(
            MALFORMED_JSON, f"malformed JSON ({exc.msg} at char {exc.pos} of {len(text)})"
        ) from None
