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
    assert len(files) == 4
    assert sum(f.stat().st_size for f in files) < 10_000_000
    assert "SYNTHETIC" in (SAMPLES / "README.md").read_text()
    for f in files:
        model = PriceTick if "prices" in f.name else Tweet
        lines = gzip.decompress(f.read_bytes()).splitlines()
        records = [decode_record(model, line) for line in lines]
        assert {r.source for r in records} == {"synthetic"}
        if model is PriceTick:
            assert len(records) == 48 * 60
        else:
            # a few tweets per minute, with the fields the analytics need
            assert 2 * 48 * 60 <= len(records) <= 6 * 48 * 60
            assert all(r.cashtags and r.lang and r.author_followers >= 0 for r in records)  # type: ignore[union-attr]
            assert len({r.lang for r in records}) >= 4  # type: ignore[union-attr]
            ids = [int(r.id) for r in records]  # type: ignore[union-attr]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
