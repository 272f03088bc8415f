"""Fixtures: the CoinFeed CRD in the test API server, and the operator as a process under the
ServiceAccount identity bound only by the chart's RBAC rules."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from localnode import operator_harness as harness
from localnode.apiserver import KubeAPIServer
from tests.support.ports import free_ports

OperatorFactory = Callable[..., harness.OperatorProcess]


@pytest.fixture(scope="session")
def coinfeed_crd(kube_apiserver: KubeAPIServer) -> Path:
    harness.install_crd(kube_apiserver.admin_kubeconfig)
    return kube_apiserver.admin_kubeconfig


@pytest.fixture
def admin(coinfeed_crd: Path) -> Path:
    return coinfeed_crd


@pytest.fixture
def start_operator(
    kube_apiserver: KubeAPIServer, coinfeed_crd: Path, tmp_path: Path
) -> Iterator[OperatorFactory]:
    started: list[harness.OperatorProcess] = []

    def start(namespace: str, bootstrap: str, **kwargs: object) -> harness.OperatorProcess:
        harness.bind_operator_identity(coinfeed_crd, namespace)
        kubeconfig = kube_apiserver.kubeconfig_for_service_account(namespace, harness.SA_NAME)
        metrics_port, liveness_port = free_ports(2)
        op = harness.OperatorProcess(
            kubeconfig=kubeconfig,
            namespaces=[namespace],
            bootstrap=bootstrap,
            log_file=tmp_path / f"operator-{len(started)}.log",
            metrics_port=metrics_port,
            liveness_port=liveness_port,
            **kwargs,  # type: ignore[arg-type]
        )
        started.append(op)
        return op.start()

    yield start
    refused: list[str] = []
    for op in started:
        op.stop()
        # Shown by pytest only when the test failed.
        print(f"--- operator log {op.log_file} ---\n{op.log_tail(80)}")
        refused += harness.forbidden_lines(op.log_tail(100_000))
    # The operator ran under exactly the chart's rules: a refusal means they miss a verb it uses.
    assert not refused, "the API server refused the operator:\n" + "\n".join(refused[:5])


@pytest.fixture
def coin() -> str:
    """A coin symbol no other test uses, so topics never collide in the shared Kafka cluster."""
    return "t" + uuid.uuid4().hex[:7]
