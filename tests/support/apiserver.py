"""The real Kubernetes API server (etcd + kube-apiserver, the envtest approach) and kubectl.

Fixtures:

- ``kube_apiserver`` (session): a started :class:`localnode.apiserver.KubeAPIServer`.
  ``.url``, ``.admin_kubeconfig`` (system:masters), ``.kubeconfig_for(user, groups)``,
  ``.kubeconfig_for_service_account(namespace, name)``. There are no nodes and no
  controller-manager: nothing runs Pods, Deployments never become available unless a test patches
  their status, owner-reference garbage collection does not happen and deleted namespaces stay
  ``Terminating``. Use a fresh namespace per test (``kube_namespace``) instead of cleaning up.
- ``kubectl`` (session): ``kubectl("get", "ns")`` runs kubectl with the admin kubeconfig: the one
  ``make envtest`` builds for the same release (``$KUBEBUILDER_ASSETS/kubectl``), else the one on
  PATH (/usr/bin/kubectl is v1.32, outside the supported skew). ``kubectl.using(path)`` gives one
  bound to another kubeconfig. By hand: ``kubectl --kubeconfig <run dir>/kubeconfigs/admin.yaml``.
- ``kube_namespace`` (function): a new, uniquely named namespace.

The binaries come from ``$KUBEBUILDER_ASSETS`` or ``make envtest``. When they are missing the
fixture builds them (``scripts/build-go-tools.sh envtest``, minutes on first use); it skips only when
no Go toolchain is there to build them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from coinfeed.versions import REPO_ROOT
from localnode.apiserver import (
    BinariesMissingError,
    KubeAPIServer,
    find_binaries,
    find_kubectl,
)


def _ensure_binaries() -> None:
    try:
        find_binaries()
        return
    except BinariesMissingError as exc:
        missing = str(exc)
    if shutil.which("go") is None:
        pytest.skip(f"test API server unavailable: {missing}; no Go toolchain here to build them")
    build = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "build-go-tools.sh"), "envtest"],
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if build.returncode != 0:
        pytest.fail(f"building kube-apiserver and etcd failed:\n{build.stdout[-3000:]}")
    find_binaries()


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPIServer]:
    _ensure_binaries()
    server = KubeAPIServer(tmp_path_factory.mktemp("kube-apiserver"))
    with server:
        yield server


@dataclass(frozen=True)
class Kubectl:
    """``kubectl`` bound to one kubeconfig; calls return the finished process (text)."""

    binary: str
    kubeconfig: Path

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def using(self, kubeconfig: Path) -> Kubectl:
        return Kubectl(self.binary, kubeconfig)

    def apply(
        self, manifest: str, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl apply -f -`` with ``manifest`` (YAML or JSON) on stdin."""
        return self("apply", "-f", "-", *extra, input=manifest, check=check)


@pytest.fixture(scope="session")
def kubectl(kube_apiserver: KubeAPIServer) -> Kubectl:
    binary = find_kubectl()
    if binary is None:
        pytest.skip("no kubectl: run `make envtest` (builds one) or install kubectl")
    return Kubectl(str(binary), kube_apiserver.admin_kubeconfig)


def unique_name(prefix: str) -> str:
    """A DNS-1123 label: ``prefix`` (sanitised, shortened) plus a random suffix."""
    base = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-")[:50] or "test"
    return f"{base}-{uuid.uuid4().hex[:6]}"


def create_namespace(kubectl: Kubectl, name: str, labels: Sequence[str] = ()) -> str:
    kubectl("create", "namespace", name)
    if labels:
        kubectl("label", "namespace", name, *labels)
    return name


@pytest.fixture
def kube_namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> str:
    return create_namespace(kubectl, unique_name(request.node.name))
