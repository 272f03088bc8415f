"""The charts against a real kube-apiserver (envtest approach: real validation, admission with
Pod Security, RBAC; no nodes, so nothing runs): server-side dry-run of every rendered object,
`helm install` into a namespace that enforces and warns on the restricted Pod Security level,
and bad values refused by `helm install` with the schema's message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.charts.helmtools import CHARTS, Helm, lint_matrix
from tests.support.apiserver import Kubectl, create_namespace, unique_name

RESTRICTED = (
    "pod-security.kubernetes.io/enforce=restricted",
    "pod-security.kubernetes.io/warn=restricted",
)
MONITORING_CRDS = Path(__file__).parent / "crds" / "monitoring.coreos.com.yaml"


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> None:
    """The CoinFeed CRD (from the operator chart's crds/) and stand-ins for the Prometheus
    Operator's CRDs, installed before anything refers to them."""
    for path in [*sorted((CHARTS / "coinfeed-operator" / "crds").glob("*.yaml")), MONITORING_CRDS]:
        kubectl("apply", "--server-side", "-f", str(path))
    for name in (
        "coinfeeds.coinfeed.io",
        "servicemonitors.monitoring.coreos.com",
        "podmonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ):
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def _warnings(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if "warning" in line.lower() or "would violate" in line or "PodSecurity" in line
    ]


@pytest.mark.parametrize(("chart", "values"), lint_matrix(), ids=lambda x: x or "defaults")
def test_rendered_objects_accepted_by_server_side_dry_run(
    helm: Helm, kubectl: Kubectl, crds: None, chart: str, values: str | None
) -> None:
    ns = create_namespace(kubectl, unique_name(f"dry-{chart}"), RESTRICTED)
    rendered = helm.template_text(chart, values=[values] if values else [], namespace=ns).stdout
    proc = kubectl(
        "apply", "--server-side", "--dry-run=server", "-n", ns, "-f", "-",
        input=rendered, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert not _warnings(proc.stderr), proc.stderr
    applied = [line for line in proc.stdout.splitlines() if "serverside-applied" in line]
    assert len(applied) == rendered.count("\nkind: ") + rendered.startswith("kind: ")


@pytest.mark.parametrize(
    ("chart", "values"),
    [
        ("kafka", None),
        ("kafka", "ci/kraft-values.yaml"),
        ("coinfeed", None),
        ("coinfeed", "values-kind.yaml"),
    ],
)
def test_helm_install_in_restricted_namespace_without_warnings(
    helm: Helm, kubectl: Kubectl, kube_apiserver: object, crds: None, chart: str, values: str | None
) -> None:
    ns = create_namespace(kubectl, unique_name(f"install-{chart}"), RESTRICTED)
    args = ["install", "coinfeed", str(helm.chart(chart)), "--namespace", ns, "--timeout", "2m"]
    if values:
        args += ["-f", str(helm.chart(chart) / values)]
    proc = helm.run(*args, kubeconfig=kubectl.kubeconfig, check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert not _warnings(proc.stderr), proc.stderr
    assert "STATUS: deployed" in proc.stdout
    statefulsets = kubectl("get", "statefulsets", "-n", ns, "-o", "name").stdout.split()
    assert "statefulset.apps/coinfeed-kafka" in statefulsets
    # The NOTES tell the user what to do next.
    assert "helm test coinfeed" in proc.stdout
    if chart == "coinfeed":
        # ... and their operator selector finds the operator (the sub-chart is aliased).
        (selector,) = re.findall(r"rollout status deployment -l (\S+)", proc.stdout)
        found = kubectl("get", "deployments", "-n", ns, "-l", selector, "-o", "name").stdout
        assert found.split() == ["deployment.apps/coinfeed-operator"], selector


def test_pod_security_warnings_do_reach_helm_output(
    helm: Helm, kubectl: Kubectl, tmp_path: Path
) -> None:
    """Control for the test above: a chart with a non-restricted Deployment makes the API server
    warn, and helm shows it, so an empty warning list above means the chart complies."""
    chart = tmp_path / "bad"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: bad\nversion: 0.1.0\n")
    (chart / "templates" / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n"
        "  selector: {matchLabels: {app: bad}}\n  template:\n    metadata: {labels: {app: bad}}\n"
        "    spec:\n      containers: [{name: bad, image: 'busybox:1.36'}]\n"
    )
    ns = create_namespace(kubectl, unique_name("psa-control"), RESTRICTED)
    proc = helm.run(
        "install", "bad", str(chart), "--namespace", ns, kubeconfig=kubectl.kubeconfig, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "would violate PodSecurity" in proc.stderr and "restricted:latest" in proc.stderr
    assert _warnings(proc.stderr)


@pytest.mark.parametrize(
    ("chart", "sets", "fragment"),
    [
        ("coinfeed", ["kafka.replicas=0"], "at '/replicas': minimum: got 0, want 1"),
        (
            "coinfeed",
            ["kafka.metadataMode=etcd"],
            "at '/metadataMode': value must be one of 'zookeeper', 'kraft'",
        ),
        ("kafka", ["replicas=0"], "at '/replicas': minimum: got 0, want 1"),
        (
            "kafka",
            ["metadataMode=zk"],
            "at '/metadataMode': value must be one of 'zookeeper', 'kraft'",
        ),
    ],
)
def test_helm_install_refuses_invalid_values(
    helm: Helm, kubectl: Kubectl, crds: None, chart: str, sets: list[str], fragment: str
) -> None:
    ns = create_namespace(kubectl, unique_name(f"invalid-{chart}"))
    args = ["install", "coinfeed", str(helm.chart(chart)), "--namespace", ns]
    for s in sets:
        args += ["--set", s]
    proc = helm.run(*args, kubeconfig=kubectl.kubeconfig, check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert fragment in proc.stderr, proc.stderr
    # Nothing was created.
    assert kubectl("get", "all", "-n", ns, "-o", "name").stdout.strip() == ""
    assert helm.run("list", "-n", ns, "-q", kubeconfig=kubectl.kubeconfig).stdout.strip() == ""


def test_spark_rpc_key_is_generated_once_and_kept_across_upgrades(
    helm: Helm, kubectl: Kubectl, crds: None
) -> None:
    """The chart's `lookup`: an upgrade keeps the installed key; turning it off removes it."""
    ns = create_namespace(kubectl, unique_name("spark-rpc"))
    chart = str(helm.chart("coinfeed-operator"))

    def key() -> str:
        return kubectl(
            "get",
            "secret",
            "rel-coinfeed-operator-spark-rpc",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.secret}",
        ).stdout

    def release(command: str, *sets: str) -> None:
        args = [a for s in sets for a in ("--set", s)]
        helm.run(command, "rel", chart, "--namespace", ns, *args, kubeconfig=kubectl.kubeconfig)

    release("install")
    first = key()
    assert len(first) == 88  # base64 of 64 characters
    release("upgrade", "operator.logLevel=DEBUG")
    assert key() == first
    release("upgrade", "spark.rpcAuthentication=false")
    secrets = kubectl("get", "secrets", "-n", ns, "-o", "name").stdout.split()
    assert "secret/rel-coinfeed-operator-spark-rpc" not in secrets
