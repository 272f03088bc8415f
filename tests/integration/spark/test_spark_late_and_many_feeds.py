"""Late data and many feeds in one application, against the real Kafka cluster.

* Late data: the same hour-00 records reach Kafka on time for one coin, and for another partly on
  time, partly 20 minutes late and partly 3 hours late. Runs at 01:10, 02:10 and 04:10 (each
  reads only what had arrived by then) amend hour 00 of the late coin until its row equals the
  on-time coin's.
* Three feeds in one application: one topic missing, one topic full of bad records, one good. The
  good feed's hours are exact; the other two fail alone, each with its own reason.
* Batched passes: five feeds in two passes (coins grouped by the hours they need) give the same
  lake, summary lines and termination message as ``--no-batch`` (one pass per coin), including a
  missing topic, an all-bad feed and a late-amended hour inside a gapped backfill's read window.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from coinfeed.hourly_status import parse
from coinfeed.kafka import make_admin, make_producer
from coinfeed.schemas import PriceTick, Tweet
from coinfeed.topics import TopicKind, feed_topics

ON_TIME, LATE, GOOD, BAD, MISSING = "lateref", "latecoin", "feedgood", "feedbad", "feedgone"


def at(hh: int, mm: int = 0) -> datetime:
    return datetime(2024, 1, 1, hh, mm, tzinfo=UTC)


def hour0_records(coin: str) -> list[tuple[str, bytes]]:
    """Hour 00 of one coin: ticks, tweets and a duplicate tweet with newer engagement."""
    out: list[tuple[str, bytes]] = []
    for mm, price in ((0, 100.0), (10, 104.0), (25, 101.0), (40, 108.0), (55, 107.0)):
        tick = PriceTick(coin=coin, source="binance", pair="X/USDT", ts=at(0, mm), price=price)
        out.append(("prices", tick.to_json()))
    texts = ["great day", "terrible crash", "the market", "love it", "so bad", "moon"]
    for i, text in enumerate(texts):
        post = Tweet(
            coin=coin,
            id=str(100 + i),
            created_at=at(0, 5 + 9 * i),
            text=text,
            author_id=str(i % 4),
            like_count=i,
            hashtags=["btc"] if i % 2 else [],
        )
        out.append(("tweets", post.to_json()))
    dup = Tweet(coin=coin, id="100", created_at=at(0, 5), text="great day", author_id="0")
    out.append(("tweets", dup.model_copy(update={"like_count": 9}).to_json()))
    return out


def arrivals(records: list[tuple[str, bytes]], late: bool) -> list[tuple[str, bytes, datetime]]:
    """On time: during hour 00. Late: a third each on time, 20 min late (01:20), 3 h late (04:00);
    the newer duplicate arrives last either way, so the same observation wins."""
    out = []
    for i, (kind, value) in enumerate(records):
        ts = (at(0, 30 + i), at(1, 20 + i), at(4, i))[i % 3] if late else at(0, 30 + i)
        out.append((kind, value, ts))
    if late:
        kind, value, _ = out[-1]
        out[-1] = (kind, value, at(4, 30))
    return out


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


@pytest.fixture(scope="module")
def kafka(kafka_cluster: Any) -> Iterator[str]:
    from kafka.admin import NewTopic

    bootstrap = kafka_cluster.bootstrap
    admin = make_admin(bootstrap)
    topics = [t for c in (ON_TIME, LATE, GOOD, BAD) for t in feed_topics(c).values()]
    topics.append(feed_topics(MISSING)["tweets"])  # its prices topic is missing
    admin.create_topics(
        [
            NewTopic(
                t, num_partitions=2, replication_factor=3, topic_configs={"retention.ms": "-1"}
            )
            for t in topics
        ]
    )
    admin.close()
    producer = make_producer(bootstrap)
    sends: list[tuple[str, bytes, datetime]] = []
    for coin, late in ((ON_TIME, False), (LATE, True), (GOOD, False)):
        sends += [(feed_topics(coin)[k], v, ts) for k, v, ts in arrivals(hour0_records(coin), late)]
    for i in range(6):
        sends.append((feed_topics(BAD)["prices"], b'{"coin": "feedbad", "price": ', at(0, i)))
        sends.append((feed_topics(BAD)["tweets"], b"\xff not json", at(0, 10 + i)))
    # In arrival order, as live producers stamp send time: the job reads Kafka by timestamp, and
    # offsets-by-timestamp assume timestamps that grow within a partition.
    sends.sort(key=lambda s: s[2])
    for i, (topic, value, ts) in enumerate(sends):
        producer.send(topic, value=value, partition=i % 2, timestamp_ms=ms(ts)).get(timeout=60)
    producer.flush()
    producer.close()
    yield bootstrap


def run_job(bootstrap: str, lake: Path, now: str, *args: str) -> tuple[int, list[dict[str, Any]]]:
    done = run_hourly(bootstrap, lake, now, *args, "--lookback-hours", "1", "--no-gaps")
    lines = [json.loads(ln) for ln in done.stdout.splitlines() if ln.startswith('{"')]
    return done.returncode, lines


def run_hourly(
    bootstrap: str, lake: Path, now: str, *args: str
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "coinfeed",
        "hourly",
        *args,
        "--now",
        now,
        "--bootstrap",
        bootstrap,
        "--lake",
        str(lake),
        "--master",
        "local[2]",
        "--shuffle-partitions",
        "2",
        "--driver-memory",
        "512m",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def hourly_row(lake: Path, coin: str, hour: int) -> dict[str, Any]:
    part = lake / "hourly" / f"coin={coin}" / "date=2024-01-01" / f"hour={hour}"
    rows = pq.read_table(part).to_pylist()
    assert len(rows) == 1, rows
    return rows[0]


def test_late_records_amend_their_hour_to_the_on_time_result(kafka: str, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    # 01:10: hour 00 of both coins; the late coin has only its on-time third so far.
    code, lines = run_job(kafka, lake, "2024-01-01T01:10:00Z", "--coin", f"{ON_TIME},{LATE}")
    assert code == 0, lines
    want = hourly_row(lake, ON_TIME, 0)
    assert want["tweet_count"] == 6 and want["tick_count"] == 5
    assert hourly_row(lake, LATE, 0)["tick_count"] < 5
    # 02:10: hour 01 is processed; the records that arrived 20 min late amend hour 00.
    code, lines = run_job(kafka, lake, "2024-01-01T02:10:00Z", "--coin", LATE)
    assert code == 0, lines
    assert lines[0]["hours"] == ["2024-01-01T01"]
    assert lines[0]["amended_hours"] == ["2024-01-01T00"]
    assert lines[0]["late_records"] == 4
    # 04:40: hour 03 is processed; the records 3 hours late amend hour 00 again.
    termination = tmp_path / "termination-log"
    code, lines = run_job(
        kafka,
        lake,
        "2024-01-01T04:40:00Z",
        "--coin",
        LATE,
        "--termination-log",
        str(termination),
    )
    assert code == 0, lines
    assert lines[0]["amended_hours"] == ["2024-01-01T00"]
    assert lines[0]["late_records"] == 8  # both late parts, counted in hour 00's recomputation
    message = (parse(termination.read_text()) or {})["coins"][LATE]
    assert (message["amended"], message["late"]) == (1, 8)
    got = hourly_row(lake, LATE, 0)
    assert {k: v for k, v in got.items() if k != "coin"} == {
        k: v for k, v in want.items() if k != "coin"
    }
    raw = pq.read_table(lake / "raw" / "tweets" / f"coin={LATE}").to_pylist()
    assert sorted(r["id"] for r in raw) == [str(100 + i) for i in range(6)]
    assert next(r for r in raw if r["id"] == "100")["like_count"] == 9
    # With late data off, a rerun of hour 00 takes only its on-time records again: exactly them.
    code, _ = run_job(
        kafka,
        lake,
        "2024-01-01T04:40:00Z",
        "--coin",
        LATE,
        "--from",
        "2024-01-01T00",
        "--to",
        "2024-01-01T00",
        "--max-lateness-hours",
        "0",
    )
    assert code == 0
    assert hourly_row(lake, LATE, 0)["tick_count"] < 5


def test_one_application_many_feeds_each_fails_alone(kafka: str, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    termination = tmp_path / "termination-log"
    code, _ = run_job(
        kafka,
        lake,
        "2024-01-01T01:10:00Z",
        "--coin",
        f"{MISSING},{BAD}",
        "--coin",
        GOOD,
        "--termination-log",
        str(termination),
    )
    assert code == 1
    message = parse(termination.read_text())
    assert message is not None and message["ok"] is False
    coins = message["coins"]
    assert coins[GOOD] == {"ok": True, "hours": 1, "newest_hour": "2024-01-01T00:00:00Z"}
    assert coins[MISSING]["ok"] is False
    assert f"topic coinfeed.{MISSING}.prices does not exist" in coins[MISSING]["error"]
    assert coins[BAD]["ok"] is False
    assert "every record read was rejected: 12 quarantined" in coins[BAD]["error"]
    # The good feed's hour is exact: the same row as the same records give alone.
    row = hourly_row(lake, GOOD, 0)
    assert (row["open"], row["high"], row["low"], row["close"]) == (100.0, 108.0, 100.0, 107.0)
    assert (row["tick_count"], row["tweet_count"], row["unique_authors"]) == (5, 6, 4)
    assert row["likes_total"] == 9 + 1 + 2 + 3 + 4 + 5
    # The bad feed's records are in its quarantine, with their reasons; it has no hourly row.
    q = pq.read_table(lake / "quarantine" / f"coin={BAD}").to_pylist()
    assert len(q) == 12 and all(r["reason"] for r in q)
    assert not (lake / "hourly" / f"coin={BAD}").exists()
    assert not (lake / "raw" / "prices" / f"coin={MISSING}").exists()


B_LATE, B_PAIR, B_GOOD, B_BAD, B_GONE = "btlate", "btpair", "btgood", "btbad", "btgone"


def hour_records(coin: str, hh: int) -> list[tuple[TopicKind, bytes]]:
    """One hour of a coin: ticks and tweets whose figures differ by coin and hour."""
    out: list[tuple[TopicKind, bytes]] = []
    base = 100.0 + 10 * hh + len(coin)
    for i, mm in enumerate((0, 10, 25, 40, 55)):
        price = base + (i * 7 + hh) % 5
        tick = PriceTick(coin=coin, source="binance", pair="X/USDT", ts=at(hh, mm), price=price)
        out.append(("prices", tick.to_json()))
    for i, text in enumerate(["great day", "terrible crash", "the market", "love it"]):
        post = Tweet(
            coin=coin,
            id=f"{hh}{100 + i}",
            created_at=at(hh, 5 + 9 * i),
            text=text,
            author_id=str((i + hh) % 3),
            like_count=i + hh,
            hashtags=["btc"] if (i + hh) % 2 else [],
        )
        out.append(("tweets", post.to_json()))
    return out


@pytest.fixture(scope="module")
def batch_feeds(kafka: str) -> str:
    """Five feeds for hours 00..03: two good ones (one with records of hour 01 arriving at 02:30,
    late), a third good one, one with only bad records, one without its prices topic."""
    from kafka.admin import NewTopic

    topics = [t for c in (B_LATE, B_PAIR, B_GOOD, B_BAD) for t in feed_topics(c).values()]
    topics.append(feed_topics(B_GONE)["tweets"])
    admin = make_admin(kafka)
    admin.create_topics(
        [
            NewTopic(
                t, num_partitions=2, replication_factor=3, topic_configs={"retention.ms": "-1"}
            )
            for t in topics
        ]
    )
    admin.close()
    sends: list[tuple[str, bytes, datetime]] = []
    for coin in (B_LATE, B_PAIR, B_GOOD, B_GONE):
        for hh in range(4):
            sends += [
                (feed_topics(coin)[k], v, at(hh, 30 + i))
                for i, (k, v) in enumerate(hour_records(coin, hh))
                if coin != B_GONE or k == "tweets"
            ]
    late_tick = PriceTick(coin=B_LATE, source="binance", pair="X/USDT", ts=at(1, 50), price=97.5)
    late_post = Tweet(coin=B_LATE, id="9001", created_at=at(1, 45), text="so bad", author_id="9")
    sends += [
        (feed_topics(B_LATE)["prices"], late_tick.to_json(), at(2, 30)),
        (feed_topics(B_LATE)["tweets"], late_post.to_json(), at(2, 31)),
    ]
    for hh in range(4):
        sends.append((feed_topics(B_BAD)["prices"], b'{"coin": "btbad", "price": ', at(hh, 5)))
        sends.append((feed_topics(B_BAD)["tweets"], b"\xff not json", at(hh, 6)))
    sends.sort(key=lambda s: s[2])
    producer = make_producer(kafka)
    for i, (topic, value, ts) in enumerate(sends):
        producer.send(topic, value=value, partition=i % 2, timestamp_ms=ms(ts)).get(timeout=60)
    producer.flush()
    producer.close()
    return kafka


def lake_contents(lake: Path) -> dict[str, list[dict[str, Any]]]:
    """Every Parquet file of every dataset, by its path in the lake: its rows, in file order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for f in sorted(lake.rglob("*.parquet")):
        key = str(f.parent.relative_to(lake))
        assert key not in out, f"two files in {key}"
        out[key] = pq.read_table(f).to_pylist()
    return out


def test_batched_pass_equals_the_per_coin_passes(batch_feeds: str, tmp_path: Path) -> None:
    import shutil

    coins = ",".join((B_LATE, B_PAIR, B_GOOD, B_BAD, B_GONE))
    # Hour 01 of two feeds is already in the lake (on-time records only): at 04:40 their plan is
    # 00, 02, 03 (a gap), the other feeds' 00..03, so the run makes two passes.
    setup = tmp_path / "setup"
    done = run_hourly(
        batch_feeds,
        setup,
        "2024-01-01T02:10:00Z",
        *("--coin", f"{B_LATE},{B_PAIR}", "--from", "2024-01-01T01", "--to", "2024-01-01T01"),
        *("--max-lateness-hours", "0"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = {}
    for mode in ("batch", "no-batch"):
        lake = tmp_path / mode
        shutil.copytree(setup, lake)
        termination = tmp_path / f"{mode}-termination-log"
        flags = ["--no-batch"] if mode == "no-batch" else []
        done = run_hourly(
            batch_feeds,
            lake,
            "2024-01-01T04:40:00Z",
            *("--coin", coins, "--lookback-hours", "1", "--retention-hours", "5"),
            *("--termination-log", str(termination), *flags),
        )
        reports = {}
        for ln in done.stdout.splitlines():
            if ln.startswith('{"'):
                report = json.loads(ln)
                # Timings differ from run to run; everything else must not.
                del report["duration_seconds"], report["stage_seconds"]
                reports[report["coin"]] = report
        logs = [json.loads(ln) for ln in done.stderr.splitlines() if ln.startswith('{"')]
        passes = [r for r in logs if r.get("msg") == "batched pass"]
        results[mode] = (done.returncode, reports, termination.read_text(), lake_contents(lake))
        if mode == "batch":
            # Two passes, the missing feed left out of its pass, no fallback to coin-by-coin.
            assert sorted((p["coins"], p["hours"]) for p in passes) == [
                ([B_GOOD, B_BAD], [f"2024-01-01T0{h}" for h in range(4)]),
                ([B_LATE, B_PAIR], ["2024-01-01T00", "2024-01-01T02", "2024-01-01T03"]),
            ], done.stderr[-3000:]
            assert not [r for r in logs if r.get("msg", "").startswith("batched pass failed")]
        else:
            assert passes == []
    batch, alone = results["batch"], results["no-batch"]
    assert batch[0] == alone[0] == 1
    assert batch[1] == alone[1]
    assert batch[2] == alone[2]
    assert batch[3].keys() == alone[3].keys()
    for part, rows in alone[3].items():
        assert batch[3][part] == rows, part
    # What the per-coin run gives is itself right: the late records of 01 amended that hour of
    # their feed only, inside the pass's merged read window (no extra read, no crash).
    reports = batch[1]
    assert reports[B_LATE]["amended_hours"] == ["2024-01-01T01"]
    assert reports[B_PAIR]["amended_hours"] == []
    assert reports[B_LATE]["hours"] == ["2024-01-01T00", "2024-01-01T02", "2024-01-01T03"]
    assert B_GONE not in reports
    message = parse(batch[2]) or {}
    assert f"topic coinfeed.{B_GONE}.prices does not exist" in message["coins"][B_GONE]["error"]
    assert "every record read was rejected" in message["coins"][B_BAD]["error"]
    assert message["coins"][B_GOOD]["ok"] and message["coins"][B_PAIR]["ok"]
    late_01 = alone[3][f"hourly/coin={B_LATE}/date=2024-01-01/hour=1"][0]
    assert (late_01["tick_count"], late_01["tweet_count"]) == (6, 5)
    pair_01 = alone[3][f"hourly/coin={B_PAIR}/date=2024-01-01/hour=1"][0]
    assert (pair_01["tick_count"], pair_01["tweet_count"]) == (5, 4)
    assert {p.split("/")[0] for p in alone[3]} == {"raw", "quarantine", "hourly"}
    assert any(p.startswith(f"quarantine/coin={B_BAD}/") for p in alone[3])
