"""Pure decisions: topic plans, conditions, drift, settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from coinfeed.operator import conditions as cond
from coinfeed.operator.desired import DesiredTopic
from coinfeed.operator.drift import differences, spec_drift
from coinfeed.operator.kafka_apply import parse_topic_metadata
from coinfeed.operator.settings import SettingsError, settings_from_env
from coinfeed.operator.topicplan import ObservedTopic, plan_topics

CFG = {"retention.ms": "86400000", "min.insync.replicas": "2"}
WANT = [DesiredTopic("coinfeed.btc.prices", 6, 3, CFG)]


def test_plan_creates_missing_topic() -> None:
    plan = plan_topics(WANT, {}, live_brokers=3)
    assert [t.name for t in plan.create] == ["coinfeed.btc.prices"]
    assert not plan.unsupported


def test_plan_grows_partitions_and_alters_only_changed_config() -> None:
    have = ObservedTopic(
        "coinfeed.btc.prices", 3, 3, {"retention.ms": "1000", "min.insync.replicas": "2"}
    )
    plan = plan_topics(WANT, {have.name: have}, 3)
    assert plan.grow == {"coinfeed.btc.prices": 6}
    assert plan.alter == {"coinfeed.btc.prices": {"retention.ms": "86400000"}}
    assert not plan.create


def test_plan_in_sync_is_empty() -> None:
    have = ObservedTopic("coinfeed.btc.prices", 6, 3, dict(CFG))
    assert plan_topics(WANT, {have.name: have}, 3).empty


def test_rf_above_live_brokers_is_not_supported_and_not_created() -> None:
    plan = plan_topics(WANT, {}, live_brokers=1)
    assert not plan.create
    assert "replication factor 3 exceeds the 1 live broker" in plan.unsupported[0]


@pytest.mark.parametrize(
    ("have", "text"),
    [
        (ObservedTopic("coinfeed.btc.prices", 6, 1, CFG), "needs a partition reassignment"),
        (ObservedTopic("coinfeed.btc.prices", 9, 3, CFG), "cannot remove partitions"),
    ],
)
def test_what_kafka_cannot_do_is_reported(have: ObservedTopic, text: str) -> None:
    plan = plan_topics(WANT, {have.name: have}, 3)
    assert text in " ".join(plan.unsupported)


def test_parse_topic_metadata_skips_unknown_topics() -> None:
    meta = [
        {
            "name": "a",
            "error_code": 0,
            "partitions": [{"replica_nodes": [1, 2, 3]}, {"replica_nodes": [2, 3, 1]}],
        },
        {"name": "b", "error_code": 3, "partitions": []},
    ]
    out = parse_topic_metadata(meta)
    assert list(out) == ["a"]
    assert (out["a"].partitions, out["a"].replication_factor) == (2, 3)


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 12, 5, tzinfo=UTC)


def test_last_transition_time_changes_only_with_status() -> None:
    first = cond.merge_conditions(
        [], [cond.Condition("TopicsReady", False, "KafkaUnavailable", "x")], 1, T0
    )
    same = cond.merge_conditions(first, [cond.Condition("TopicsReady", False, "Other", "y")], 2, T1)
    flipped = cond.merge_conditions(
        same, [cond.Condition("TopicsReady", True, "TopicsInSync", "")], 2, T1
    )
    assert first[0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert same[0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert same[0]["reason"] == "Other" and same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T12:05:00Z"


def test_ready_needs_all_and_prefers_not_supported_reason() -> None:
    ok = cond.Condition("A", True, "Fine", "")
    assert cond.ready_condition([ok, ok]).ok
    r = cond.ready_condition(
        [
            cond.Condition("P", False, "ProducersUnavailable", "m"),
            cond.Condition("T", False, "NotSupported", "rf"),
        ]
    )
    assert (r.ok, r.reason) == (False, "NotSupported")


def _dep(replicas: int, available: int, gen: int = 1, observed: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"generation": gen},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "availableReplicas": available,
            "updatedReplicas": available,
        },
    }


def test_producers_condition() -> None:
    assert cond.producers_condition({"a": _dep(1, 1)}, False).ok
    assert cond.producers_condition({"a": _dep(1, 0)}, False).reason == "ProducersUnavailable"
    assert cond.producers_condition({"a": _dep(1, 1, gen=2, observed=1)}, False).ok is False
    assert cond.producers_condition({"a": None}, False).reason == "ProducerMissing"
    assert cond.producers_condition({"a": _dep(1, 1)}, True).reason == "Suspended"


def test_transitions_report_changed_status_or_reason_only() -> None:
    old = [{"type": "Ready", "status": "False", "reason": "X"}]
    assert cond.transitions(old, [{"type": "Ready", "status": "False", "reason": "X"}]) == []
    assert (
        len(cond.transitions(old, [{"type": "Ready", "status": "True", "reason": "AllReady"}])) == 1
    )


def test_drift_ignores_server_defaults_but_sees_changes() -> None:
    desired = {"spec": {"replicas": 1, "template": {"containers": [{"name": "c", "image": "a"}]}}}
    actual = {
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 600,
            "template": {
                "containers": [{"name": "c", "image": "a", "terminationMessagePath": "/dev"}]
            },
        }
    }
    assert differences(desired, actual) == []
    actual["spec"]["template"]["containers"][0]["image"] = "b"  # type: ignore[index]
    assert differences(desired, actual) == [".spec.template.containers[0].image"]
    assert spec_drift(
        {"metadata": {"labels": {"x": "1"}}, "spec": {}}, {"metadata": {"labels": {}}, "spec": {}}
    ) == [".metadata.labels.x"]


def test_settings_from_env_parses_and_names_bad_variables() -> None:
    s = settings_from_env(
        {
            "COINFEED_OPERATOR_KAFKA_BOOTSTRAP": "k:9092",
            "COINFEED_OPERATOR_HOURLY_COMMAND": '["spark-submit", "x.py"]',
            "COINFEED_OPERATOR_PRODUCER_RESOURCES": '{"requests": {"cpu": "1", "memory": "1Mi"}, "limits": {"cpu": "2", "memory": "2Mi"}}',
            "COINFEED_OPERATOR_DRIFT_INTERVAL_SECONDS": "2.5",
        }
    )
    assert s.kafka_bootstrap == "k:9092"
    assert s.hourly_command == ("spark-submit", "x.py")
    assert s.producer_resources.cpu_limit == "2"
    assert s.drift_interval_seconds == 2.5
    with pytest.raises(SettingsError, match="COINFEED_OPERATOR_HOURLY_COMMAND"):
        settings_from_env({"COINFEED_OPERATOR_HOURLY_COMMAND": "coinfeed hourly"})
    with pytest.raises(SettingsError, match="COINFEED_OPERATOR_PRODUCER_METRICS_PORT"):
        settings_from_env({"COINFEED_OPERATOR_PRODUCER_METRICS_PORT": "0"})
