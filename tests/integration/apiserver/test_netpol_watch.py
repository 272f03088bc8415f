"""The NetworkPolicy agent follows the API by watching: a new policy, and its removal, reach the
rules within seconds, long before its (here: 10-minute) resync. Real API server; the rules go to a
recorder instead of iptables (the node tests enforce them on real pods)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from localnode import netpol
from localnode.apiserver import KubeAPIServer
from tests.support.apiserver import Kubectl

# Pod IPs of this run only (the API server is shared with other tests and a rerun).
_NET = f"10.244.{random.randint(100, 250)}"
POD_IP, PRODUCER_IP = f"{_NET}.23", f"{_NET}.24"


@dataclass
class Recorder:
    texts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, text: str, chains: Sequence[str]) -> None:
        with self.lock:
            self.texts.append(text)

    def latest(self) -> str:
        with self.lock:
            return self.texts[-1] if self.texts else ""

    def wait_until(self, what: str, pred: Any, timeout: float = 20.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if pred(self.latest()):
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"rules did not show {what} within {timeout:.0f}s:\n{self.latest()}")


@pytest.fixture
def agent(kube_apiserver: KubeAPIServer) -> Iterator[Recorder]:
    from kubernetes import client
    from kubernetes import config as kconfig

    api = kconfig.new_client_from_config(str(kube_apiserver.admin_kubeconfig))
    recorder = Recorder()
    stop = threading.Event()
    thread = threading.Thread(
        target=netpol.run,
        args=(client.CoreV1Api(api), client.NetworkingV1Api(api), recorder),
        kwargs={"resync": 600.0, "stop": stop},
        daemon=True,
    )
    thread.start()
    yield recorder
    stop.set()
    thread.join(timeout=10)


def _running_pod(kubectl: Kubectl, ns: str, name: str, labels: dict[str, str], ip: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "coinfeed/test:1"}]},
    }
    kubectl.apply(json.dumps(pod))
    # No kubelet here: the pod gets its IP and phase the way a kubelet would report them.
    status = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}
    kubectl(
        "patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip


def _policy(ns: str) -> str:
    return json.dumps(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "kafka-ingress", "namespace": ns},
            "spec": {
                "podSelector": {"matchLabels": {"app": "kafka"}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"role": "producer"}}}],
                        "ports": [{"protocol": "TCP", "port": 9092}],
                    }
                ],
            },
        }
    )


def test_rules_follow_policy_changes_by_watch(
    agent: Recorder, kubectl: Kubectl, kube_namespace: str
) -> None:
    ns = kube_namespace
    _running_pod(kubectl, ns, "broker", {"app": "kafka"}, POD_IP)
    _running_pod(kubectl, ns, "producer", {"role": "producer"}, PRODUCER_IP)
    guarded = f"-d {POD_IP}/32 -j {netpol._chain('COINFEED-NPI-', POD_IP)}"
    agent.wait_until("the first pass", lambda text: text.startswith("*filter"))
    assert guarded not in agent.latest()  # no policy selects the pod yet

    kubectl.apply(_policy(ns))
    took = agent.wait_until("the new policy", lambda text: guarded in text)
    allowed = [line for line in agent.latest().splitlines() if "-j RETURN" in line]
    assert any(PRODUCER_IP in line and "--dport 9092" in line for line in allowed), allowed
    print(f"policy enforced {took:.2f}s after it was created")

    kubectl("delete", "networkpolicy", "kafka-ingress", "-n", ns)
    took = agent.wait_until("the policy's removal", lambda text: guarded not in text)
    print(f"policy lifted {took:.2f}s after it was deleted")
