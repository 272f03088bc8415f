"""A source that refuses this location (HTTP 451): the producer stops with a termination message
saying so, and the operator turns it into SourceAvailable=False, reason GeoBlocked (pure parts)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer

from coinfeed import producer_status as ps
from coinfeed.operator import conditions as cond
from coinfeed.operator.reconcile import status_from_children
from coinfeed.operator.spec import parse_spec
from coinfeed.producers.pmetrics import ProducerMetrics
from coinfeed.producers.retry import RetryPolicy
from coinfeed.producers.sources import CoinGeckoPriceSource, geo_blocked_message

FAST = RetryPolicy(base=0.01, cap=0.05, max_wait=2.0, max_attempts=5)
SPEC = parse_spec({"coin": "btc", "prices": {"source": "binance", "pair": "BTC/USDT"}})


def _gecko(httpserver: HTTPServer) -> CoinGeckoPriceSource:
    m = ProducerMetrics("btc", "prices", "coingecko")
    return CoinGeckoPriceSource("btc", "BTC/USD", "simple", 10, m, FAST, httpserver.url_for("/"))


def test_only_http_451_makes_a_source_refuse_for_good(httpserver: HTTPServer) -> None:
    src = _gecko(httpserver)
    httpserver.expect_oneshot_request("/api/v3/simple/price").respond_with_data("", status=503)
    src.poll()
    assert src.refused == ""  # a server error may pass: keep polling
    httpserver.expect_oneshot_request("/api/v3/simple/price").respond_with_data("", status=451)
    src.poll()
    assert "HTTP 451" in src.refused and "coingecko" in src.refused


def _pod(message: str | None, *, ready: bool = False, at: str = "2026-01-01T10:00:00Z") -> Any:
    term = {"exitCode": ps.EXIT_SOURCE_REFUSED, "finishedAt": at}
    if message is not None:
        term["message"] = message
    return {
        "status": {
            "containerStatuses": [
                {
                    "name": "producer",
                    "ready": ready,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": term},
                }
            ]
        }
    }


BLOCKED = ps.termination_message(
    ps.GEO_BLOCKED, "prices", "binance", geo_blocked_message("binance")
)


def test_the_termination_message_round_trips_and_fits(tmp_path: Path) -> None:
    said = ps.parse_termination_message(BLOCKED)
    assert said == {
        "producer": "prices",
        "source": "binance",
        "reason": "GeoBlocked",
        "message": geo_blocked_message("binance"),
    }
    long = ps.termination_message(ps.GEO_BLOCKED, "prices", "binance", "x" * 10_000)
    assert len(long.encode()) <= 4096 and ps.parse_termination_message(long) is not None
    assert ps.parse_termination_message("Traceback ...\nValueError") is None
    target = tmp_path / "termination-log"
    env = {ps.TERMINATION_LOG_ENV: str(target)}
    assert not ps.write_termination_message(BLOCKED, env)  # no such file: not on Kubernetes
    target.touch()
    assert ps.write_termination_message(BLOCKED, env) and target.read_text() == BLOCKED


def test_refusals_come_from_producers_that_are_not_ready() -> None:
    assert cond.source_refusals([_pod(BLOCKED)]) == [ps.parse_termination_message(BLOCKED)]
    assert cond.source_refusals([_pod(BLOCKED, ready=True)]) == []  # it works again
    assert cond.source_refusals([_pod("java.lang.OutOfMemoryError")]) == []
    assert cond.source_refusals([_pod(None)]) == []
    c = cond.source_condition(cond.source_refusals([_pod(BLOCKED)]))
    assert (c.status, c.reason) == ("False", "GeoBlocked")
    assert c.message.startswith("prices source binance: binance answers HTTP 451")
    assert cond.source_condition([]).status == "True"


class Kube:
    def __init__(self, pods: list[dict[str, Any]], available: bool) -> None:
        self.pods, self.pod_lists = pods, 0
        n = 1 if available else 0
        self.deployment = {
            "metadata": {"generation": 1},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "availableReplicas": n, "updatedReplicas": 1},
        }

    def ensure(self, desired: Mapping[str, Any]) -> tuple[str, list[str]]:
        return "unchanged", []

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.deployment if (kind, name) == ("Deployment", "btc-prices") else None

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        return False

    def list_hourly_cronjobs(self, namespace: str) -> list[dict[str, Any]]:
        return []

    def list_producer_pods(self, namespace: str, feed: str) -> list[dict[str, Any]]:
        self.pod_lists += 1
        return self.pods

    def list_jobs(self, namespace: str, cronjob: str) -> list[dict[str, Any]]:
        return []

    def list_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        return []


def _status(kube: Kube) -> dict[str, Any]:
    status = status_from_children(
        SPEC,
        "btc",
        "ns",
        kube,
        cond.Condition(cond.TOPICS_READY, True, "TopicsInSync", ""),
        1,
        [],
        uid="u",
    )
    return {c["type"]: c for c in status["conditions"]}


def test_a_geo_blocked_source_is_the_reason_the_feed_is_not_ready() -> None:
    by_type = _status(Kube([_pod(BLOCKED)], available=False))
    source = by_type["SourceAvailable"]
    assert (source["status"], source["reason"]) == ("False", "GeoBlocked")
    assert "binance" in source["message"] and "HTTP 451" in source["message"]
    ready = by_type["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "GeoBlocked")
    assert ready["message"].startswith("SourceAvailable: prices source binance")
    # Healthy producers: no pod list at all, and the source condition is True.
    healthy = Kube([_pod(BLOCKED)], available=True)
    assert _status(healthy)["SourceAvailable"]["status"] == "True" and healthy.pod_lists == 0


def test_the_x_api_answering_451_refuses_too(httpserver: HTTPServer) -> None:
    from tests.unit.producers.fakes import FakeX, Scripted
    from tests.unit.producers.test_producer_live_sources import _x, requests_total

    fake = FakeX()
    fake.script.append(Scripted(451, b'{"title": "Unavailable For Legal Reasons"}'))
    src, m, _ = _x(httpserver, fake)
    assert src.poll().records == []
    assert "X API answers HTTP 451" in src.refused and "bluesky" in src.refused
    assert requests_total(m, "geo_blocked") == 1 and requests_total(m, "client_error") == 0
    # Any other refusal (403, 404, ...) stays a client error that the next poll may not repeat.
    fake.script.append(Scripted(403, b'{"title": "Forbidden"}'))
    other, m2, _ = _x(httpserver, fake)
    other.poll()
    assert other.refused == "" and requests_total(m2, "client_error") == 1
