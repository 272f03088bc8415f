"""The cluster-wide operator (``rbac.clusterWide=true``) runs under exactly the ClusterRole its
chart renders: the chart's ServiceAccount, ClusterRole and ClusterRoleBinding are applied to a real
API server, the real operator process runs with a TokenRequest token for that account and the
arguments and settings of the chart's Deployment (``--all-namespaces``), and CoinFeeds in two
namespaces become Ready with their topics in real Kafka and their Deployments, Service and shared
CronJob, without a single refused request.

The namespaced mode is covered by the other tests here (conftest binds the same rules file in a
Role); this one proves the ClusterRole's extra rule (kopf's CRD scan) and the cluster-wide list
and watch of the feeds and their children are enough.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from coinfeed.versions import REPO_ROOT
from localnode import operator_harness as harness
from localnode.apiserver import KubeAPIServer
from localnode.operator_harness import get_json, wait_for
from tests.integration.operator.test_operator_feed import (
    _cronjob_of,
    _manifest,
    _ready,
    _topic_state,
)
from tests.support.apiserver import Kubectl, create_namespace, unique_name
from tests.support.helm import Helm, Obj
from tests.support.ports import free_ports

CHART = "coinfeed-operator"
# The identity a cluster-wide install creates; everything else of the chart runs in the pod.
IDENTITY_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
# Arguments of the chart's container this test replaces: the process listens on free loopback
# ports here, not on the pod's.
PORT_FLAGS = ("--metrics-port=", "--liveness-port=")


def render_cluster_wide(helm: Helm, ns: str, name: str) -> list[Obj]:
    """The operator chart in cluster-wide mode, its cluster-scoped objects named ``name`` (one
    name per test run: the API server is shared by the session)."""
    return helm.template(
        CHART,
        sets=["rbac.clusterWide=true", f"fullnameOverride={name}"],
        release=name,
        namespace=ns,
    )


def install_identity(kubectl: Kubectl, objs: list[Obj]) -> list[Obj]:
    """Apply only the chart's ServiceAccount, ClusterRole and ClusterRoleBinding."""
    identity = [o for o in objs if o["kind"] in IDENTITY_KINDS]
    assert sorted(o["kind"] for o in identity) == sorted(IDENTITY_KINDS), identity
    kubectl.apply(yaml.safe_dump_all(identity))
    # The authorizer learns of new bindings through a watch: wait until it applies this one, so
    # that an early refusal in the operator's log can only mean a missing rule.
    (sa,) = [o for o in identity if o["kind"] == "ServiceAccount"]
    user = f"system:serviceaccount:{sa['metadata']['namespace']}:{sa['metadata']['name']}"
    wait_for(
        "the ClusterRoleBinding in effect",
        lambda: kubectl(
            "auth", "can-i", "list", "coinfeeds.coinfeed.io", "--all-namespaces", f"--as={user}",
            check=False,
        ).stdout.strip() == "yes",
    )  # fmt: skip
    return identity


def operator_container(objs: list[Obj]) -> Obj:
    (deployment,) = [o for o in objs if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def settings_env(objs: list[Obj]) -> dict[str, str]:
    """The operator's settings ConfigMap: the environment the chart gives its pod (pure)."""
    (cm,) = [
        o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-settings")
    ]
    return {k: str(v) for k, v in cm["data"].items()}


@dataclass
class ChartOperator(harness.OperatorProcess):
    """The operator process started with the chart's container arguments and settings instead of
    the harness's ``--namespace`` list; the harness's readiness, log and stop are reused."""

    chart_args: Sequence[str] = ()
    chart_env: Mapping[str, str] = field(default_factory=dict)

    def start(self) -> ChartOperator:
        args = [a for a in self.chart_args if not a.startswith(PORT_FLAGS)]
        argv = [
            sys.executable, "-m", "coinfeed", "operator", *args,
            f"--kafka-bootstrap={self.bootstrap}",
            f"--metrics-port={self.metrics_port}",
            f"--liveness-port={self.liveness_port}",
            "--bind=127.0.0.1",
            f"--drift-interval={self.drift_interval}",
        ]  # fmt: skip
        env = {**os.environ, **self.chart_env, **self.extra_env, "KUBECONFIG": str(self.kubeconfig)}
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
            )
        wait_for("the operator's /readyz", self._ready, timeout=90)
        return self


def refusals(log_text: str) -> list[str]:
    """The operator log's refused requests (pure). Namespaces other tests of the session left
    Terminating (no namespace controller here) refuse new objects with a 403 a cluster-wide
    operator may meet; that refusal is the namespace's, not RBAC's."""
    return [
        line
        for line in harness.forbidden_lines(log_text)
        if "because it is being terminated" not in line
    ]


def test_cluster_wide_operator_runs_two_namespaces_under_its_rendered_cluster_role(
    helm: Helm,
    kubectl: Kubectl,
    kube_apiserver: KubeAPIServer,
    admin: Path,
    kafka_cluster: Any,
    coin: str,
    tmp_path: Path,
) -> None:
    op_ns = create_namespace(kubectl, unique_name("cw-operator"))
    feed_namespaces = [create_namespace(kubectl, unique_name(f"cw-feeds-{i}")) for i in (1, 2)]
    name = unique_name("cf-op-cw")
    objs = render_cluster_wide(helm, op_ns, name)
    install_identity(kubectl, objs)
    container = operator_container(objs)
    assert "--all-namespaces" in container["args"], container["args"]
    # The account's own token, issued by the API server: only the ClusterRole decides.
    sa = next(o for o in objs if o["kind"] == "ServiceAccount")["metadata"]["name"]
    metrics_port, liveness_port = free_ports(2)
    op = ChartOperator(
        kubeconfig=kube_apiserver.kubeconfig_for_service_account(op_ns, sa),
        namespaces=(),
        bootstrap=kafka_cluster.bootstrap,
        log_file=tmp_path / "operator.log",
        metrics_port=metrics_port,
        liveness_port=liveness_port,
        chart_args=container["args"],
        chart_env={**settings_env(objs), "POD_NAMESPACE": op_ns},
    )
    try:
        op.start()
        coins = {ns: f"{coin}{i}" for i, ns in enumerate(feed_namespaces)}
        for ns, sym in coins.items():
            kubectl.apply(_manifest(sym), "-n", ns)
        for ns, sym in coins.items():
            feed = _ready(admin, ns)
            uid = feed["metadata"]["uid"]
            topics = [f"coinfeed.{sym}.prices", f"coinfeed.{sym}.tweets"]
            assert sorted(_topic_state(kafka_cluster.bootstrap, topics)) == topics, ns
            for kind, child in [
                ("deployment", "btc-prices"),
                ("deployment", "btc-tweets"),
                ("service", "btc-metrics"),
            ]:
                obj = get_json(admin, kind, child, "-n", ns)
                assert obj is not None, f"{kind} {child} missing in {ns}"
                assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == [uid]
            cron = wait_for(f"the hourly CronJob in {ns}", partial(_cronjob_of, admin, ns))
            assert cron["metadata"]["namespace"] == ns
    finally:
        op.stop()
        # Shown by pytest only when the test failed.
        print(f"--- operator log {op.log_file} ---\n{op.log_tail(80)}")
    refused = refusals(op.log_tail(100_000))
    assert not refused, "the API server refused the operator:\n" + "\n".join(refused[:5])
    # The feeds stay where they are: nothing in the operator's own namespace.
    assert not get_json(admin, "deployments", "-n", op_ns)["items"]
