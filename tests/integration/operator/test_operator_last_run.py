"""The feed's status tells how the hourly job's last run really went: the operator (under its
chart's RBAC) watches the Jobs of the feed's CronJob and reads the job's JSON summary from the
pod's termination message. There is no kubelet or Job controller here, so the test plays them: it
creates the Job and its pod as the CronJob would, and writes their status as they would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from localnode.operator_harness import condition, get_json, kubectl, wait_for
from tests.integration.operator.conftest import OperatorFactory
from tests.integration.operator.test_operator_feed import (
    _cronjob_of,
    _manifest,
    _ready,
    _status_is,
)


def _run_job(
    admin: Path,
    ns: str,
    cron: dict[str, Any],
    name: str,
    *,
    succeeded: bool,
    message: str,
    at: str,
) -> None:
    """A Job of ``cron`` that finished at ``at``, with one pod whose container ended with
    ``message`` as its termination message."""
    template = cron["spec"]["jobTemplate"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": template["metadata"]["labels"],
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": cron["metadata"]["name"],
                    "uid": cron["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": template["spec"],
    }
    kubectl(admin, "create", "-f", "-", input=json.dumps(job))
    pod_template = template["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-x1",
            "namespace": ns,
            "labels": {**pod_template["metadata"]["labels"], "batch.kubernetes.io/job-name": name},
        },
        "spec": pod_template["spec"],
    }
    kubectl(admin, "create", "-f", "-", input=json.dumps(pod))
    terminated = {
        "exitCode": 0 if succeeded else 1,
        "reason": "Completed" if succeeded else "Error",
        "message": message,
        "startedAt": at,
        "finishedAt": at,
    }
    container = pod_template["spec"]["containers"][0]
    pod_status = {
        "status": {
            "phase": "Succeeded" if succeeded else "Failed",
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
            ],
        }
    }
    _patch_status(admin, ns, "pod", f"{name}-x1", pod_status)
    if succeeded:
        conditions = [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": at},
            {"type": "Complete", "status": "True", "lastTransitionTime": at},
        ]
        counts = {"succeeded": 1, "completionTime": at}
    else:
        conditions = [
            {
                "type": t,
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
                "lastTransitionTime": at,
            }
            for t in ("FailureTarget", "Failed")
        ]
        counts = {"failed": 1}
    _patch_status(
        admin, ns, "job", name, {"status": {"startTime": at, "conditions": conditions, **counts}}
    )


def _patch_status(admin: Path, ns: str, kind: str, name: str, body: dict[str, Any]) -> None:
    kubectl(
        admin,
        "patch",
        kind,
        name,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(body),
    )


def _summary(coin: str, newest: str | None = None, error: str = "") -> str:
    entry: dict[str, Any] = (
        {"ok": False, "error": error} if error else {"ok": True, "hours": 2, "newest_hour": newest}
    )
    return json.dumps({"summary": "hourly", "ok": not error, "coins": {coin: entry}})


def _columns(admin: Path, ns: str) -> dict[str, str]:
    lines = kubectl(admin, "get", "cf", "btc", "-n", ns).stdout.splitlines()
    header, row = lines[0], lines[1]
    # Columns are separated by at least two spaces; split both lines at the header's positions.
    starts = [
        i for i in range(len(header)) if header[i] != " " and (i == 0 or header[i - 1] == " ")
    ]
    starts = [s for s in starts if s == 0 or header[s - 2 : s] == "  "]
    bounds = [*starts, len(row) + 1]
    return {
        header[bounds[i] : bounds[i + 1]].strip(): row[bounds[i] : bounds[i + 1]].strip()
        for i in range(len(starts))
    }


def test_status_reports_the_last_runs_real_outcome(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    start_operator(ns, kafka_cluster.bootstrap, drift_interval=600.0)  # events, not the timer
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin))
    feed = _ready(admin, ns)
    # Nothing has run: no guessed hour, and the unknown outcome does not make the feed unready.
    assert "lastHour" not in feed["status"] and "lastRun" not in feed["status"]
    assert condition(feed, "LastRunSucceeded")["status"] == "Unknown"  # type: ignore[index]
    cron = _cronjob_of(admin, ns)

    # 1. A run fails: LastRunSucceeded and Ready are False with the Job's reason and the error
    #    the job put in its summary.
    error = "KafkaException: Failed to construct kafka consumer"
    _run_job(
        admin,
        ns,
        cron,
        "btc-hourly-29000000",
        succeeded=False,
        message=_summary(coin, error=error),
        at="2026-01-01T13:09:00Z",
    )
    feed = wait_for(
        "LastRunSucceeded=False",
        _status_is(admin, ns, "LastRunSucceeded", "False", reason="BackoffLimitExceeded"),
    )
    assert error in condition(feed, "LastRunSucceeded")["message"]  # type: ignore[index]
    ready = condition(feed, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "BackoffLimitExceeded")
    assert feed["status"]["lastRun"]["job"] == "btc-hourly-29000000"
    assert "lastHour" not in feed["status"]
    assert _columns(admin, ns)["LAST RUN"] == "Failed"
    events = get_json(admin, "events", "-n", ns, "--field-selector", "reason=BackoffLimitExceeded")
    assert events["items"], "no Warning event for the failed run"

    # 2. The next run succeeds and wrote hour 12: LAST HOUR is 12 (from the job's summary, not
    #    the hour before the run), and the feed is Ready again.
    _run_job(
        admin,
        ns,
        cron,
        "btc-hourly-29000060",
        succeeded=True,
        message=_summary(coin, newest="2026-01-01T12:00:00Z"),
        at="2026-01-01T14:07:00Z",
    )
    feed = wait_for("Ready=True again", _status_is(admin, ns, "Ready", "True"))
    assert condition(feed, "LastRunSucceeded")["status"] == "True"  # type: ignore[index]
    assert feed["status"]["lastHour"] == "2026-01-01T12:00:00Z"
    assert feed["status"]["lastRun"]["result"] == "Succeeded"
    columns = _columns(admin, ns)
    assert (columns["LAST HOUR"], columns["LAST RUN"], columns["READY"]) == (
        "2026-01-01T12:00:00Z",
        "Succeeded",
        "True",
    )
