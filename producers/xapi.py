"""X API v2 through tweepy: recent-search polling with ``since_id``, page by page.

Pointing tweepy at another host: tweepy.Client hard-codes ``https://api.twitter.com`` but sends
every request through its public ``session`` (a ``requests.Session``). A requests *transport
adapter* mounted on that host prefix is the extension point requests documents for changing how
requests are sent; ours rewrites the scheme and host to ``COINFEED_X_API_BASE_URL``. Nothing in
tweepy or requests is patched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from coinfeed.producers import resume, tweets
from coinfeed.producers.batch import Batch, BodyError, decode_json_body
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.retry import RetryPolicy, parse_rate_limit, rate_limit_wait
from coinfeed.producers.sources import GEO_BLOCKED, Sleep, _Polling, _short

log = logging.getLogger("coinfeed.producers.xapi")

TWEEPY_HOST: Final = "https://api.twitter.com"
DEFAULT_BASE_URL: Final = "https://api.x.com"


class RebaseAdapter(HTTPAdapter):
    """Transport adapter that sends requests for one host to another base URL (same path/query)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"invalid X API base URL {base_url!r}: expected http(s)://host[:port]")
        self.scheme, self.netloc = parts.scheme, parts.netloc

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self.scheme, self.netloc, parts.path, parts.query, ""))
        return super().send(request, **kwargs)


def make_client(bearer_token: str, base_url: str = DEFAULT_BASE_URL) -> Any:
    """A tweepy.Client returning raw ``requests.Response`` (we parse bodies ourselves)."""
    import tweepy

    client = tweepy.Client(
        bearer_token=bearer_token, return_type=requests.Response, wait_on_rate_limit=False
    )
    if base_url.rstrip("/") != TWEEPY_HOST:
        client.session.mount(TWEEPY_HOST + "/", RebaseAdapter(base_url))
    # tweepy logs request headers (the bearer token) at DEBUG: never let that through.
    logging.getLogger("tweepy").setLevel(logging.INFO)
    return client


def x_time(when: float) -> str:
    """The X API's ``start_time`` format: ``YYYY-MM-DDTHH:mm:ssZ`` (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


# Recent search covers the last 7 days; start_time must lie inside (with a little slack).
RECENT_WINDOW_S: Final = 7 * 86400 - 300


@dataclass
class _Pagination:
    """One search from a lower bound (``since_id`` or ``start_time``) to now, page by page."""

    since_id: str | None
    start_time: str | None
    next_token: str | None = None
    newest_id: str | None = None
    pages: int = 0


class XRecentSearchSource(_Polling):
    """``GET /2/tweets/search/recent``, one page per ``poll()``, sent as it arrives.

    A search runs from the last complete one's newest id (``since_id``); the very first (an empty
    topic) from ``lookback`` before now (``start_time``), never the whole 7-day window. Pages come
    newest first; each is handed on at once (records oldest first within it), tagged with its
    search (see ``resume.py``), so memory holds one page. At most ``max_pages`` pages per poll
    interval: a search with more continues with its ``next_token`` at the next poll. ``since_id``
    advances only when the last page arrived, so a failure part-way repeats, never skips.
    """

    name = "x-api"

    def __init__(
        self,
        client: Any,
        coin: str,
        query: str,
        interval: float,
        metrics: ProducerMetrics,
        policy: RetryPolicy,
        sleep: Sleep,
        since_id: str | None = None,
        max_results: int = 100,
        lookback_s: float = 3600.0,
        max_pages: int = 10,
        start_time: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval, metrics)
        self.client, self.coin, self.query = client, coin, query
        self.policy, self.sleep = policy, sleep
        self.since_id = since_id
        self.start_time = start_time  # a cut-short first search to repeat (from resume)
        self.max_results = max(10, min(100, max_results))
        self.lookback_s = lookback_s
        self.max_pages = max(1, max_pages)
        self.clock = clock
        self._search: _Pagination | None = None
        self._more_now = False
        self._cycle_pages = 0
        self._not_before = 0.0  # wall clock: no request before the rate-limit window resets

    def _params(self, search: _Pagination) -> dict[str, Any]:
        params: dict[str, Any] = {
            "max_results": self.max_results,
            "tweet_fields": tweets.TWEET_FIELDS,
            "expansions": tweets.EXPANSIONS,
            "user_fields": tweets.USER_FIELDS,
        }
        if search.since_id:
            params["since_id"] = search.since_id
        elif search.start_time:
            params["start_time"] = search.start_time
        if search.next_token:
            params["next_token"] = search.next_token
        return params

    def _new_search(self) -> _Pagination:
        if self.since_id:
            return _Pagination(self.since_id, None)
        now = self.clock()
        earliest = x_time(now - RECENT_WINDOW_S)
        start = self.start_time or x_time(now - self.lookback_s)
        start = max(start, earliest)  # same format: string order is time order
        if not self.start_time:
            log.info(
                "no X posts in the topic yet: searching from the lookback, not the whole week",
                extra={"start_time": start, "lookback_s": self.lookback_s},
            )
        return _Pagination(None, start)

    def _get(self, params: dict[str, Any]) -> requests.Response | None:
        """One page, retrying 429 (until the reset) and 5xx/network (backoff); None = give up."""
        import tweepy

        for attempt in range(self.policy.max_attempts):
            wait = self._not_before - time.time()
            if wait > 0:
                log.info("waiting for the rate-limit reset", extra={"wait_s": round(wait, 1)})
                if not self.sleep(min(wait, self.policy.max_wait)):
                    return None
            try:
                resp: requests.Response = self.client.search_recent_tweets(self.query, **params)
            except tweepy.TooManyRequests as exc:
                self.metrics.request("rate_limited")
                self._note_rate_limit(exc.response, limited=True)
                continue
            except tweepy.TwitterServerError as exc:
                self.metrics.request("server_error")
                delay = self.policy.backoff(attempt)
                log.warning(
                    "X API server error, retrying",
                    extra={"status": exc.response.status_code, "retry_in_s": round(delay, 2)},
                )
                if not self.sleep(delay):
                    return None
                continue
            except tweepy.HTTPException as exc:  # 400/401/403/404: retrying will not help now
                if exc.response.status_code == 451:  # refused for this location: never helps
                    self.metrics.request(GEO_BLOCKED)
                    self.refused = (
                        "X API answers HTTP 451 (unavailable for legal reasons): it refuses "
                        "requests from this address's location; choose another social source, "
                        "e.g. tweets.source bluesky"
                    )
                    log.error(self.refused, extra={"status": 451, "error": _short(exc)})
                    return None
                self.metrics.request("client_error")
                log.error(
                    "X API refused the request",
                    extra={"status": exc.response.status_code, "error": _short(exc)},
                )
                if self._search is not None and self._search.next_token:
                    # e.g. an expired next_token: search the same range again from its bound.
                    self._search = None
                return None
            except requests.RequestException as exc:
                self.metrics.request("network_error")
                delay = self.policy.backoff(attempt)
                log.warning(
                    "X API unreachable, retrying",
                    extra={"error": _short(exc), "retry_in_s": round(delay, 2)},
                )
                if not self.sleep(delay):
                    return None
                continue
            self._note_rate_limit(resp, limited=False)
            return resp
        log.error(
            "X API request failed after retries", extra={"attempts": self.policy.max_attempts}
        )
        return None

    def _note_rate_limit(self, resp: requests.Response, limited: bool) -> None:
        rl = parse_rate_limit(resp.headers)
        self.metrics.rate_limit(rl.remaining, rl.reset)
        now = time.time()
        wait = rate_limit_wait(rl, now, self.policy, limited)
        if limited and rl.reset is None:
            wait = self.policy.backoff(3)
        if wait > 0:
            self._not_before = max(self._not_before, now + wait)

    def next_wait(self) -> float:
        if self._more_now:
            return 0.0  # the current search has pages left inside this poll's page budget
        return super().next_wait()

    def poll(self) -> Batch:
        if not self._more_now:
            self._last_start = time.monotonic()  # a poll interval starts
            self._cycle_pages = 0
        self._more_now = False
        if self._search is None:
            self._search = self._new_search()
        search = self._search
        resp = self._get(self._params(search))
        if resp is None:
            self._ok = False
            self._reason = "X API request failed (see the producer log)"
            return Batch()  # nothing sent for this page, bounds unchanged: asked again next poll
        try:
            page = tweets.parse_search_page(
                self.coin, resp.content, resp.headers.get("content-type")
            )
        except BodyError as err:
            self.metrics.request("bad_body")
            self._ok = False
            self._reason = f"X API body unusable ({err.skip.reason})"
            log.warning("X API body unusable", extra={"reason": err.skip.reason})
            return Batch(skips=[err.skip])
        self.metrics.request("ok")
        self._ok = True
        if search.pages == 0:
            search.newest_id = page.newest_id  # the first page carries the newest id of the result
        search.pages += 1
        self._cycle_pages += 1
        search.next_token = page.next_token
        last = not page.next_token
        out = page.batch
        out.records.sort(key=lambda r: int(r.id))  # type: ignore[union-attr]
        headers = resume.x_pagination_headers(
            search.since_id, search.start_time, search.newest_id, last
        )
        out.headers = [headers for _ in out.records]
        if last:
            newest = tweets.max_id([i for i in (search.newest_id, search.since_id) if i])
            if newest:
                self.since_id = newest
            self.start_time = None
            self._search = None
        elif self._cycle_pages >= self.max_pages:
            log.info(
                "page cap reached: the rest of this search continues at the next poll",
                extra={"pages": self._cycle_pages, "max_pages": self.max_pages},
            )
        else:
            self._more_now = True
        return out


def stream_rule_changes(
    current: list[dict[str, Any]], query: str, tag: str
) -> tuple[list[str], bool]:
    """Which of our rules (by ``tag``) to delete, and whether to add ``query``: pure, so a
    restart with the same query touches nothing and a changed query replaces only our rule."""
    ours = [r for r in current if r.get("tag") == tag]
    delete = [str(r["id"]) for r in ours if r.get("value") != query and "id" in r]
    add = not any(r.get("value") == query for r in ours)
    return delete, add


class XStreamSource(_Polling):
    """Filtered stream (``GET /2/tweets/search/stream``, Pro tier and up): one rule per feed,
    tagged ``coinfeed:<coin>``. tweepy's StreamingClient runs the connection on its own thread and
    follows X's documented reconnect backoff; records reach ``poll()`` through a queue.

    A stream cannot resume after a restart (no ``since_id``): tweets posted while the producer is
    down are missed unless ``backfill_minutes`` (Pro) is set. Recent search has no such gap.
    """

    name = "x-api"

    def __init__(
        self,
        bearer_token: str,
        base_url: str,
        coin: str,
        query: str,
        metrics: ProducerMetrics,
        backfill_minutes: int | None = None,
    ) -> None:
        import queue

        import tweepy

        super().__init__(0.5, metrics)
        self.coin, self.query, self.tag = coin, query, f"coinfeed:{coin}"
        self.backfill_minutes = backfill_minutes
        self._queue: queue.Queue[Batch] = queue.Queue()
        source = self

        class _Stream(tweepy.StreamingClient):  # type: ignore[misc]
            # Overriding the on_* hooks is how tweepy's docs say to consume a stream.
            def on_connect(self) -> None:
                source._ok = True
                metrics.request("ok")
                log.info("connected to the X filtered stream")

            def on_data(self, raw_data: bytes) -> None:
                source._queue.put(tweets.parse_stream_line(coin, raw_data))

            def on_keep_alive(self) -> None:
                return None

            def on_request_error(self, status_code: int) -> None:
                source._ok = False
                outcome = (
                    "rate_limited"
                    if status_code == 429
                    else "server_error"
                    if status_code >= 500
                    else "client_error"
                )
                metrics.request(outcome)
                log.warning("X stream refused", extra={"status": status_code})

            def on_connection_error(self) -> None:
                source._ok = False
                metrics.request("network_error")

        self.stream = _Stream(
            bearer_token, return_type=requests.Response, wait_on_rate_limit=False, daemon=True
        )
        if base_url.rstrip("/") != TWEEPY_HOST:
            self.stream.session.mount(TWEEPY_HOST + "/", RebaseAdapter(base_url))
        logging.getLogger("tweepy").setLevel(logging.INFO)

    def start(self) -> None:
        """Make our rule match the query, then connect (on tweepy's thread)."""
        import tweepy

        resp = self.stream.get_rules()
        try:
            current = decode_json_body(resp.content).get("data") or []
        except (BodyError, AttributeError):
            current = []
        delete, add = stream_rule_changes(current, self.query, self.tag)
        if delete:
            self.stream.delete_rules(delete)
        if add:
            self.stream.add_rules(tweepy.StreamRule(value=self.query, tag=self.tag))
        log.info(
            "stream rule in place", extra={"tag": self.tag, "added": add, "deleted": len(delete)}
        )
        params: dict[str, Any] = {
            "tweet_fields": tweets.TWEET_FIELDS,
            "expansions": tweets.EXPANSIONS,
            "user_fields": tweets.USER_FIELDS,
        }
        if self.backfill_minutes:
            params["backfill_minutes"] = self.backfill_minutes
        self.stream.filter(threaded=True, **params)

    def poll(self) -> Batch:
        import queue

        self._last_start = time.monotonic()
        out = Batch()
        try:
            out.extend(self._queue.get(timeout=self.interval))
            while True:
                out.extend(self._queue.get_nowait())
        except queue.Empty:
            pass
        return out

    def next_wait(self) -> float:
        return 0.0  # poll() itself waits on the queue

    def close(self) -> None:
        self.stream.disconnect()
