"""Pure Bluesky Jetstream logic: one frame -> what it is, a matching post -> a Tweet record.

Jetstream (``/subscribe``, its v1 JSON wire) sends one JSON object per text frame::

    {"did": "did:plc:...", "time_us": 1725911162329308, "kind": "commit",
     "commit": {"rev": "3l3qo2vutsw2b", "operation": "create", "collection": "app.bsky.feed.post",
                "rkey": "3l3qo2vuowo2b", "cid": "bafy...",
                "record": {"$type": "app.bsky.feed.post", "text": "...", "createdAt": "...",
                           "langs": ["en"], "facets": [...], "tags": [...]}}}
    {"did": ..., "time_us": ..., "kind": "identity", "identity": {"did", "handle", "seq", "time"}}
    {"did": ..., "time_us": ..., "kind": "account", "account": {"active", "did", "seq", "time",
                                                                 "status"?}}

``time_us`` is Jetstream's own clock (unix microseconds) and the ``cursor`` to resume from.
Jetstream has no text filter: keywords, cashtags and languages are applied here. What happens to
each kind of event:

- commit create/update of ``app.bsky.feed.post``: a post; sent when it matches (an update is a
  new observation of the same id: the hourly job keeps the newest);
- commit delete: counted only: the hourly figures describe what was posted in an hour;
- identity: remembered (DID -> handle, bounded) so later posts carry the author's handle;
- account: an inactive account's handle is forgotten;
- anything else (other collections, unknown kinds): counted as ignored.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from coinfeed.producers.batch import (
    INVALID_FIELD,
    MALFORMED_JSON,
    MISSING_FIELD,
    NOT_UTF8,
    UNEXPECTED_SHAPE,
    Header,
    Skip,
    skip_for,
)
from coinfeed.schemas import RecordError, Tweet, validate_record

POST_COLLECTION: Final = "app.bsky.feed.post"
SOURCE: Final = "bluesky"
TAG_FEATURE: Final = "app.bsky.richtext.facet#tag"
HEADER_REV: Final = "bluesky_rev"  # the commit's repo revision: with the id, what a duplicate is

# What a frame was (metric label ``event``).
COMMIT_CREATE: Final = "commit_create"
COMMIT_UPDATE: Final = "commit_update"
COMMIT_DELETE: Final = "commit_delete"
IDENTITY: Final = "identity"
ACCOUNT: Final = "account"
IGNORED: Final = "ignored"
MALFORMED: Final = "malformed"
EVENTS: Final = (
    COMMIT_CREATE,
    COMMIT_UPDATE,
    COMMIT_DELETE,
    IDENTITY,
    ACCOUNT,
    IGNORED,
    MALFORMED,
)

# Why a post seen was not sent (metric label ``reason``, next to the malformed-frame reasons).
NO_MATCH: Final = "no_match"
LANGUAGE: Final = "language"
DUPLICATE: Final = "duplicate"

_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{1,9})(?![\w])")


@dataclass(frozen=True)
class Matcher:
    """Our side of the filter: a post matches when its text contains any keyword (a word or
    phrase, case-insensitive, whole words only, so ``bitcoin`` matches ``#Bitcoin`` but not
    ``bitcoiners``) or cashtag (``$BTC``), and is in one of ``languages`` (empty: any)."""

    pattern: re.Pattern[str]
    languages: frozenset[str]

    @classmethod
    def build(
        cls, keywords: Sequence[str], cashtags: Sequence[str], languages: Sequence[str]
    ) -> Matcher:
        terms: list[str] = []
        for kw in keywords:
            kw = kw.strip()
            if not kw:
                continue
            if kw.startswith("$"):
                terms.append(r"\$" + re.escape(kw[1:]))
            else:
                terms.append(r"\s+".join(re.escape(w) for w in kw.split()))
        terms += [r"\$" + re.escape(c.strip().lstrip("$")) for c in cashtags if c.strip("$ ")]
        if not terms:
            raise ValueError("the Bluesky filter needs at least one keyword or cashtag")
        alternatives = "|".join(sorted(set(terms), key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w$])(?:{alternatives})(?!\w)", re.IGNORECASE)
        langs = frozenset(_primary(lang) for lang in languages if lang.strip())
        return cls(pattern, langs)

    def text_matches(self, text: str) -> bool:
        return self.pattern.search(text) is not None

    def language_ok(self, langs: Any) -> bool:
        """A post declares up to 3 languages (``langs``); one must be wanted. A post that
        declares none is dropped when languages are configured: we cannot tell what it is."""
        if not self.languages:
            return True
        if not isinstance(langs, list):
            return False
        return any(isinstance(lang, str) and _primary(lang) in self.languages for lang in langs)


def _primary(lang: str) -> str:
    return lang.strip().lower().split("-", 1)[0]


class Handles:
    """DID -> handle from identity events, the newest ``limit`` only (bounded memory)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._map: OrderedDict[str, str] = OrderedDict()

    def get(self, did: str) -> str | None:
        return self._map.get(did)

    def set(self, did: str, handle: str | None) -> None:
        if not handle or handle == "handle.invalid":
            self._map.pop(did, None)
            return
        self._map[did] = handle
        self._map.move_to_end(did)
        while len(self._map) > self.limit:
            self._map.popitem(last=False)

    def forget(self, did: str) -> None:
        self._map.pop(did, None)

    def __len__(self) -> int:
        return len(self._map)


@dataclass
class Outcome:
    """What one frame was. ``record`` is set for a matching post; ``drop`` names why a post was
    not sent; ``skip`` why the frame is malformed."""

    event: str
    time_us: int | None = None
    record: Tweet | None = None
    rev: str | None = None
    drop: str | None = None
    skip: Skip | None = None

    @property
    def headers(self) -> list[Header]:
        return [(HEADER_REV, self.rev.encode())] if self.rev else []


def post_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{POST_COLLECTION}/{rkey}"


def dedup_key(post_id: str, rev: str | None) -> str:
    """A replayed event repeats its commit's (id, rev); an update of the post has a new rev."""
    return f"{post_id}#{rev or ''}"


def _malformed(reason: str, detail: str, time_us: int | None = None) -> Outcome:
    return Outcome(MALFORMED, time_us=time_us, skip=Skip(reason, detail[:300]))


def decode_frame(raw: bytes | str) -> tuple[dict[str, Any] | None, Outcome | None]:
    """The frame's JSON object, or an Outcome saying why it is malformed."""
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as exc:
        return None, _malformed(NOT_UTF8, f"frame is not UTF-8 ({exc.reason} at {exc.start})")
    except json.JSONDecodeError as exc:
        head = raw[:80] if isinstance(raw, str) else raw[:80].decode("utf-8", "replace")
        return None, _malformed(
            MALFORMED_JSON, f"malformed JSON ({exc.msg} at char {exc.pos}): {head!r}"
        )
    if not isinstance(data, dict):
        return None, _malformed(UNEXPECTED_SHAPE, f"frame is {type(data).__name__}, not an object")
    return data, None


def classify(coin: str, data: dict[str, Any], matcher: Matcher, handles: Handles) -> Outcome:
    """One decoded frame -> Outcome (pure but for the handle cache it updates)."""
    time_us = data.get("time_us")
    if "time_us" not in data:
        return _malformed(MISSING_FIELD, "frame without time_us")
    if isinstance(time_us, bool) or not isinstance(time_us, int) or time_us <= 0:
        return _malformed(INVALID_FIELD, f"time_us is {time_us!r}, expected microseconds")
    did = data.get("did")
    if not isinstance(did, str) or not did.startswith("did:"):
        return _malformed(INVALID_FIELD if did else MISSING_FIELD, f"did is {did!r}", time_us)
    kind = data.get("kind")
    if kind == "commit":
        return _commit(coin, did, time_us, data.get("commit"), matcher, handles)
    if kind == "identity":
        identity = data.get("identity")
        if not isinstance(identity, dict):
            return _malformed(
                UNEXPECTED_SHAPE, "identity event without an identity object", time_us
            )
        handle = identity.get("handle")
        handles.set(did, handle if isinstance(handle, str) else None)
        return Outcome(IDENTITY, time_us)
    if kind == "account":
        account = data.get("account")
        if not isinstance(account, dict) or not isinstance(account.get("active"), bool):
            return _malformed(UNEXPECTED_SHAPE, "account event without account.active", time_us)
        if not account["active"]:
            handles.forget(did)
        return Outcome(ACCOUNT, time_us)
    if not isinstance(kind, str):
        return _malformed(
            MISSING_FIELD if kind is None else INVALID_FIELD, f"kind is {kind!r}", time_us
        )
    return Outcome(IGNORED, time_us)


def _commit(
    coin: str,
    did: str,
    time_us: int,
    commit: Any,
    matcher: Matcher,
    handles: Handles,
) -> Outcome:
    if not isinstance(commit, dict):
        return _malformed(UNEXPECTED_SHAPE, "commit event without a commit object", time_us)
    op, collection, rkey = commit.get("operation"), commit.get("collection"), commit.get("rkey")
    if op not in ("create", "update", "delete"):
        return _malformed(INVALID_FIELD, f"commit.operation is {op!r}", time_us)
    if collection != POST_COLLECTION:
        return Outcome(IGNORED, time_us)  # not asked for (wantedCollections): ignore
    if not isinstance(rkey, str) or not rkey:
        return _malformed(INVALID_FIELD, f"commit.rkey is {rkey!r}", time_us)
    if op == "delete":
        return Outcome(COMMIT_DELETE, time_us)
    event = COMMIT_CREATE if op == "create" else COMMIT_UPDATE
    rev = commit.get("rev") if isinstance(commit.get("rev"), str) else None
    record = commit.get("record")
    if not isinstance(record, dict):
        return _malformed(MISSING_FIELD, f"{op} of {post_uri(did, rkey)} without a record", time_us)
    text = record.get("text")
    if not isinstance(text, str):
        return _malformed(INVALID_FIELD, f"{post_uri(did, rkey)}: text is {text!r}", time_us)
    if not matcher.text_matches(text):
        return Outcome(event, time_us, rev=rev, drop=NO_MATCH)
    if not matcher.language_ok(record.get("langs")):
        return Outcome(event, time_us, rev=rev, drop=LANGUAGE)
    try:
        tweet = post_record(coin, did, rkey, time_us, record, handles.get(did))
    except RecordError as err:
        return Outcome(MALFORMED, time_us, skip=skip_for(err, post_uri(did, rkey)))
    return Outcome(event, time_us, record=tweet, rev=rev)


def _hashtags(record: dict[str, Any]) -> list[str]:
    tags: list[str] = []
    facets = record.get("facets")
    for facet in facets if isinstance(facets, list) else []:
        features = facet.get("features") if isinstance(facet, dict) else None
        for feature in features if isinstance(features, list) else []:
            if (
                isinstance(feature, dict)
                and feature.get("$type") == TAG_FEATURE
                and isinstance(feature.get("tag"), str)
            ):
                tags.append(feature["tag"])
    extra = record.get("tags")
    tags += [t for t in (extra if isinstance(extra, list) else []) if isinstance(t, str)]
    return list(dict.fromkeys(t.lstrip("#") for t in tags if t.lstrip("#")))


def cashtags(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(1).upper() for m in _CASHTAG.finditer(text)))


def time_us_datetime(time_us: int) -> datetime:
    return datetime.fromtimestamp(time_us / 1_000_000, UTC)


def post_record(
    coin: str,
    did: str,
    rkey: str,
    time_us: int,
    record: dict[str, Any],
    handle: str | None,
) -> Tweet:
    """A post record (``commit.record``) -> Tweet (platform bluesky), or RecordError."""
    langs = record.get("langs")
    lang = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None
    text = record.get("text")
    data: dict[str, Any] = {
        "platform": "bluesky",
        "coin": coin,
        "id": post_uri(did, rkey),
        "text": text,
        "lang": lang,
        "author_id": did,
        "author_username": handle,
        "hashtags": _hashtags(record),
        "cashtags": cashtags(text) if isinstance(text, str) else [],
        "source": SOURCE,
        "observed_at": time_us_datetime(time_us),
    }
    if "createdAt" in record:
        data["created_at"] = record["createdAt"]
    try:
        return validate_record(Tweet, data)
    except RecordError as err:
        if err.field == "created_at":  # name the field as Bluesky spells it
            raise RecordError("Tweet", "createdAt", err.value, err.message) from None
        raise
