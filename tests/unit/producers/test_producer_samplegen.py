"""The shipped sample is what the seeded generator writes, and stays small and labelled."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from coinfeed.producers import samplegen
from coinfeed.schemas import PriceTick, Tweet, decode_record

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _sha(path: Path) -> str:
    return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = samplegen.write_sample(tmp_path / "a", ["btc"], hours=3)
    b = samplegen.write_sample(tmp_path / "b", ["btc"], hours=3)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    c = samplegen.write_sample(tmp_path / "c", ["btc"], seed=7, hours=3)
    assert a[1].read_bytes() != c[1].read_bytes()
    assert a[2].read_bytes() != c[2].read_bytes()


def test_committed_sample_equals_a_fresh_generation(tmp_path: Path) -> None:
    fresh = samplegen.write_sample(tmp_path, list(samplegen.PROFILES))
    for path in fresh:
        committed = SAMPLES / path.name
        assert committed.is_file(), (
            f"{committed} missing: run python -m coinfeed.producers.samplegen"
        )
        assert _sha(committed) == _sha(path), (
            f"{committed.name} differs from the generator's output"
        )


def test_sample_is_small_synthetic_and_valid() -> None:
    files = sorted(SAMPLES.glob("*.jsonl.gz"))
    assert len(files) == 6  # per coin: prices, X posts, Bluesky posts
    assert sum(f.stat().st_size for f in files) < 10_000_000
    assert "SYNTHETIC" in (SAMPLES / "README.md").read_text()
    for f in files:
        model = PriceTick if "prices" in f.name else Tweet
        lines = gzip.decompress(f.read_bytes()).splitlines()
        records = [decode_record(model, line) for line in lines]
        assert {r.source for r in records} == {"synthetic"}
        if model is PriceTick:
            assert len(records) == 48 * 60
            continue
        posts: list[Tweet] = records  # type: ignore[assignment]
        assert all(p.cashtags and p.lang and p.author_followers >= 0 for p in posts)
        assert len({p.lang for p in posts}) >= 4
        assert len({p.id for p in posts}) == len(posts)
        times = [p.created_at for p in posts]
        assert times == sorted(times)  # the replay paces by event time, in file order
        if "bluesky" in f.name:
            # shaped like what the Jetstream producer writes, clearly synthetic
            assert 0.5 * 48 * 60 <= len(posts) <= 3 * 48 * 60
            assert {p.platform for p in posts} == {"bluesky"}
            assert all(p.id.startswith(f"at://{p.author_id}/app.bsky.feed.post/") for p in posts)
            assert all(p.observed_at and p.observed_at > p.created_at for p in posts)
            assert all((p.author_username or "").startswith("synthetic-user-") for p in posts)
        else:
            # a few X posts per minute, with the fields the analytics need
            assert 2 * 48 * 60 <= len(posts) <= 6 * 48 * 60
            assert {p.platform for p in posts} == {"x"}
            ids = [int(p.id) for p in posts]
            assert ids == sorted(ids)  # snowflake ids grow with time, as since_id relies on


def test_tid_record_keys_sort_by_time() -> None:
    keys = [
        samplegen.tid(m, 5)
        for m in (1_741_000_000_000_000, 1_741_000_000_000_001, 1_741_000_001_000_000)
    ]
    assert keys == sorted(keys) and all(len(k) == 13 for k in keys)
    assert samplegen.tid(1_725_911_162_329_308, 0).startswith("3l")  # a 2024 TID, as on Bluesky
