from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from coinfeed import metric_names as m
from coinfeed.hourly_status import parse
from coinfeed.spark.summary import CoinRun, LatestHour, failure_registry, success_registry


def run(sentiment: float | None) -> CoinRun:
    return CoinRun(
        coin="btc",
        hours=[datetime(2024, 1, 1, 0, tzinfo=UTC), datetime(2024, 1, 1, 1, tzinfo=UTC)],
        rows_read={"prices": 12, "tweets": 5},
        duplicates={"prices": 1, "tweets": 0},
        quarantined=3,
        rows_written={"hourly": 2, "raw/prices": 7},
        latest=LatestHour(datetime(2024, 1, 1, 1, tzinfo=UTC), 95.0, -0.2, 0.1, 4, sentiment),
        duration_seconds=12.3456,
    )


def test_report_is_one_json_line_with_the_counts() -> None:
    data = json.loads(run(0.5).report())
    assert data["hours"] == ["2024-01-01T00", "2024-01-01T01"]
    assert (data["rows_read"], data["quarantined"], data["duplicates"]) == (
        {"prices": 12, "tweets": 5},
        3,
        {"prices": 1, "tweets": 0},
    )
    assert data["latest"]["hour_start"] == "2024-01-01T01"
    assert data["duration_seconds"] == 12.346


def test_success_registry_uses_the_contract_names() -> None:
    text = generate_latest(success_registry(run(0.5), 1700000000.0)).decode()
    assert f'{m.HOURLY_ROWS_READ}{{coin="btc",kind="tweets"}} 5.0' in text
    assert f'{m.HOURLY_ROWS_WRITTEN}{{coin="btc",dataset="raw/prices"}} 7.0' in text
    assert f'{m.HOURLY_CLOSE_PRICE}{{coin="btc"}} 95.0' in text
    assert f'{m.HOURLY_SENTIMENT_MEAN}{{coin="btc"}} 0.5' in text
    assert f'{m.HOURLY_NEWEST_HOUR}{{coin="btc"}} 1.7040708e+09' in text
    assert f'{m.HOURLY_LAST_SUCCESS}{{coin="btc"}} 1.7e+09' in text
    names = {ln.split("{")[0] for ln in text.splitlines() if ln and not ln.startswith("#")}
    assert names <= m.ALL


def test_an_hour_without_tweets_pushes_no_sentiment() -> None:
    text = generate_latest(success_registry(run(None), 1.0)).decode()
    assert m.HOURLY_SENTIMENT_MEAN not in text
    assert f'{m.HOURLY_TWEET_COUNT}{{coin="btc"}} 4.0' in text


def test_failure_registry_only_sets_the_failure_time() -> None:
    text = generate_latest(failure_registry("btc", 5.0)).decode()
    assert f'{m.HOURLY_LAST_FAILURE}{{coin="btc"}} 5.0' in text
    assert m.HOURLY_LAST_SUCCESS not in text


def test_newest_hour_is_pushed_per_platform() -> None:
    from coinfeed.spark.summary import platform_figures

    r = run(0.5)
    assert r.latest is not None
    row = {"x_post_count": 3, "x_sentiment_mean": 0.25, "bluesky_post_count": 0}
    figures = platform_figures(row)
    assert figures == {
        "platform_posts": {"x": 3, "bluesky": 0},
        "platform_sentiment": {"x": 0.25, "bluesky": None},
    }
    r.latest.platform_posts = figures["platform_posts"]
    r.latest.platform_sentiment = figures["platform_sentiment"]
    text = generate_latest(success_registry(r, 1.0)).decode()
    assert f'{m.HOURLY_PLATFORM_POSTS}{{coin="btc",platform="x"}} 3.0' in text
    assert f'{m.HOURLY_PLATFORM_POSTS}{{coin="btc",platform="bluesky"}} 0.0' in text
    assert f'{m.HOURLY_PLATFORM_SENTIMENT}{{coin="btc",platform="x"}} 0.25' in text
    assert f'{m.HOURLY_PLATFORM_SENTIMENT}{{coin="btc",platform="bluesky"}}' not in text


def test_termination_message_reports_the_newest_hour_written() -> None:
    from coinfeed.spark.summary import termination_message

    text = termination_message([run(0.5)], {})
    # The wire format (coinfeed.hourly_status, format 2): one compact token per coin.
    assert json.loads(text) == {
        "summary": "hourly",
        "v": 2,
        "ok": True,
        "coins": "btc:2024010101:2",
    }
    assert parse(text) == {
        "summary": "hourly",
        "ok": True,
        "coins": {"btc": {"ok": True, "hours": 2, "newest_hour": "2024-01-01T01:00:00Z"}},
    }
    idle = parse(termination_message([CoinRun(coin="eth")], {}))
    assert idle is not None
    assert idle["coins"]["eth"] == {"ok": True, "hours": 0, "newest_hour": None}


def test_termination_message_carries_the_error_and_stays_under_4_kib() -> None:
    from coinfeed.spark.summary import TERMINATION_MESSAGE_LIMIT, termination_message

    def parsed(text: str) -> dict[str, Any]:
        assert len(text.encode()) < TERMINATION_MESSAGE_LIMIT
        data = parse(text)
        assert data is not None
        return data

    failed = parsed(termination_message([], {"btc": "KafkaException: broker down"}))
    assert failed["ok"] is False
    assert failed["coins"]["btc"] == {
        "ok": False,
        "hours": 0,
        "newest_hour": None,
        "error": "KafkaException: broker down",
    }
    # A coin that wrote its hours and then failed (e.g. the metrics push) keeps its newest hour.
    both = parsed(termination_message([run(0.5)], {"btc": "URLError: pushgateway"}))
    assert both["coins"]["btc"]["newest_hour"] == "2024-01-01T01:00:00Z"
    assert both["ok"] is False
    fatal = parsed(termination_message([], {}, fatal="cannot start: no jars"))
    assert (fatal["ok"], fatal["error"], fatal["coins"]) == (False, "cannot start: no jars", {})

    huge = "java.lang.IllegalStateException: " + "x" * 20_000
    data = parsed(termination_message([], {"btc": huge, "eth": huge}, fatal=huge))
    assert data["coins"]["btc"]["error"].startswith("java.lang.IllegalStateException: xxx")
    assert data["coins"]["eth"]["error"] == data["coins"]["btc"]["error"]  # one text, twice
    # 100 coins failing alike (the usual way: Kafka down): the one text is kept at length.
    same = parsed(termination_message([], {f"c{i:03d}": huge for i in range(100)}))
    assert {len(e["error"]) for e in same["coins"].values()} == {1000}
    # 100 coins failing each their own way: as many texts as fit, the rest none.
    own = {f"c{i:03d}": f"E{i}: {huge}" for i in range(100)}
    some = parsed(termination_message([], own))
    assert len(some["coins"]) == 100
    assert 0 < sum("error" in e for e in some["coins"].values()) < 100
    # More coins than MAX_COINS: the verdict and as many coins as fit.
    many = [
        CoinRun(
            coin=f"c{i:04d}",
            latest=LatestHour(datetime(2024, 1, 1, 1, tzinfo=UTC), 1.0, 0.0, 0.0, 0, None),
        )
        for i in range(500)
    ]
    data = parsed(termination_message(many, {f"c{i:04d}": huge for i in range(0, 500, 7)}))
    assert data["ok"] is False and data["truncated"] is True
    assert 0 < len(data["coins"]) < 500
    assert {e["newest_hour"] for e in data["coins"].values()} == {"2024-01-01T01:00:00Z"}


def test_the_operator_still_reads_format_1_and_skips_what_is_not_a_summary() -> None:
    """Pods of the previous version's jobs may still hold a format-1 message."""
    v1 = {
        "summary": "hourly",
        "ok": False,
        "coins": {"btc": {"ok": False, "hours": 2, "error": "boom", "newest_hour": None}},
    }
    assert parse(json.dumps(v1)) == v1
    truncated = {"summary": "hourly", "ok": True, "truncated": True, "newest_hours": {"a": "x"}}
    assert parse(json.dumps(truncated)) == truncated
    for junk in (None, "", "Exception in thread main", '{"summary": "other"}', "[1]"):
        assert parse(junk) is None
    # A token that is not ours (or an impossible hour) drops that coin, not the message.
    odd = '{"summary":"hourly","v":2,"ok":true,"coins":"btc:2024010101:1,EVIL,eth:2024139901"}'
    assert parse(odd) == {
        "summary": "hourly",
        "ok": True,
        "coins": {"btc": {"ok": True, "hours": 1, "newest_hour": "2024-01-01T01:00:00Z"}},
    }


def test_job_writes_its_termination_message_when_it_cannot_run(tmp_path: Path) -> None:
    """Without Spark: a bad coin symbol ends the run early, and the message still says why."""
    from coinfeed.spark.hourly import main

    log = tmp_path / "termination-log"
    code = main(["--coin", "BTC!", "--lake", "/tmp/lake", "--termination-log", str(log)])
    assert code == 2
    data = json.loads(log.read_text())
    assert data["ok"] is False and "BTC!" in data["error"]

    with pytest.raises(SystemExit):
        main(["--coin", "btc", "--from", "2024-01-01T00", "--termination-log", str(log)])
    data = json.loads(log.read_text())
    assert data["ok"] is False and "--lake is required" in data["error"]


def test_a_java_failure_is_described_by_its_outer_exception_and_root_cause() -> None:
    from coinfeed.spark.summary import describe_error

    class Py4JJavaError(Exception):
        pass

    trace = (
        "An error occurred while calling o330.persist.\n"
        ": org.apache.kafka.common.KafkaException: Failed to create new KafkaAdminClient\n"
        "\tat org.apache.kafka.clients.admin.KafkaAdminClient.createInternal(KafkaAdminClient.java:561)\n"
        "\tat org.apache.spark.sql.kafka010.ConsumerStrategy.createAdmin(ConsumerStrategy.scala:49)\n"
        "Caused by: org.apache.kafka.common.config.ConfigException: No resolvable bootstrap urls "
        "given in bootstrap.servers\n"
        "\tat org.apache.kafka.clients.ClientUtils.parseAndValidateAddresses(ClientUtils.java:103)\n"
    )
    assert describe_error(Py4JJavaError(trace)) == (
        "KafkaException: Failed to create new KafkaAdminClient (caused by ConfigException: "
        "No resolvable bootstrap urls given in bootstrap.servers)"
    )
    assert describe_error(ValueError("bad hour\nmore")) == "ValueError: bad hour"
    assert describe_error(RuntimeError()) == "RuntimeError"
