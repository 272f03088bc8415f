"""Backoff and rate-limit arithmetic, replay files and pacing, settings from env and flags."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coinfeed import producer_env as env_names
from coinfeed.producers import batch as b
from coinfeed.producers.replay import due_offset, parse_line, rebase_shift
from coinfeed.producers.retry import (
    RateLimit,
    RetryPolicy,
    parse_rate_limit,
    rate_limit_wait,
    retry_after,
)
from coinfeed.producers.settings import SettingsError, bearer_token, parse
from coinfeed.producers.sources import ReplaySource, rebase_urls
from coinfeed.schemas import PriceTick

# --- retry -------------------------------------------------------------------------------------


def test_full_jitter_stays_within_the_exponential_ceiling() -> None:
    policy = RetryPolicy(base=1.0, cap=8.0, max_wait=100.0)
    rng = random.Random(1)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        waits = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # jitter spans the range, not a constant
        assert min(waits) < ceiling * 0.2


def test_backoff_never_exceeds_max_wait() -> None:
    policy = RetryPolicy(base=1.0, cap=60.0, max_wait=0.05)
    assert all(policy.backoff(6) <= 0.05 for _ in range(100))


def test_rate_limit_headers_parsed_case_insensitively() -> None:
    rl = parse_rate_limit(
        {
            "X-Rate-Limit-Remaining": "3",
            "x-rate-limit-reset": "1700000000",
            "x-rate-limit-limit": "x",
        }
    )
    assert rl == RateLimit(limit=None, remaining=3, reset=1700000000.0)


def test_rate_limit_wait_until_reset_bounded() -> None:
    policy = RetryPolicy(max_wait=30.0)
    now = 1000.0
    assert rate_limit_wait(RateLimit(450, 10, now + 500), now, policy, limited=False) == 0.0
    assert rate_limit_wait(RateLimit(450, 0, now + 10), now, policy, limited=False) == 11.0
    assert rate_limit_wait(RateLimit(450, 5, now + 10), now, policy, limited=True) == 11.0
    assert rate_limit_wait(RateLimit(450, 0, now + 500), now, policy, limited=False) == 30.0
    assert rate_limit_wait(RateLimit(450, 0, now - 5), now, policy, limited=True) == 0.0
    assert (
        rate_limit_wait(RateLimit(None, None, None), now, RetryPolicy(cap=7, max_wait=30), True)
        == 7
    )


def test_retry_after_header() -> None:
    assert retry_after({"Retry-After": "12"}, RetryPolicy(max_wait=5)) == 5
    assert retry_after({"Retry-After": "2"}, RetryPolicy()) == 2
    assert retry_after({"Retry-After": "soon"}, RetryPolicy()) is None


def test_rebase_urls_keeps_paths() -> None:
    api = {
        "public": "https://api.binance.com/api/v3",
        "nested": {"x": "https://fapi.binance.com/fapi/v1"},
    }
    assert rebase_urls(api, "http://127.0.0.1:9/") == {
        "public": "http://127.0.0.1:9/api/v3",
        "nested": {"x": "http://127.0.0.1:9/fapi/v1"},
    }


# --- replay ------------------------------------------------------------------------------------

T0 = datetime(2025, 3, 3, tzinfo=UTC)


def _tick(i: int, coin: str = "btc") -> PriceTick:
    return PriceTick(
        coin=coin, source="replay", pair="BTC/USDT", ts=T0 + timedelta(minutes=i), price=100.0 + i
    )


def _write(path: Path, lines: list[bytes]) -> Path:
    data = b"".join(line.rstrip(b"\n") + b"\n" for line in lines)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def test_replay_line_errors_name_line_and_reason() -> None:
    assert parse_line("prices", "btc", 1, _tick(0).to_json()).records == [_tick(0)]
    cases = {
        b"{not json": b.MALFORMED_JSON,
        b'{"coin": "btc"}': b.MISSING_FIELD,
        _tick(0, "eth").to_json(): b.WRONG_COIN,
        b"\xff\xfe": b.NOT_UTF8,
        json.dumps({**_tick(0).to_dict(), "price": None}).encode(): b.NULL_FIELD,
    }
    for line, reason in cases.items():
        (skip,) = parse_line("prices", "btc", 7, line).skips
        assert skip.reason == reason and skip.detail.startswith("line 7")


def test_replay_pacing_arithmetic() -> None:
    assert due_offset(T0, T0 + timedelta(minutes=1), 1.0) == 60.0
    assert due_offset(T0, T0 + timedelta(minutes=1), 60.0) == 1.0
    assert due_offset(T0, T0 + timedelta(hours=5), 0.0) == 0.0
    assert due_offset(T0, T0 - timedelta(seconds=5), 1.0) == 0.0  # out-of-order: at once
    now = T0 + timedelta(days=3)
    assert rebase_shift("none", (T0, T0 + timedelta(hours=2)), now) == timedelta(0)
    assert rebase_shift("start", (T0, T0 + timedelta(hours=2)), now) == now - T0
    assert rebase_shift("end", (T0, T0 + timedelta(hours=2)), now) == now - T0 - timedelta(hours=2)


def test_replay_source_as_fast_as_possible_with_bad_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.jsonl.gz",
        [_tick(0).to_json(), b"<html>oops</html>", _tick(1).to_json(), b"", _tick(2).to_json()],
    )
    src = ReplaySource("prices", "btc", path, speed=0, chunk=2)
    first, second = src.poll(), src.poll()
    assert [r.price for r in first.records + second.records] == [100.0, 101.0, 102.0]
    assert [s.reason for s in first.skips + second.skips] == [b.HTML_BODY]
    assert src.done


def test_replay_source_paces_by_event_time(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", [_tick(i).to_json() for i in range(3)])
    clock = [0.0]
    src = ReplaySource("prices", "btc", path, speed=60.0, clock=lambda: clock[0])
    assert [r.price for r in src.poll().records] == [100.0]  # one minute apart = 1 s at 60x
    assert src.next_wait() == pytest.approx(1.0)
    clock[0] = 1.0
    assert [r.price for r in src.poll().records] == [101.0]
    clock[0] = 5.0
    assert [r.price for r in src.poll().records] == [102.0]
    assert src.poll().records == [] and src.done


def test_replay_rebase_start_moves_first_record_to_now(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", [_tick(i).to_json() for i in range(2)])
    src = ReplaySource("prices", "btc", path, speed=0, rebase="start")
    recs = src.poll().records
    assert abs((recs[0].ts - datetime.now(UTC)).total_seconds()) < 60
    assert recs[1].ts - recs[0].ts == timedelta(minutes=1)


def test_replay_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        ReplaySource("prices", "btc", tmp_path / "nope.jsonl")


# --- settings ----------------------------------------------------------------------------------


def test_env_only_configuration_as_the_operator_writes_it() -> None:
    env = {
        env_names.COIN: "BTC",
        env_names.KAFKA_BOOTSTRAP: "127.0.0.1:1",
        env_names.PRICE_SOURCE: "replay",
        env_names.REPLAY_FILE: "/data/btc.jsonl.gz",
        env_names.REPLAY_SPEED: "60",
        env_names.METRICS_PORT: "9555",
        env_names.POLL_INTERVAL_SECONDS: "5",
    }
    s = parse(["prices"], env)
    assert (s.coin, s.source, s.bootstrap, s.replay_speed, s.metrics_port) == (
        "btc",
        "replay",
        "127.0.0.1:1",
        60.0,
        9555,
    )
    assert (s.replay_file, s.poll_interval, s.pair) == (Path("/data/btc.jsonl.gz"), 5.0, "BTC/USDT")


def test_flags_override_env() -> None:
    env = {
        env_names.COIN: "btc",
        env_names.TWEET_KEYWORDS: "bitcoin,btc",
        env_names.TWEET_LANGUAGES: "en",
        env_names.X_API_BASE_URL: "http://127.0.0.1:5",
    }
    s = parse(["tweets", "--coin", "eth", "--languages", "en,es"], env)
    assert (s.coin, s.languages, s.keywords, s.cashtags) == (
        "eth",
        ["en", "es"],
        ["bitcoin", "btc"],
        ["ETH"],
    )
    assert s.x_api_base_url == "http://127.0.0.1:5"


def test_settings_errors() -> None:
    with pytest.raises(SettingsError, match=env_names.COIN):
        parse(["prices"], {})
    with pytest.raises(SettingsError, match=env_names.REPLAY_FILE):
        parse(["tweets", "--coin", "btc", "--source", "replay"], {})
    with pytest.raises(ValueError, match="invalid coin"):
        parse(["prices", "--coin", "b!"], {})


def test_bearer_token_from_file_or_env_errors_never_show_it(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("AAAA-file-token\n")
    s = parse(["tweets", "--coin", "btc"], {env_names.X_BEARER_TOKEN_FILE: str(token_file)})
    assert bearer_token(s, {}) == "AAAA-file-token"
    s = parse(["tweets", "--coin", "btc"], {})
    assert bearer_token(s, {env_names.X_BEARER_TOKEN: "AAAA-env"}) == "AAAA-env"
    with pytest.raises(SettingsError, match=env_names.X_BEARER_TOKEN):
        bearer_token(s, {})
    token_file.write_text("")
    s = parse(["tweets", "--coin", "btc", "--bearer-token-file", str(token_file)], {})
    with pytest.raises(SettingsError, match="empty"):
        bearer_token(s, {})
