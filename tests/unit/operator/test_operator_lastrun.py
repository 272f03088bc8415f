"""The hourly job's last run, read from its CronJob's Jobs and their pods' termination messages
(pure), and the status the reconcile writes from it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from coinfeed.operator import conditions as cond
from coinfeed.operator import lastrun
from coinfeed.operator.reconcile import status_from_children
from coinfeed.operator.spec import parse_spec

CRON_UID = "cron-uid"
FEED_UID = "feed-uid"
SPEC = parse_spec({"coin": "btc", "prices": {"source": "binance", "pair": "BTC/USDT"}})


def job(
    name: str,
    state: str | None,
    at: str,
    owner: str = CRON_UID,
    reason: str = "BackoffLimitExceeded",
    coins: str = "btc",
) -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": "2026-01-01T00:00:00Z"}
    if state == "Complete":
        status["completionTime"] = at
        status["conditions"] = [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": at},
            {"type": "Complete", "status": "True", "lastTransitionTime": at},
        ]
    elif state == "Failed":
        status["conditions"] = [
            {
                "type": "Failed",
                "status": "True",
                "reason": reason,
                "message": "Job has reached the specified backoff limit",
                "lastTransitionTime": at,
            }
        ]
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": "2026-01-01T00:05:00Z",
            "ownerReferences": [{"kind": "CronJob", "uid": owner}],
        },
        # What the shared CronJob's template said when the Job was made: the coins it runs.
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "hourly", "command": ["coinfeed", "hourly", "--coin", coins]}
                    ]
                }
            }
        },
        "status": status,
    }


def pod(message: str | None, finished: str = "2026-01-01T13:07:00Z") -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": 0, "finishedAt": finished}
    if message is not None:
        term["message"] = message
    return {"status": {"containerStatuses": [{"name": "hourly", "state": {"terminated": term}}]}}


def summary(newest: str | None = "2026-01-01T12:00:00Z", error: str = "") -> str:
    entry: dict[str, Any] = (
        {"ok": False, "error": error} if error else {"ok": True, "hours": 2, "newest_hour": newest}
    )
    return json.dumps({"summary": "hourly", "ok": not error, "coins": {"btc": entry}})


def test_newest_finished_job_of_this_cronjob_only() -> None:
    jobs = [
        job("btc-hourly-1", "Complete", "2026-01-01T12:07:00Z"),
        job("btc-hourly-2", "Failed", "2026-01-01T13:09:00Z"),
        job("btc-hourly-3", None, ""),  # still running
        job("other", "Complete", "2026-01-01T14:00:00Z", owner="someone-else"),
    ]
    newest = lastrun.newest_finished_job(jobs, CRON_UID)
    assert newest is not None and newest["metadata"]["name"] == "btc-hourly-2"
    assert lastrun.newest_finished_job(jobs[2:], CRON_UID) is None


def test_a_successful_run_reports_the_newest_hour_it_wrote() -> None:
    run = lastrun.last_run(
        job("btc-hourly-1", "Complete", "2026-01-01T13:07:30Z"), [pod(summary())], "btc"
    )
    assert run is not None and run.succeeded
    assert run.newest_hour == "2026-01-01T12:00:00Z"
    c = lastrun.last_run_condition(run)
    assert (c.status, c.reason) == ("True", "Completed")
    assert "newest hour written 2026-01-01T12:00:00Z" in c.message
    assert run.status() == {
        "job": "btc-hourly-1",
        "result": "Succeeded",
        "finishedAt": "2026-01-01T13:07:30Z",
        "reason": "Completed",
        "message": c.message,
    }


def test_a_failed_run_is_false_with_the_jobs_reason_and_the_error_and_fails_ready() -> None:
    error = "KafkaException: Failed to construct kafka consumer"
    run = lastrun.last_run(
        job("btc-hourly-2", "Failed", "2026-01-01T13:09:00Z"),
        [pod(summary(error="old attempt"), "2026-01-01T13:06:00Z"), pod(summary(error=error))],
        "btc",
    )
    assert run is not None and not run.succeeded and run.newest_hour is None
    c = lastrun.last_run_condition(run)
    assert (c.status, c.reason) == ("False", "BackoffLimitExceeded")
    assert error in c.message and "old attempt" not in c.message  # the newest pod's message
    ok = cond.Condition(cond.TOPICS_READY, True, "TopicsInSync", "")
    ready = cond.ready_condition([ok, c])
    assert (ready.ok, ready.reason) == (False, "BackoffLimitExceeded")
    assert ready.message.startswith("LastRunSucceeded: job btc-hourly-2 failed")


def test_a_crash_without_summary_reports_the_log_tail_the_kubelet_kept() -> None:
    tail = (
        "Traceback (most recent call last):\n  ...\njava.lang.OutOfMemoryError: Java heap space\n"
    )
    run = lastrun.last_run(
        job("btc-hourly-3", "Failed", "2026-01-01T13:09:00Z", reason="weird reason!"),
        [pod(tail)],
        "btc",
    )
    assert run is not None
    assert run.reason == "JobFailed"  # not CamelCase: a safe reason instead
    assert "java.lang.OutOfMemoryError: Java heap space" in run.message
    no_pod = lastrun.last_run(job("btc-hourly-4", "Failed", "2026-01-01T13:09:00Z"), [], "btc")
    assert no_pod is not None and "reached the specified backoff limit" in no_pod.message


def test_no_finished_run_is_unknown_and_does_not_fail_ready() -> None:
    c = lastrun.last_run_condition(None)
    assert (c.status, c.reason) == ("Unknown", "NoRunYet")
    assert cond.ready_condition([c]).ok
    merged = cond.merge_conditions([], [c], 1)
    assert merged[0]["status"] == "Unknown"


def test_last_hour_never_goes_back() -> None:
    older = lastrun.last_run(
        job("j", "Complete", "2026-01-01T15:07:00Z"),
        [pod(summary("2026-01-01T03:00:00Z"))],
        "btc",
    )
    assert lastrun.newer_hour("2026-01-01T12:00:00Z", older) == "2026-01-01T12:00:00Z"
    assert lastrun.newer_hour(None, older) == "2026-01-01T03:00:00Z"
    assert lastrun.newer_hour(None, None) is None


class FakeKube:
    def __init__(self, objects: Mapping[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = dict(objects)
        self.jobs: list[dict[str, Any]] = []
        self.pods: dict[str, list[dict[str, Any]]] = {}
        self.pod_lists = 0

    def ensure(self, desired: Mapping[str, Any]) -> tuple[str, list[str]]:
        return "unchanged", []

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        return False

    def list_hourly_cronjobs(self, namespace: str) -> list[dict[str, Any]]:
        return [c for (kind, _), c in self.objects.items() if kind == "CronJob"]

    def list_jobs(self, namespace: str, cronjob: str) -> list[dict[str, Any]]:
        return self.jobs

    def list_producer_pods(self, namespace: str, feed: str) -> list[dict[str, Any]]:
        return []

    def list_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        self.pod_lists += 1
        return self.pods.get(job, [])


@pytest.fixture
def kube() -> FakeKube:
    cron = {
        "metadata": {
            "name": "coinfeed-hourly-0123456789-0",
            "uid": CRON_UID,
            "labels": {"coinfeed.io/hourly-group": "0123456789"},
            "ownerReferences": [{"kind": "CoinFeed", "name": "btc", "uid": FEED_UID}],
        },
        "spec": {"suspend": False},
        # Once, the operator derived LAST HOUR from this: 13:07 -> 12:00, whatever the run did.
        "status": {"lastSuccessfulTime": "2026-01-01T13:07:42Z"},
    }
    available = {
        "metadata": {"generation": 1},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "availableReplicas": 1, "updatedReplicas": 1},
    }
    return FakeKube(
        {
            ("CronJob", "coinfeed-hourly-0123456789-0"): cron,
            ("Deployment", "btc-prices"): available,
        }
    )


def _status(kube: FakeKube, old: Mapping[str, Any] | None = None) -> dict[str, Any]:
    old = old or {}
    return status_from_children(
        SPEC,
        "btc",
        "ns",
        kube,
        cond.Condition(cond.TOPICS_READY, True, "TopicsInSync", ""),
        1,
        old.get("conditions", []),
        old_status=old,
        uid=FEED_UID,
    )


def _condition(status: Mapping[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == ctype)


def test_status_tells_what_the_last_run_did(kube: FakeKube) -> None:
    # No run yet: no LAST HOUR at all (not the hour before some schedule time).
    status = _status(kube)
    assert "lastHour" not in status and "lastRun" not in status
    assert _condition(status, "LastRunSucceeded")["status"] == "Unknown"

    # A run that wrote nothing new (no data) completes: LAST HOUR stays unknown, not "12:00".
    kube.jobs = [job("btc-hourly-1", "Complete", "2026-01-01T13:07:42Z")]
    kube.pods["btc-hourly-1"] = [pod(summary(newest=None))]
    status = _status(kube)
    assert "lastHour" not in status
    assert status["lastRun"]["result"] == "Succeeded"

    # A run that wrote hour 09 (a backfill): LAST HOUR is 09, from the job's own summary.
    kube.jobs.append(job("btc-hourly-2", "Complete", "2026-01-01T14:07:00Z"))
    kube.pods["btc-hourly-2"] = [pod(summary("2026-01-01T09:00:00Z"))]
    status = _status(kube, status)
    assert status["lastHour"] == "2026-01-01T09:00:00Z"

    # The next run fails: Ready is False with the job's reason; LAST HOUR keeps what was written.
    kube.jobs.append(job("btc-hourly-3", "Failed", "2026-01-01T15:09:00Z"))
    kube.pods["btc-hourly-3"] = [pod(summary(error="KafkaException: broker down"))]
    status = _status(kube, status)
    assert status["lastHour"] == "2026-01-01T09:00:00Z"
    assert status["lastRun"]["result"] == "Failed"
    last = _condition(status, "LastRunSucceeded")
    assert (last["status"], last["reason"]) == ("False", "BackoffLimitExceeded")
    ready = _condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "BackoffLimitExceeded")
    assert "KafkaException: broker down" in ready["message"]

    # Settled: the same finished Job is not read again (no pod list per drift round).
    lists = kube.pod_lists
    assert _status(kube, status) == status
    assert kube.pod_lists == lists
