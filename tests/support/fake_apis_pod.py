"""Local stand-ins for the X API and Bluesky's Jetstream, run as a pod on the local node (the pods
cannot reach the internet). Only the standard library, ``websockets`` (in the producer image) and
``fake_jetstream.py`` mounted next to this file.

    python fake_apis_pod.py            # X on :8080, Jetstream on :8081

X: ``GET /2/tweets/search/recent`` answers the documented v2 shape with a few new posts per call
and the x-rate-limit-* headers. Jetstream: ``/subscribe`` streams a new post every second.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_jetstream import FakeJetstream, post_event  # type: ignore[import-not-found]  # mounted beside
from websockets.sync.server import serve

X_PORT, JETSTREAM_PORT = 8080, 8081
SEARCH_PATH = "/2/tweets/search/recent"
_ids = itertools.count(int(time.time()) * 1000)
_lock = threading.Lock()
_remaining = 450


def x_post(tid: int) -> dict[str, Any]:
    return {
        "id": str(tid),
        "text": f"$ADA looks great today, strong week #Cardano {tid}",
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "author_id": str(tid % 7 + 1),
        "lang": "en",
        "edit_history_tweet_ids": [str(tid)],
        "public_metrics": {"retweet_count": 1, "reply_count": 0, "like_count": 3, "quote_count": 0},
        "entities": {"hashtags": [{"start": 36, "end": 44, "tag": "Cardano"}]},
    }


def x_user(uid: int) -> dict[str, Any]:
    return {
        "id": str(uid),
        "name": f"Synthetic {uid}",
        "username": f"synthetic_user_{uid:03d}",
        "public_metrics": {"followers_count": 100 * uid, "following_count": 1, "tweet_count": 1},
    }


class XHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        global _remaining
        url = urlsplit(self.path)
        if url.path != SEARCH_PATH:
            self.send_error(404)
            return
        args = {k: v[0] for k, v in parse_qs(url.query).items()}
        with _lock:
            _remaining = max(0, _remaining - 1)
            posts = [x_post(next(_ids)) for _ in range(3)]
        since = int(args.get("since_id", "0"))
        posts = sorted((p for p in posts if int(p["id"]) > since), key=lambda p: -int(p["id"]))
        body: dict[str, Any] = {"meta": {"result_count": len(posts)}}
        if posts:
            body["data"] = posts
            body["meta"] |= {"newest_id": posts[0]["id"], "oldest_id": posts[-1]["id"]}
            body["includes"] = {"users": [x_user(int(p["author_id"])) for p in posts]}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-rate-limit-limit", "450")
        self.send_header("x-rate-limit-remaining", str(_remaining))
        self.send_header("x-rate-limit-reset", str(int(time.time()) + 900))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(format % args, flush=True)


def main() -> None:
    jet = FakeJetstream()
    server = serve(jet._handler, "0.0.0.0", JETSTREAM_PORT)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    x = ThreadingHTTPServer(("0.0.0.0", X_PORT), XHandler)
    threading.Thread(target=x.serve_forever, daemon=True).start()
    print(f"fake X on :{X_PORT}, fake Jetstream on :{JETSTREAM_PORT}", flush=True)
    for n in itertools.count(1):
        now_us = int(time.time() * 1_000_000)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        text = f"polkadot $DOT is strong and great today {n}"
        jet.add(post_event(n, now_us, text, author=n % 5 + 1, created_at=created))
        time.sleep(1)


if __name__ == "__main__":
    main()
