"""Pure builders: spec -> topics, Deployments, Service, CronJob."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from coinfeed import producer_env as penv
from coinfeed.operator.desired import (
    desired_children,
    desired_topics,
    hourly_command,
    hourly_cronjob,
    producer_deployment,
    single_feed_group,
    unwanted_children,
)
from coinfeed.operator.settings import OperatorSettings
from coinfeed.operator.spec import SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[3]
BTC = yaml.safe_load((ROOT / "manifests" / "coinfeed-btc.yaml").read_text())
ETH = yaml.safe_load((ROOT / "manifests" / "coinfeed-eth.yaml").read_text())
SETTINGS = OperatorSettings(
    kafka_bootstrap="kafka:9092", producer_image="p:1", spark_image="s:1", pushgateway="pg:9091"
)


def _env(dep: dict[str, Any]) -> dict[str, str]:
    return {
        e["name"]: e.get("value", "")
        for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def test_desired_topics_from_manifest_names_rf_and_config() -> None:
    topics = desired_topics(BTC)
    assert [t.name for t in topics] == ["coinfeed.btc.prices", "coinfeed.btc.tweets"]
    for t in topics:
        assert (t.partitions, t.replication_factor) == (3, 3)
        assert t.config["retention.ms"] == str(24 * 3_600_000)
        assert t.config["min.insync.replicas"] == "2"


def test_desired_topics_accepts_spec_alone_and_applies_crd_defaults() -> None:
    topics = desired_topics({"coin": "SOL", "prices": {"source": "binance", "pair": "SOL/USDT"}})
    assert topics[0].name == "coinfeed.sol.prices"
    assert (topics[0].partitions, topics[0].replication_factor) == (3, 3)
    assert topics[0].config["retention.ms"] == "86400000"


def test_min_insync_defaults_to_at_most_rf() -> None:
    spec = {
        "coin": "btc",
        "prices": {"source": "binance", "pair": "BTC/USDT"},
        "topics": {"replicationFactor": 1},
    }
    assert desired_topics(spec)[0].config["min.insync.replicas"] == "1"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"coin": "b!"}, "spec.coin"),
        ({"prices": {"source": "binance"}}, "spec.prices.pair"),
        ({"topics": {"partitions": 0}}, "spec.topics.partitions"),
        (
            {"topics": {"replicationFactor": 2, "minInSyncReplicas": 3}},
            "spec.topics.minInSyncReplicas",
        ),
        ({"deletionPolicy": "Purge"}, "spec.deletionPolicy"),
        ({"tweets": {"enabled": True, "keywords": ["x"]}}, "spec.tweets.bearerTokenSecretRef"),
    ],
)
def test_bad_spec_names_the_field(patch: dict[str, Any], field: str) -> None:
    spec = {"coin": "btc", "prices": {"source": "binance", "pair": "BTC/USDT"}, **patch}
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        parse_spec(spec)


def test_children_for_btc_have_owner_refs_labels_and_security() -> None:
    feed = parse_spec(BTC)
    children = desired_children("btc", "ns", "uid-1", feed, SETTINGS)
    assert [(c["kind"], c["metadata"]["name"]) for c in children] == [
        ("Deployment", "btc-prices"),
        ("Deployment", "btc-tweets"),
        ("Service", "btc-metrics"),
    ]  # the hourly CronJob is shared per group (test_operator_groups)
    children.append(hourly_cronjob("btc", "ns", "uid-1", feed, SETTINGS))
    for c in children[:3]:
        (ref,) = c["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "coinfeed.io/v1alpha1",
            "kind": "CoinFeed",
            "name": "btc",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert c["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "coinfeed-operator"
    for c in (children[0], children[1], children[3]):
        pod = (
            c["spec"]["template"]["spec"]
            if c["kind"] == "Deployment"
            else c["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        )
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = pod["containers"][0]["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert pod["containers"][0]["resources"]["limits"]


# The X source (the example manifest uses Bluesky, which needs no credentials).
X_TWEETS = {
    "enabled": True,
    "source": "x-api",
    "keywords": ["$BTC", "bitcoin"],
    "languages": ["en"],
    "bearerTokenSecretRef": {"name": "x-api", "key": "token"},
}


def test_producer_deployment_command_env_and_secret_by_reference() -> None:
    feed = parse_spec(BTC)
    prices = producer_deployment("btc", "ns", "u", feed, "prices", SETTINGS)
    x_feed = parse_spec({**BTC["spec"], "tweets": X_TWEETS})
    tweets = producer_deployment("btc", "ns", "u", x_feed, "tweets", SETTINGS)
    c = prices["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["coinfeed", "producer", "prices"]
    assert c["image"] == "p:1"
    assert prices["spec"]["strategy"] == {"type": "Recreate"}
    assert _env(prices) == {
        penv.COIN: "btc",
        penv.KAFKA_BOOTSTRAP: "kafka:9092",
        penv.METRICS_PORT: "9400",
        penv.PRICE_SOURCE: "coingecko",  # the example avoids Binance's HTTP 451 to US users
        penv.PRICE_PAIR: "BTC/USD",
        penv.PRICE_MODE: "ticker",
        penv.POLL_INTERVAL_SECONDS: "30",
    }
    env = _env(tweets)
    assert env[penv.TWEET_KEYWORDS] == "$BTC,bitcoin"
    assert env[penv.X_BEARER_TOKEN_FILE] == "/var/run/secrets/coinfeed/x/token"
    assert penv.X_BEARER_TOKEN not in env  # never the token itself
    vols = {v["name"]: v for v in tweets["spec"]["template"]["spec"]["volumes"]}
    assert vols["x-bearer-token"]["secret"]["secretName"] == "x-api"
    assert vols["x-bearer-token"]["secret"]["items"] == [{"key": "token", "path": "token"}]
    c = tweets["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_bluesky_social_producer_needs_no_secret() -> None:
    feed = parse_spec(BTC)  # the example: tweets.source bluesky
    dep = producer_deployment("btc", "ns", "u", feed, "tweets", SETTINGS)
    env = _env(dep)
    assert env[penv.TWEET_SOURCE] == "bluesky"
    assert env[penv.TWEET_KEYWORDS] == "$BTC,bitcoin" and env[penv.TWEET_LANGUAGES] == "en"
    assert env[penv.SOCIAL_LOOKBACK_MINUTES] == "60"
    assert penv.JETSTREAM_URLS not in env  # the public instances, the producer's default
    assert penv.X_BEARER_TOKEN_FILE not in env and penv.X_API_BASE_URL not in env
    assert [v["name"] for v in dep["spec"]["template"]["spec"]["volumes"]] == ["tmp"]
    assert dep["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "coinfeed",
        "producer",
        "tweets",
    ]
    own = {
        **BTC["spec"]["tweets"],
        "jetstreamEndpoints": ["wss://js.example.org", "wss://b.example.org"],
    }
    dep = producer_deployment(
        "btc", "ns", "u", parse_spec({**BTC["spec"], "tweets": own}), "tweets", SETTINGS
    )
    assert _env(dep)[penv.JETSTREAM_URLS] == "wss://js.example.org,wss://b.example.org"


def test_suspend_scales_to_zero() -> None:
    spec = {**BTC["spec"], "suspend": True}
    children = desired_children("btc", "ns", "u", parse_spec(spec), SETTINGS)
    assert [c["spec"]["replicas"] for c in children if c["kind"] == "Deployment"] == [0, 0]


def test_tweets_disabled_means_no_tweets_deployment_and_it_is_removed() -> None:
    feed = parse_spec(ETH)
    kinds = [c["metadata"]["name"] for c in desired_children("eth", "ns", "u", feed, SETTINGS)]
    assert "eth-tweets" not in kinds
    assert unwanted_children("eth", feed) == [("Deployment", "eth-tweets")]
    assert unwanted_children("btc", parse_spec(BTC)) == []


def test_cronjob_runs_the_hourly_contract_command() -> None:
    feed = parse_spec(ETH)
    cron = hourly_cronjob("eth", "ns", "u", feed, SETTINGS)
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["schedule"] == "5 * * * *"
    assert cron["spec"]["successfulJobsHistoryLimit"] >= 1
    cmd = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd == [
        "coinfeed",
        "hourly",
        "--coin",
        "eth",
        "--lookback-hours",
        "3",
        "--lake",
        "/lake",
        "--bootstrap",
        "kafka:9092",
        "--retention-hours",
        "48",  # eth's topics.retentionHours
        "--pushgateway",
        "pg:9091",
    ]


def test_cronjob_passes_the_topic_retention_and_the_job_accepts_it() -> None:
    """The operator's command, parsed by the job's own parser: the gap search is bounded by the
    feed's topics.retentionHours, not the job's default of 24."""
    from coinfeed.spark.hourly import build_parser

    spec = {**ETH["spec"], "topics": {**ETH["spec"].get("topics", {}), "retentionHours": 72}}
    cmd = hourly_command(single_feed_group("eth", "ns", "u", parse_spec(spec)), SETTINGS)
    assert cmd[:2] == ["coinfeed", "hourly"]
    args = build_parser().parse_args(cmd[2:])
    assert args.retention_hours == 72
    assert args.coin == ["eth"] and args.lookback_hours == 3


def test_hourly_command_is_configurable_and_pushgateway_optional() -> None:
    s = OperatorSettings(hourly_command=("spark-submit", "/app/hourly.py"), kafka_bootstrap="k:1")
    cmd = hourly_command(single_feed_group("eth", "ns", "u", parse_spec(ETH)), s)
    assert cmd[:2] == ["spark-submit", "/app/hourly.py"]
    assert "--pushgateway" not in cmd


def test_empty_env_values_are_left_out() -> None:
    # The API server drops empty values; keeping them would look like drift forever.
    spec = {**BTC["spec"], "tweets": {"enabled": True, "source": "replay", "replayFile": "/r"}}
    dep = producer_deployment("btc", "ns", "u", parse_spec(spec), "tweets", SETTINGS)
    assert all(e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"])
    assert penv.TWEET_KEYWORDS not in _env(dep)
