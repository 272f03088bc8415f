"""Two CoinFeeds for one coin: the first created owns it, the other owns nothing (pure parts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from coinfeed.operator import claims
from coinfeed.operator import conditions as cond
from coinfeed.operator.reconcile import reconcile_feed
from coinfeed.operator.settings import OperatorSettings

SPEC = {"coin": "btc", "prices": {"source": "binance", "pair": "BTC/USDT"}}


def feed(name: str, created: str, coin: str = "btc", ns: str = "feeds") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
        "spec": {**SPEC, "coin": coin},
    }


A = feed("zeta", "2026-01-01T10:00:00Z")
B = feed("alpha", "2026-01-01T11:00:00Z")
SAME_SECOND = feed("beta", "2026-01-01T10:00:00Z")


def test_the_oldest_feed_owns_the_coin_then_the_name_decides() -> None:
    feeds = [A, B, SAME_SECOND, feed("eth", "2026-01-01T09:00:00Z", coin="eth")]
    # Same second: "beta" sorts before "zeta", so beta owns the coin and both others wait.
    assert claims.coin_owner(SAME_SECOND, feeds) is None
    assert claims.coin_owner(A, feeds) == SAME_SECOND
    assert claims.coin_owner(B, feeds) == SAME_SECOND
    assert claims.coin_owner(B, [A, B]) == A
    # Another coin, or the feed alone, is no conflict.
    assert claims.coin_owner(feed("eth", "2026-01-01T12:00:00Z", coin="eth"), feeds) is None
    assert claims.coin_owner(B, [B]) is None
    # Coins compare as topics name them.
    assert claims.coin_owner(feed("b2", "2026-01-01T12:00:00Z", coin="BTC"), [A]) == A


def test_a_feed_being_deleted_keeps_its_claim_until_it_is_gone() -> None:
    deleting = {**A, "metadata": {**A["metadata"], "deletionTimestamp": "2026-01-02T00:00:00Z"}}
    assert claims.coin_owner(B, [deleting, B]) == deleting
    assert claims.coin_owner(B, [B]) is None


class NoKafka:
    def reconcile(self, desired: Sequence[Any]) -> Any:
        raise AssertionError("a conflicting feed must not touch Kafka")


class RecordingKube:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    def ensure(self, desired: Mapping[str, Any]) -> tuple[str, list[str]]:
        raise AssertionError("a conflicting feed must not create children")

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        self.deleted.append((kind, name))
        return name == "alpha-prices"  # left over from a creation race

    def list_hourly_cronjobs(self, namespace: str) -> list[dict[str, Any]]:
        return []

    def list_jobs(self, namespace: str, cronjob: str) -> list[dict[str, Any]]:
        return []

    def list_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        return []


def test_the_second_feed_creates_nothing_and_says_who_owns_the_coin() -> None:
    kube = RecordingKube()
    outcome = reconcile_feed(
        name="alpha",
        namespace="feeds",
        uid="u",
        generation=1,
        spec=SPEC,
        old_status=None,
        settings=OperatorSettings(),
        kafka=NoKafka(),
        kube=kube,
        coin_owner="feeds/zeta",
    )
    by_type = {c["type"]: c for c in outcome.status["conditions"]}
    assert (by_type["Conflict"]["status"], by_type["Conflict"]["reason"]) == (
        "True",
        "CoinConflict",
    )
    assert "feeds/zeta" in by_type["Conflict"]["message"]
    assert (by_type["Ready"]["status"], by_type["Ready"]["reason"]) == ("False", "CoinConflict")
    assert "feeds/zeta" in by_type["Ready"]["message"]
    for t in ("TopicsReady", "ProducersReady", "AggregationScheduled"):
        assert by_type[t]["status"] == "False"
    assert outcome.status["topics"] == [] and outcome.result == "error"
    # Whatever it may own is removed; nothing is created.
    assert ("CronJob", "alpha-hourly") in kube.deleted
    warnings = [(e.type, e.reason) for e in outcome.events]
    assert ("Warning", "CoinConflict") in warnings
    assert ("Normal", "Deleted") in warnings


def test_conflict_events_have_the_right_polarity() -> None:
    conflict = cond.merge_conditions([], [cond.conflict_condition("feeds/zeta", "btc")], 1)
    owned = cond.merge_conditions(conflict, [cond.conflict_condition(None, "btc")], 1)
    assert cond.transition_events([], conflict)[0][:2] == ("Warning", "CoinConflict")
    assert cond.transition_events(conflict, owned)[0][:2] == ("Normal", "CoinOwned")
    # A feed that always owned its coin gets no Event for that.
    assert cond.transition_events([], owned) == []
