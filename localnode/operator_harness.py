"""Run the operator as a separate process under its chart's RBAC identity (tests, benchmarks).

Uses kubectl with an admin kubeconfig to install the CRD and a ServiceAccount bound by exactly the
rules in ``charts/coinfeed-operator/files/rbac-rules.yaml``, then starts ``coinfeed operator`` with
a kubeconfig for that ServiceAccount.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from coinfeed.operator.crdsync import SOURCE as CRD_FILE
from coinfeed.versions import REPO_ROOT

RBAC_RULES = REPO_ROOT / "charts" / "coinfeed-operator" / "files" / "rbac-rules.yaml"
SA_NAME = "coinfeed-operator"
T = TypeVar("T")


def kubectl(
    kubeconfig: Path, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr}{proc.stdout}"
        )
    return proc


def get_json(kubeconfig: Path, *args: str) -> Any:
    proc = kubectl(kubeconfig, "get", *args, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def install_crd(admin: Path) -> None:
    kubectl(admin, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    kubectl(
        admin, "wait", "--for=condition=Established", "--timeout=60s", "crd/coinfeeds.coinfeed.io"
    )


def rbac_manifest(namespace: str) -> str:
    """ServiceAccount + Role + RoleBinding, the Role's rules read from the chart's rules file."""
    rules = yaml.safe_load(RBAC_RULES.read_text())["namespaced"]
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SA_NAME, "namespace": namespace},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": SA_NAME, "namespace": namespace},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": SA_NAME, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SA_NAME},
            "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": namespace}],
        },
    ]
    return yaml.safe_dump_all(docs)


# How a refused Kubernetes request shows in the operator's log: the kubernetes client's
# ApiException ("(403)" / "Reason: Forbidden") or kopf's APIForbiddenError.
_FORBIDDEN = re.compile(r"\(403\)|Reason: Forbidden|APIForbiddenError|Not enough permissions")


def forbidden_lines(log_text: str) -> list[str]:
    """Lines of an operator log where the API server refused a request (pure): with the chart's
    least-privilege rules there must be none, else a rule the code needs is missing."""
    return [line for line in log_text.splitlines() if _FORBIDDEN.search(line)]


def bind_operator_identity(admin: Path, namespace: str) -> None:
    kubectl(admin, "apply", "-f", "-", input=rbac_manifest(namespace))


def wait_for(
    what: str, fn: Callable[[], T | None], timeout: float = 60.0, every: float = 0.25
) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def condition(feed: Any, ctype: str) -> dict[str, Any] | None:
    for c in ((feed or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return None


def mark_deployments_available(admin: Path, namespace: str, names: Sequence[str]) -> None:
    """What a kubelet + deployment controller would report; there are none under envtest."""
    for name in names:
        dep = get_json(admin, "deployment", name, "-n", namespace)
        if dep is None:
            continue
        replicas = int(dep["spec"].get("replicas", 1))
        status = {
            "status": {
                "observedGeneration": dep["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            }
        }
        kubectl(
            admin,
            "patch",
            "deployment",
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(status),
        )


@dataclass
class OperatorProcess:
    kubeconfig: Path
    namespaces: Sequence[str]
    bootstrap: str
    log_file: Path
    metrics_port: int
    liveness_port: int
    drift_interval: float = 2.0
    delete_timeout: float = 30.0
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "COINFEED_OPERATOR_KAFKA_TIMEOUT_SECONDS": "5",
            **self.extra_env,
        }
        argv = [
            sys.executable,
            "-m",
            "coinfeed",
            "operator",
            *[f"--namespace={n}" for n in self.namespaces],
            f"--kafka-bootstrap={self.bootstrap}",
            f"--metrics-port={self.metrics_port}",
            f"--liveness-port={self.liveness_port}",
            "--bind=127.0.0.1",
            f"--drift-interval={self.drift_interval}",
            f"--delete-timeout={self.delete_timeout}",
            "--watch-timeout=60",
        ]
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )
        log.close()
        wait_for("the operator's /readyz", self._ready, timeout=60)
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"operator exited {self.proc.returncode}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=2
            ) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return str(r.read().decode())

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
