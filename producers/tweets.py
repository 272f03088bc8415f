"""Pure X API v2 logic: the search query for a feed, and response bodies -> Tweet records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from coinfeed.producers.batch import (
    ERROR_BODY,
    UNEXPECTED_SHAPE,
    Batch,
    BodyError,
    Skip,
    decode_json_body,
    skip_for,
)
from coinfeed.schemas import RecordError, Tweet, validate_record

# What every request asks for: the fields the Tweet schema needs, and the author expansion.
TWEET_FIELDS: Final = "created_at,lang,public_metrics,entities,author_id"
EXPANSIONS: Final = "author_id"
USER_FIELDS: Final = "username,public_metrics"
# Basic tier allows 512 characters of query for recent search.
MAX_QUERY_LENGTH: Final = 512


def build_query(
    keywords: list[str],
    cashtags: list[str],
    languages: list[str],
    exclude_retweets: bool = True,
) -> str:
    """``(kw1 OR "two words" OR $BTC) (lang:en OR lang:es) -is:retweet``; ValueError if empty/too long."""
    terms: list[str] = []
    for kw in keywords:
        kw = kw.strip()
        if kw:
            terms.append(f'"{kw}"' if " " in kw else kw)
    terms += [f"${c.strip().lstrip('$').upper()}" for c in cashtags if c.strip().lstrip("$")]
    if not terms:
        raise ValueError("the tweet query needs at least one keyword or cashtag")
    parts = [terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"]
    langs = [lang.strip() for lang in languages if lang.strip()]
    if langs:
        clauses = [f"lang:{lang}" for lang in langs]
        parts.append(clauses[0] if len(clauses) == 1 else "(" + " OR ".join(clauses) + ")")
    if exclude_retweets:
        parts.append("-is:retweet")
    query = " ".join(parts)
    if len(query) > MAX_QUERY_LENGTH:
        raise ValueError(
            f"tweet query is {len(query)} characters, the X API allows {MAX_QUERY_LENGTH}: "
            "use fewer keywords"
        )
    return query


@dataclass
class SearchPage:
    batch: Batch = field(default_factory=Batch)
    next_token: str | None = None
    newest_id: str | None = None


def _tags(entities: Any, kind: str, upper: bool) -> list[str]:
    if not isinstance(entities, dict) or not isinstance(entities.get(kind), list):
        return []
    out = []
    for item in entities[kind]:
        if isinstance(item, dict) and isinstance(item.get("tag"), str):
            out.append(item["tag"].upper() if upper else item["tag"])
    return out


def tweet_record(coin: str, item: Any, users: dict[str, dict[str, Any]], source: str) -> Tweet:
    """One element of ``data`` (with its author from ``includes.users``) -> Tweet, or RecordError."""
    if not isinstance(item, dict):
        raise RecordError("Tweet", "<record>", item, "expected a JSON object")
    metrics = item.get("public_metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    author_id = item.get("author_id", "<missing>")
    user = users.get(author_id) if isinstance(author_id, str) else None
    user_metrics = (user or {}).get("public_metrics")
    followers = user_metrics.get("followers_count", 0) if isinstance(user_metrics, dict) else 0
    data: dict[str, Any] = {
        "coin": coin,
        "text": item.get("text"),
        "lang": item.get("lang"),
        "author_username": (user or {}).get("username"),
        "author_followers": followers,
        "like_count": metrics.get("like_count", 0),
        "retweet_count": metrics.get("retweet_count", 0),
        "reply_count": metrics.get("reply_count", 0),
        "quote_count": metrics.get("quote_count", 0),
        "hashtags": _tags(item.get("entities"), "hashtags", upper=False),
        "cashtags": _tags(item.get("entities"), "cashtags", upper=True),
        "source": source,
    }
    # Required fields pass through only when present, so a missing one is reported as missing.
    for key in ("id", "created_at", "author_id"):
        if key in item:
            data[key] = item[key]
    return validate_record(Tweet, data)


def _users(includes: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(includes, dict) or not isinstance(includes.get("users"), list):
        return {}
    return {
        u["id"]: u
        for u in includes["users"]
        if isinstance(u, dict) and isinstance(u.get("id"), str)
    }


def parse_search_page(
    coin: str, body: bytes, content_type: str | None = None, source: str = "x-api"
) -> SearchPage:
    """One page of ``GET /2/tweets/search/recent``.

    Raises :class:`~coinfeed.producers.batch.BodyError` when the body as a whole is unusable
    (then the page's pagination cannot be trusted either). Bad single tweets become skips.
    """
    data = decode_json_body(body, content_type)
    if not isinstance(data, dict):
        raise BodyError(UNEXPECTED_SHAPE, f"expected a JSON object, got {type(data).__name__}")
    meta = data.get("meta")
    if "data" not in data and not isinstance(meta, dict):
        # e.g. {"errors":[...]} or {"title":..,"detail":..} with status 200
        detail = data.get("errors") or data.get("detail") or data.get("title") or data
        raise BodyError(ERROR_BODY, f"error body: {str(detail)[:160]}")
    meta = meta if isinstance(meta, dict) else {}
    items = data.get("data", [])
    if not isinstance(items, list):
        raise BodyError(UNEXPECTED_SHAPE, f"data is {type(items).__name__}, expected a list")
    users = _users(data.get("includes"))
    page = SearchPage(
        next_token=meta.get("next_token") if isinstance(meta.get("next_token"), str) else None,
        newest_id=meta.get("newest_id") if isinstance(meta.get("newest_id"), str) else None,
    )
    for i, item in enumerate(items):
        try:
            page.batch.records.append(tweet_record(coin, item, users, source))
        except RecordError as err:
            tid = item.get("id") if isinstance(item, dict) else None
            page.batch.skips.append(skip_for(err, f"data[{i}] id={tid}"))
    ids = [
        int(item["id"])
        for item in items
        if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"].isdigit()
    ]
    if ids and (page.newest_id is None or not page.newest_id.isdigit()):
        page.newest_id = str(max(ids))
    return page


def parse_stream_line(coin: str, line: bytes, source: str = "x-api") -> Batch:
    """One line of the filtered stream (``GET /2/tweets/search/stream``); keep-alive lines are empty."""
    if not line.strip():
        return Batch()
    try:
        data = decode_json_body(line)
    except BodyError as err:
        return Batch(skips=[err.skip])
    if not isinstance(data, dict) or "data" not in data:
        return Batch(skips=[Skip(ERROR_BODY, f"stream message without data: {str(data)[:160]}")])
    try:
        return Batch(
            records=[tweet_record(coin, data["data"], _users(data.get("includes")), source)]
        )
    except RecordError as err:
        return Batch(skips=[skip_for(err, "stream")])


def max_id(ids: list[str]) -> str | None:
    """Tweet ids are decimal strings; compare them as numbers."""
    nums = [int(i) for i in ids if i.isdigit()]
    return str(max(nums)) if nums else None
