"""With a k8s:// Spark master the operator (under its chart's RBAC) keeps each feed's executor pod
template ConfigMap next to the CronJob that mounts it, reverts edits to it, and removes it when
the master goes back to local mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from localnode.operator_harness import get_json, kubectl, wait_for
from tests.integration.operator.conftest import OperatorFactory
from tests.integration.operator.test_operator_feed import _cronjob_of, _manifest, _status_is

K8S = {
    "COINFEED_OPERATOR_SPARK_MASTER": "k8s://https://kubernetes.default.svc",
    "COINFEED_OPERATOR_SPARK_SERVICE_ACCOUNT": "coinfeed-spark",
    "COINFEED_OPERATOR_SPARK_RPC_SECRET": "coinfeed-operator-spark-rpc",
}


def test_executor_template_follows_the_spark_master(
    admin: Path, kube_namespace: str, kafka_cluster: Any, start_operator: OperatorFactory, coin: str
) -> None:
    ns = kube_namespace
    op = start_operator(ns, kafka_cluster.bootstrap, drift_interval=1.0, extra_env=K8S)
    kubectl(admin, "apply", "-n", ns, "-f", "-", input=_manifest(coin))
    wait_for("TopicsReady", _status_is(admin, ns, "TopicsReady", "True"))
    cron = wait_for("the shared CronJob", lambda: _cronjob_of(admin, ns))
    # One template per shared CronJob, named after it.
    cm_name = f"{cron['metadata']['name']}-hourly-executor"
    configmap = wait_for(
        "executor template", lambda: get_json(admin, "configmap", cm_name, "-n", ns)
    )
    template = configmap["data"]["executor-pod.yaml"]
    assert "hourly-executor" in template and "runAsUser: 185" in template
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["executor-template"]["configMap"]["name"] == cm_name
    # The Spark RPC key, by the Secret's name only, as the API server stores it.
    assert volumes["spark-rpc"]["secret"] == {
        "secretName": "coinfeed-operator-spark-rpc",
        "items": [{"key": "secret", "path": "secret"}],
        "defaultMode": 0o440,
        "optional": True,
    }

    # An edited template is put back (drift loop; the operator may update ConfigMaps).
    kubectl(
        admin,
        "patch",
        "configmap",
        cm_name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"data": {"executor-pod.yaml": "kind: Pod\n"}}),
    )
    wait_for(
        "template reverted",
        lambda: (
            get_json(admin, "configmap", cm_name, "-n", ns)["data"]["executor-pod.yaml"] == template
        ),
    )

    # Back to local mode: the template goes, the CronJob no longer mounts it or the token.
    op.stop()
    start_operator(ns, kafka_cluster.bootstrap, drift_interval=1.0)
    wait_for(
        "template removed",
        lambda: get_json(admin, "configmap", cm_name, "-n", ns) is None,
    )
    pod = _cronjob_of(admin, ns)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert not [v for v in pod["volumes"] if v["name"] in ("executor-template", "spark-rpc")]
