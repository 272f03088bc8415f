"""A local Jetstream: a real WebSocket server (``websockets``) on loopback speaking Jetstream's
documented v1 ``/subscribe`` JSON shapes.

It replays every event with ``time_us >= cursor`` (Jetstream v1 semantics), honours
``wantedCollections`` for commits (identity and account events always pass, as Jetstream's docs
say), then tails new events as they are added. Scripted faults: close the connection after N
frames (a server-side disconnect), stop sending (a stalled stream), drop a client that does not
keep up (Jetstream drops slow readers), and raw malformed frames in the stream.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

POST = "app.bsky.feed.post"
T0_US = 1_741_000_000_000_000  # 2025-03-03T11:06:40Z


def did(n: int) -> str:
    return f"did:plc:{'a' * 16}{n:08d}"[:32]


def post_event(
    n: int,
    time_us: int,
    text: str,
    author: int = 1,
    langs: list[str] | None = None,
    op: str = "create",
    rkey: str | None = None,
    collection: str = POST,
    tags: list[str] | None = None,
    created_at: str = "2025-03-03T11:06:40.000Z",
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "$type": collection,
        "text": text,
        "createdAt": created_at,
        "langs": ["en"] if langs is None else langs,
    }
    hashtags = [w[1:] for w in text.split() if w.startswith("#") and len(w) > 1]
    if hashtags:
        record["facets"] = [
            {
                "index": {"byteStart": 0, "byteEnd": 1},
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": h}],
            }
            for h in hashtags
        ]
    if tags:
        record["tags"] = tags
    commit: dict[str, Any] = {
        "rev": f"3l{n:011d}",
        "operation": op,
        "collection": collection,
        "rkey": rkey or f"3k{n:011d}",
    }
    if op != "delete":
        commit["record"] = record
        commit["cid"] = f"bafyrei{n:052d}"
    return {"did": did(author), "time_us": time_us, "kind": "commit", "commit": commit}


def identity_event(author: int, time_us: int, handle: str) -> dict[str, Any]:
    d = did(author)
    return {
        "did": d,
        "time_us": time_us,
        "kind": "identity",
        "identity": {"did": d, "handle": handle, "seq": 1, "time": "2025-03-03T11:06:40.000Z"},
    }


def account_event(author: int, time_us: int, active: bool) -> dict[str, Any]:
    d = did(author)
    account: dict[str, Any] = {"active": active, "did": d, "seq": 2, "time": "2025-03-03T11:06:40Z"}
    if not active:
        account["status"] = "deactivated"
    return {"did": d, "time_us": time_us, "kind": "account", "account": account}


@dataclass
class Frame:
    time_us: int
    text: str
    collection: str | None  # commits only: for wantedCollections


@dataclass
class FakeJetstream:
    frames: list[Frame] = field(default_factory=list)
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    # per connection (in order): close after this many frames; None = keep streaming
    disconnect_after: list[int | None] = field(default_factory=list)
    stall: bool = False  # accept connections but send nothing
    slow_send_timeout: float | None = None  # drop a client whose socket stays full this long
    sent: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _server: Server | None = None
    _stopping: bool = False

    # --- events ---------------------------------------------------------------------------
    def add(self, *events: dict[str, Any]) -> None:
        with self._cond:
            for e in events:
                collection = (
                    e.get("commit", {}).get("collection") if e["kind"] == "commit" else None
                )
                self.frames.append(Frame(e["time_us"], json.dumps(e), collection))
            self._cond.notify_all()

    def add_raw(self, text: str, time_us: int) -> None:
        """A malformed frame, sent in stream position ``time_us``."""
        with self._cond:
            self.frames.append(Frame(time_us, text, None))
            self._cond.notify_all()

    # --- server -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        with self._cond:
            index = len(self.requests)
            self.requests.append(query)
            self.extensions.append(
                ws.response.headers.get("Sec-WebSocket-Extensions", "") if ws.response else ""
            )
        limit = self.disconnect_after[index] if index < len(self.disconnect_after) else None
        cursor = int(query.get("cursor", ["0"])[0])
        wanted = set(query.get("wantedCollections", []))
        if self.slow_send_timeout is not None:
            ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            ws.socket.settimeout(self.slow_send_timeout)
        position = 0
        sent_here = 0
        try:
            while not self._stopping:
                with self._cond:
                    while position >= len(self.frames) or self.stall:
                        if self._stopping:
                            return
                        self._cond.wait(0.2)
                    frame = self.frames[position]
                position += 1
                if frame.time_us < cursor:
                    continue
                if frame.collection is not None and wanted and frame.collection not in wanted:
                    continue
                if limit is not None and sent_here >= limit:
                    ws.close(1011, "scripted disconnect")
                    return
                try:
                    ws.send(frame.text)
                except (TimeoutError, OSError):
                    # Jetstream drops a reader that falls too far behind.
                    ws.socket.close()
                    return
                sent_here += 1
                with self._cond:
                    self.sent += 1
        except ConnectionClosed:
            return

    def start(self) -> FakeJetstream:
        self._server = serve(self._handler, "127.0.0.1", 0)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping = True
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()


@contextmanager
def running(*servers: FakeJetstream) -> Iterator[tuple[FakeJetstream, ...]]:
    for s in servers:
        s.start()
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()
