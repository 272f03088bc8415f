"""The demo's topics: the operator's desired state for the shipped manifests, with a retention
long enough that Kafka keeps every replayed hour (it deletes by record timestamp)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

from coinfeed.demo.run import load_feeds, replay_retention_hours, with_retention
from coinfeed.demo.sample import Window
from coinfeed.operator.desired import desired_topics

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests"
HOUR_MS = 3_600_000


def _window(hours: int) -> Window:
    start = datetime(2026, 11, 25, 14, tzinfo=UTC)
    return Window(start, start + timedelta(hours=hours))


def test_retention_covers_the_whole_replay_plus_a_day() -> None:
    assert replay_retention_hours(_window(48)) == 72
    assert replay_retention_hours(_window(2)) == 26


def test_demo_topics_keep_the_replayed_window_and_nothing_else_changes() -> None:
    feeds = load_feeds([MANIFESTS / "coinfeed-btc.yaml", MANIFESTS / "coinfeed-eth.yaml"])
    for feed in feeds:
        before = copy.deepcopy(feed.manifest)
        plain = {t.name: t for t in desired_topics(feed.manifest)}
        demo = {t.name: t for t in desired_topics(with_retention(feed.manifest, 72))}
        assert feed.manifest == before  # the loaded manifest is not modified
        assert (
            set(demo)
            == set(plain)
            == {
                f"coinfeed.{feed.coin}.prices",
                f"coinfeed.{feed.coin}.tweets",
            }
        )
        for name, topic in demo.items():
            hours = feed.manifest["spec"].get("topics", {}).get("retentionHours", 24)
            assert plain[name].config["retention.ms"] == str(hours * HOUR_MS)
            assert topic.config["retention.ms"] == str(72 * HOUR_MS)
            assert topic.partitions == plain[name].partitions
            assert topic.replication_factor == plain[name].replication_factor
            rest = {k: v for k, v in topic.config.items() if k != "retention.ms"}
            assert rest == {k: v for k, v in plain[name].config.items() if k != "retention.ms"}


def test_a_longer_manifest_retention_is_kept() -> None:
    manifest = {"spec": {"coin": "btc", "topics": {"retentionHours": 168}}}
    assert with_retention(manifest, 72)["spec"]["topics"]["retentionHours"] == 168
