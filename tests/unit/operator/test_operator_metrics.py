"""The operator's metrics carry each feed's namespace and name, and forget a deleted feed."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from coinfeed import metric_names as mn
from coinfeed.operator.opmetrics import OperatorMetrics


def test_feed_readiness_per_feed_and_gone_after_delete() -> None:
    registry = CollectorRegistry()
    m = OperatorMetrics(registry)
    m.observe("coinfeed/btc-replay", "ok", "", 0.2, True)
    m.observe("coinfeed/eth-replay", "error", "KafkaUnavailable", 0.4, False)
    text = generate_latest(registry).decode()
    assert f'{mn.OPERATOR_FEED_READY}{{feed="btc-replay",namespace="coinfeed"}} 1.0' in text
    assert f'{mn.OPERATOR_FEED_READY}{{feed="eth-replay",namespace="coinfeed"}} 0.0' in text
    assert f'{mn.OPERATOR_FEEDS}{{ready="true"}} 1.0' in text
    m.forget("coinfeed/eth-replay")
    m.forget("coinfeed/never-seen")  # forgetting twice or an unknown feed is harmless
    text = generate_latest(registry).decode()
    assert 'feed="eth-replay"' not in text
    assert f'{mn.OPERATOR_FEED_READY}{{feed="btc-replay",namespace="coinfeed"}} 1.0' in text
