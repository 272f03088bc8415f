"""The test API server is a real one: it stores, validates, admits (Pod Security) and authorizes (RBAC)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from localnode.apiserver import KubeAPIServer
from tests.support.apiserver import Kubectl, create_namespace, unique_name


def _deployment(namespace: str, name: str, replicas: int) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}, namespace: {namespace}}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec:
              containers:
                - name: main
                  image: registry.example/coinfeed/producer:1.2.3
        """
    )


def _pod(namespace: str, name: str, *, privileged: bool) -> str:
    security: dict[str, Any] = (
        {"privileged": True}
        if privileged
        else {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "registry.example/coinfeed/producer:1.2.3",
                    "securityContext": security,
                }
            ]
        },
    }
    return json.dumps(pod)


def test_admin_applies_a_namespace_and_a_deployment(kubectl: Kubectl) -> None:
    ns = unique_name("apply")
    manifest = f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n" + _deployment(
        ns, "producer", 2
    )
    out = kubectl.apply(manifest).stdout
    assert f"namespace/{ns} created" in out
    assert "deployment.apps/producer created" in out

    stored = json.loads(kubectl("get", "deployment", "producer", "-n", ns, "-o", "json").stdout)
    assert stored["spec"]["replicas"] == 2
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"].endswith("producer:1.2.3")
    # Defaulting ran on the server: proof it is the real API machinery, not a key-value store.
    assert stored["spec"]["strategy"]["type"] == "RollingUpdate"


def test_user_without_bindings_is_forbidden(
    kube_apiserver: KubeAPIServer, kubectl: Kubectl, kube_namespace: str
) -> None:
    stranger = kubectl.using(kube_apiserver.kubeconfig_for("stranger"))
    denied = stranger("get", "configmaps", "-n", kube_namespace, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert 'User "stranger" cannot list resource "configmaps"' in denied.stderr

    # The same kind of certificate in system:masters is allowed: the denial above was RBAC's.
    master = kubectl.using(kube_apiserver.kubeconfig_for("someone", ["system:masters"]))
    assert master("get", "configmaps", "-n", kube_namespace).returncode == 0


def test_service_account_can_do_exactly_what_its_role_allows(
    kube_apiserver: KubeAPIServer, kubectl: Kubectl, kube_namespace: str
) -> None:
    ns = kube_namespace
    other_ns = create_namespace(kubectl, unique_name("other"))
    kubectl.apply(
        textwrap.dedent(
            f"""\
            apiVersion: v1
            kind: ServiceAccount
            metadata: {{name: worker, namespace: {ns}}}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {{name: configmap-writer, namespace: {ns}}}
            rules:
              - apiGroups: [""]
                resources: [configmaps]
                verbs: [get, list, create]
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {{name: worker-writes-configmaps, namespace: {ns}}}
            roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: configmap-writer}}
            subjects:
              - {{kind: ServiceAccount, name: worker, namespace: {ns}}}
            """
        )
    )
    worker = kubectl.using(kube_apiserver.kubeconfig_for_service_account(ns, "worker"))

    who = json.loads(worker("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert who["username"] == f"system:serviceaccount:{ns}:worker"
    assert f"system:serviceaccounts:{ns}" in who["groups"]

    worker("create", "configmap", "settings", "-n", ns, "--from-literal=coin=btc")
    listed = worker("get", "configmaps", "-n", ns, "-o", "name").stdout
    assert "configmap/settings" in listed

    for forbidden in (
        ("delete", "configmap", "settings", "-n", ns),  # verb not in the Role
        ("get", "secrets", "-n", ns),  # resource not in the Role
        ("get", "configmaps", "-n", other_ns),  # a Role binds in its own namespace only
    ):
        result = worker(*forbidden, check=False)
        assert result.returncode != 0, forbidden
        assert "Forbidden" in result.stderr, (forbidden, result.stderr)
    # The refused delete really did nothing.
    assert kubectl("get", "configmap", "settings", "-n", ns).returncode == 0


def test_restricted_namespace_rejects_a_privileged_pod(kubectl: Kubectl) -> None:
    restricted = create_namespace(
        kubectl,
        unique_name("restricted"),
        ["pod-security.kubernetes.io/enforce=restricted"],
    )
    refused = kubectl.apply(_pod(restricted, "root-shell", privileged=True), check=False)
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr
    assert "privileged" in refused.stderr

    # A Pod that meets the restricted profile is admitted in the same namespace ...
    kubectl.apply(_pod(restricted, "well-behaved", privileged=False))
    # ... and the privileged one is admitted where no policy is enforced: the refusal was PSA's.
    open_ns = create_namespace(kubectl, unique_name("baseline-free"))
    kubectl.apply(_pod(open_ns, "root-shell", privileged=True))


def test_server_side_dry_run_validates_without_storing(
    kubectl: Kubectl, kube_namespace: str
) -> None:
    ns = kube_namespace
    out = kubectl.apply(_deployment(ns, "dry", 1), "--dry-run=server").stdout
    assert "(server dry run)" in out
    missing = kubectl("get", "deployment", "dry", "-n", ns, check=False)
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr

    invalid = kubectl.apply(_deployment(ns, "broken", -1), "--dry-run=server", check=False)
    assert invalid.returncode != 0
    assert "spec.replicas: Invalid value: -1" in invalid.stderr
