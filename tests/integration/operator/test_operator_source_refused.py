"""A price source answering HTTP 451 (unavailable for legal reasons), end to end: the producer the
operator's Deployment describes, run as a real process against a local server that answers 451 and
real Kafka, stops with a termination message; the operator (under its chart's RBAC, against a real
API server) reads it from the producer's pod status and shows SourceAvailable=False and Ready=False,
both with reason GeoBlocked naming the source. No kubelet runs here: the test writes the pod's
status as the kubelet would, with the message the producer really wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer

from coinfeed import producer_status as ps
from coinfeed.producer_env import COINGECKO_BASE_URL, KAFKA_BOOTSTRAP, METRICS_PORT
from localnode import operator_harness as harness
from localnode.operator_harness import condition, get_json, kubectl, wait_for
from tests.integration.operator.conftest import OperatorFactory
from tests.integration.operator.test_operator_feed import _manifest, _ready, _status_is
from tests.integration.operator.test_operator_last_run import _patch_status
from tests.support.ports import free_port

PRICES = {"source": "coingecko", "pair": "BTC/USD", "pollIntervalSeconds": 5}


def _run_producer(
    dep: dict[str, Any], bootstrap: str, server: HTTPServer, tmp_path: Path
) -> tuple[int, str]:
    """The Deployment's container as a local process; its exit code and termination message."""
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    env[KAFKA_BOOTSTRAP] = bootstrap  # the in-cluster Service name means nothing on this host
    env[METRICS_PORT] = str(free_port())
    env[COINGECKO_BASE_URL] = server.url_for("/")
    log = tmp_path / "termination-log"
    log.touch()  # what the kubelet mounts into every container
    env[ps.TERMINATION_LOG_ENV] = str(log)
    done = subprocess.run(
        [sys.executable, "-m", "coinfeed", *container["command"][1:]],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/tmp",
            "PYTHONPATH": str(harness.REPO_ROOT),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=harness.REPO_ROOT,
    )
    print(done.stdout[-3000:], done.stderr[-3000:])
    return done.returncode, log.read_text()


def test_a_geo_blocked_source_shows_on_the_feed(
    admin: Path,
    kube_namespace: str,
    kafka_cluster: Any,
    start_operator: OperatorFactory,
    coin: str,
    httpserver: HTTPServer,
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    start_operator(ns, kafka_cluster.bootstrap)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin, prices=PRICES))
    _ready(admin, ns)  # both producers available, as a kubelet would report

    # 1. The producer as the Deployment runs it: the source answers 451, it stops and says why.
    httpserver.expect_request("/api/v3/simple/price").respond_with_data("", status=451)
    dep = get_json(admin, "deployment", "btc-prices", "-n", ns)
    code, message = _run_producer(dep, kafka_cluster.bootstrap, httpserver, tmp_path)
    assert code == ps.EXIT_SOURCE_REFUSED
    said = ps.parse_termination_message(message)
    assert said is not None and (said["reason"], said["source"]) == ("GeoBlocked", "coingecko")

    # 2. What the kubelet then reports: the Deployment unavailable, its pod crash-looping with
    #    that termination message.
    pod_template = dep["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "btc-prices-x1", "namespace": ns, **pod_template["metadata"]},
        "spec": pod_template["spec"],
    }
    kubectl(admin, "create", "-f", "-", input=json.dumps(pod))
    container = pod_template["spec"]["containers"][0]
    status = {
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {
                        "terminated": {
                            "exitCode": code,
                            "reason": "Error",
                            "message": message,
                            "startedAt": "2026-01-01T10:00:00Z",
                            "finishedAt": "2026-01-01T10:00:05Z",
                        }
                    },
                }
            ],
        }
    }
    _patch_status(admin, ns, "pod", "btc-prices-x1", status)
    unavailable = {"status": {"availableReplicas": 0, "readyReplicas": 0, "replicas": 1}}
    _patch_status(admin, ns, "deployment", "btc-prices", unavailable)

    feed = wait_for(
        "SourceAvailable=False GeoBlocked",
        _status_is(admin, ns, "SourceAvailable", "False", reason="GeoBlocked"),
    )
    source = condition(feed, "SourceAvailable")
    assert source is not None and "coingecko" in source["message"]
    assert "HTTP 451" in source["message"]
    ready = condition(feed, "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "GeoBlocked")
    events = get_json(admin, "events", "-n", ns, "--field-selector", "reason=GeoBlocked")
    assert events["items"], "no Warning event for the refusing source"

    # 3. Fixed (e.g. another source): the pod is gone, the producers available, Ready again.
    kubectl(admin, "delete", "pod", "btc-prices-x1", "-n", ns)
    feed = _ready(admin, ns)
    assert condition(feed, "SourceAvailable")["status"] == "True"  # type: ignore[index]
