"""Replay feeds: the example manifests run on a cluster without network, from the sample in the
producer image; the producer reads the operator's environment as the settings it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from coinfeed import producer_env as penv
from coinfeed.operator.desired import producer_deployment
from coinfeed.operator.settings import OperatorSettings
from coinfeed.operator.spec import SpecError, parse_spec
from coinfeed.producers.settings import parse

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("coinfeed-*-replay.yaml"))
SETTINGS = OperatorSettings(kafka_bootstrap="kafka:9092", producer_image="p:1", spark_image="s:1")


def _env(dep: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_both_replay_examples_exist_and_name_files_the_image_ships() -> None:
    assert [p.name for p in EXAMPLES] == ["coinfeed-btc-replay.yaml", "coinfeed-eth-replay.yaml"]
    dockerfile = (ROOT / "images" / "producer" / "Dockerfile").read_text()
    assert "COPY samples/*.jsonl.gz /opt/coinfeed/samples/" in dockerfile
    for path in EXAMPLES:
        feed = parse_spec(yaml.safe_load(path.read_text()))
        for name in (feed.prices.replay_file, feed.tweets.replay_file):
            assert name.startswith("/opt/coinfeed/samples/")
            assert (ROOT / "samples" / Path(name).name).is_file(), name


@pytest.mark.parametrize("kind", ["prices", "tweets"])
def test_replay_producer_env_parses_to_hour_rebase_and_event_timestamps(kind: str) -> None:
    feed = parse_spec(yaml.safe_load(EXAMPLES[0].read_text()))
    env = _env(producer_deployment("btc-replay", "ns", "u", feed, kind, SETTINGS))
    assert env[penv.REPLAY_REBASE] == "hour"
    assert env[penv.KAFKA_TIMESTAMP] == "event"
    assert env[penv.REPLAY_SPEED] == "0"
    # The producer, given only that environment, replays as the feed says.
    s = parse([kind], env)
    assert (s.source, s.rebase, s.kafka_timestamp, s.replay_speed) == ("replay", "hour", "event", 0)
    assert str(s.replay_file) == env[penv.REPLAY_FILE]


def test_replay_speed_is_passed_and_live_sources_get_no_replay_env() -> None:
    manifest = yaml.safe_load(EXAMPLES[1].read_text())
    manifest["spec"]["prices"]["replaySpeed"] = 60
    feed = parse_spec(manifest)
    assert (
        _env(producer_deployment("eth", "ns", "u", feed, "prices", SETTINGS))[penv.REPLAY_SPEED]
        == "60"
    )
    live = yaml.safe_load((ROOT / "manifests" / "coinfeed-btc.yaml").read_text())
    env = _env(producer_deployment("btc", "ns", "u", parse_spec(live), "prices", SETTINGS))
    assert not {penv.REPLAY_REBASE, penv.KAFKA_TIMESTAMP, penv.REPLAY_FILE} & env.keys()


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"prices": {"source": "replay", "pair": "BTC/USDT"}}, "spec.prices.replayFile"),
        (
            {
                "prices": {
                    "source": "replay",
                    "pair": "BTC/USDT",
                    "replayFile": "/f",
                    "replaySpeed": -1,
                }
            },
            "spec.prices.replaySpeed",
        ),
        ({"tweets": {"enabled": True, "source": "replay"}}, "spec.tweets.replayFile"),
    ],
)
def test_bad_replay_spec_names_the_field(patch: dict[str, Any], field: str) -> None:
    manifest = yaml.safe_load(EXAMPLES[0].read_text())
    manifest["spec"].update(patch)
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        parse_spec(manifest)
