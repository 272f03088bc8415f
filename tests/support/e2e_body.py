"""Assertions about a deployed coinfeed release, shared by the kind e2e test and the local-node tests:
the same checks run on whichever real cluster the caller has (a :class:`Kube` for it)."""

from __future__ import annotations

from collections import Counter

from tests.support.localnode import Kube, pod_ready

# component label -> how many pods of it a default release runs
EXPECTED_PODS = {
    "zookeeper": {"zookeeper": 3, "broker": 3, "operator": 1, "pushgateway": 1},
    "kraft": {"broker": 3, "operator": 1, "pushgateway": 1},
}


def release_pods(kube: Kube, namespace: str) -> Counter[str]:
    """Ready pods per app.kubernetes.io/component (helm test pods excluded)."""
    ready: Counter[str] = Counter()
    for pod in kube.pods(namespace):
        labels = pod["metadata"].get("labels", {})
        if "helm.sh/hook" in pod["metadata"].get("annotations", {}):
            continue
        if pod_ready(pod):
            ready[labels.get("app.kubernetes.io/component", "?")] += 1
    return ready


def assert_release_ready(kube: Kube, namespace: str, kafka_mode: str) -> None:
    expected = EXPECTED_PODS[kafka_mode]
    got = kube.wait_until(
        f"every pod of the release Ready ({expected})",
        lambda: (c := release_pods(kube, namespace)) == Counter(expected) and c,
        timeout=600,
    )
    assert got == Counter(expected)
    ns = kube.get("namespace", namespace)
    assert ns["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted"


def assert_no_admission_warnings(helm_output: str) -> None:
    """Pod Security (warn=restricted) and API deprecations surface as `W... Warning:` lines."""
    warnings = [line for line in helm_output.splitlines() if "warning" in line.lower()]
    assert not warnings, "helm install printed warnings:\n" + "\n".join(warnings)


def helm_test(kube: Kube, release: str, namespace: str, only: str = "") -> tuple[bool, str]:
    """`helm test` (only the test pod named ``only`` when given); (passed, output)."""
    filters = ["--filter", f"name={only}"] if only else []
    proc = kube.helm(
        "test", release, "-n", namespace, *filters, "--timeout", "6m", check=False, timeout=420
    )
    return proc.returncode == 0, proc.stdout + proc.stderr
