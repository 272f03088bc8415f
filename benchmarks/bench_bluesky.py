"""How fast the Bluesky consumer filters a Jetstream stream on one core.

A recorded-shape stream (Jetstream v1 JSON frames: post creates with facets and langs, a few
updates and deletes, identity and account events; 1 % of posts match the keywords) is fed through
the real source (``JetstreamSource.poll``: decode, classify, filter, build records, dedup, count)
from an in-memory connection, so no network time is measured. Baseline, same frames, same run: a
bare ``json.loads`` loop. Figures: events/s per core (process CPU time) of both, their ratio, and
the consumer's rate as a multiple of the public post stream (taken as 300 events/s, the upper end
of the tens to hundreds of posts per second Jetstream carries).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from coinfeed.producers import bluesky
from coinfeed.producers.jetstream import JetstreamSource
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.retry import RetryPolicy

OUT = Path(__file__).resolve().parents[1] / "out" / "bench" / "bluesky.json"
PUBLIC_RATE = 300.0  # events/s of the public post stream (upper end)
T0_US = 1_741_000_000_000_000
WORDS = [
    "the",
    "a",
    "markets",
    "today",
    "lunch",
    "coffee",
    "weather",
    "game",
    "music",
    "photo",
    "city",
    "friends",
    "news",
    "work",
]


def frames(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        did = f"did:plc:{rng.getrandbits(120):030x}"[:32]
        t = T0_US + i * 1000
        r = rng.random()
        if r < 0.80:
            matching = rng.random() < 0.01
            words = rng.choices(WORDS, k=rng.randint(5, 30))
            if matching:
                words.insert(rng.randrange(len(words)), "$BTC")
            text = " ".join(words) + " #" + rng.choice(WORDS)
            op = "update" if rng.random() < 0.01 else "create"
            record = {
                "$type": "app.bsky.feed.post",
                "text": text,
                "createdAt": "2025-03-03T11:06:40.123Z",
                "langs": [rng.choice(["en", "en", "en", "ja", "pt", "de"])],
                "facets": [
                    {
                        "index": {"byteStart": len(text) - 6, "byteEnd": len(text)},
                        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "x"}],
                    }
                ],
            }
            commit: dict[str, Any] = {
                "rev": f"3l{i:011d}",
                "operation": op,
                "collection": "app.bsky.feed.post",
                "rkey": f"3k{i:011d}",
                "record": record,
                "cid": "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi",
            }
            event: dict[str, Any] = {"did": did, "time_us": t, "kind": "commit", "commit": commit}
        elif r < 0.88:
            commit = {
                "rev": f"3l{i:011d}",
                "operation": "delete",
                "collection": "app.bsky.feed.post",
                "rkey": f"3k{i:011d}",
            }
            event = {"did": did, "time_us": t, "kind": "commit", "commit": commit}
        elif r < 0.95:
            ident = {
                "did": did,
                "handle": f"user{i}.bsky.social",
                "seq": i,
                "time": "2025-03-03T11:06:40Z",
            }
            event = {"did": did, "time_us": t, "kind": "identity", "identity": ident}
        else:
            acct = {
                "active": rng.random() < 0.9,
                "did": did,
                "seq": i,
                "time": "2025-03-03T11:06:40Z",
            }
            event = {"did": did, "time_us": t, "kind": "account", "account": acct}
        out.append(json.dumps(event))
    return out


class ListConnection:
    """Stands in for a websockets connection: hands out recorded frames, then times out."""

    def __init__(self, items: list[str]) -> None:
        self.items = [f.encode() for f in items]
        self.i = 0

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> bytes:
        if self.i >= len(self.items):
            raise TimeoutError
        self.i += 1
        return self.items[self.i - 1]

    def close(self) -> None:
        return None


def run_consumer(items: list[str]) -> tuple[int, float]:
    conn = ListConnection(items)
    m = ProducerMetrics("btc", "tweets", "bluesky")
    matcher = bluesky.Matcher.build(["$BTC", "bitcoin"], ["BTC"], ["en"])
    src = JetstreamSource(
        "btc",
        ["ws://127.0.0.1:9"],
        matcher,
        m,
        RetryPolicy(),
        batch_seconds=3600,
        max_batch=10_000,
        stall_seconds=1e9,
        connect=lambda *a, **k: conn,
    )
    src.start_from(T0_US)
    sent = 0
    cpu0 = time.process_time()
    while conn.i < len(conn.items):
        sent += len(src.poll().records)
    return sent, time.process_time() - cpu0


def run_baseline(items: list[str]) -> float:
    raw = [f.encode() for f in items]
    loads = json.loads
    cpu0 = time.process_time()
    for f in raw:
        loads(f)
    return time.process_time() - cpu0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench_bluesky", description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--events", type=int, default=None)
    args = p.parse_args(argv)
    n = args.events or (20_000 if args.quick else 200_000)
    items = frames(n)
    base_s = min(run_baseline(items) for _ in range(3))
    runs = [run_consumer(items) for _ in range(3)]
    sent = runs[0][0]
    cons_s = min(s for _, s in runs)
    base_rate, cons_rate = n / base_s, n / cons_s
    result = {
        "events": n,
        "posts_sent": sent,
        "baseline_json_loads_events_per_cpu_s": round(base_rate),
        "consumer_events_per_cpu_s": round(cons_rate),
        "consumer_vs_json_loads": round(cons_rate / base_rate, 3),
        "consumer_vs_public_stream": round(cons_rate / PUBLIC_RATE, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{n:,} Jetstream frames, {sent:,} posts matched and handed on")
    print(f"  bare json.loads (baseline): {base_rate:,.0f} events/s per core")
    print(
        f"  Bluesky consumer:           {cons_rate:,.0f} events/s per core "
        f"= {cons_rate / base_rate:.2f} x json.loads "
        f"= {cons_rate / PUBLIC_RATE:,.0f} x the public stream ({PUBLIC_RATE:.0f} events/s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
