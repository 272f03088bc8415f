"""The chart's NetworkPolicies, enforced on the real node (localnode/netpol.py): every flow they
allow works, what they do not allow is refused, and each refusal disappears when its policy is
removed (so each check fails if the policy it names is missing) and returns when it is restored.

Probes are TCP connects from "prober" pods: one in the release's namespace, one in another
namespace. Stand-in pods carry the labels and named ports of a producer, a Spark driver and an
executor (the policies select by labels), so no Spark job or feed has to run here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.node.test_local_node import PRODUCER_IMAGE, restricted_pod
from tests.support.localnode import NAMESPACE, Kube, LocalNode, pod_ready

Release = tuple[LocalNode, str]
OUTSIDE = "np-outsider"

PROBE = r"""
import json, socket, sys
out = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(4)
    try:
        s.connect((host, int(port)))
        out[target] = "ok"
    except ConnectionRefusedError:
        out[target] = "refused"
    except OSError as exc:
        out[target] = type(exc).__name__
    finally:
        s.close()
print(json.dumps(out))
"""

LISTEN = r"""
import socket, sys, threading, time
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen()
    while True:
        conn, _ = s.accept()
        conn.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
while True:
    time.sleep(60)
"""


def stand_in(
    name: str, namespace: str, labels: dict[str, str], ports: dict[str, int]
) -> dict[str, Any]:
    pod = restricted_pod(name, PRODUCER_IMAGE, ["python", "-c", LISTEN, *map(str, ports.values())])
    pod["metadata"]["namespace"] = namespace
    pod["metadata"]["labels"].update(labels)
    pod["spec"]["containers"][0]["ports"] = [
        {"name": n, "containerPort": p} for n, p in ports.items()
    ]
    return pod


class Net:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def ip(self, name: str, namespace: str = NAMESPACE) -> str:
        return str(self.kube.get("-n", namespace, "pod", name)["status"]["podIP"])

    def probe(self, prober_ns: str, *targets: str) -> dict[str, str]:
        proc = self.kube.kubectl(
            "-n", prober_ns, "exec", "prober", "--", "python", "-c", PROBE, *targets, timeout=120
        )
        result: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    def wait_probe(self, prober_ns: str, target: str, want: str) -> None:
        """Rules follow the API within about a second: poll until the probe says ``want``."""
        self.kube.wait_until(
            f"{target} from {prober_ns} to be {want}",
            lambda: self.probe(prober_ns, target)[target] == want,
            timeout=30,
            interval=1,
        )


@pytest.fixture(scope="module")
def net(coinfeed_release: Release) -> Iterator[Net]:
    local, _ = coinfeed_release
    kube = local.kube
    kube.kubectl("create", "namespace", OUTSIDE)
    pods = [
        stand_in("prober", NAMESPACE, {}, {}),
        stand_in("prober", OUTSIDE, {}, {}),
        stand_in("np-producer", NAMESPACE, {"app.kubernetes.io/name": "coinfeed-producer"},
                 {"metrics": 9400, "other": 9401}),
        stand_in("np-driver", NAMESPACE,
                 {"app.kubernetes.io/name": "coinfeed-hourly", "app.kubernetes.io/component": "hourly"},
                 {"driver": 7078, "blocks": 7079}),
        stand_in("np-executor", NAMESPACE,
                 {"app.kubernetes.io/name": "coinfeed-hourly",
                  "app.kubernetes.io/component": "hourly-executor"},
                 {"blocks": 7079}),
    ]  # fmt: skip
    kube.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": pods})
    )
    for pod in pods:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        kube.wait_until(
            f"{ns}/{name} Ready",
            lambda ns=ns, name=name: pod_ready(kube.get("-n", ns, "pod", name)),
            120,
        )
    try:
        yield Net(kube)
    finally:
        kube.kubectl("delete", "namespace", OUTSIDE, "--timeout=120s", check=False)
        kube.kubectl("-n", NAMESPACE, "delete", "pod", "prober", "np-producer", "np-driver",
                     "np-executor", "--timeout=120s", check=False)  # fmt: skip


def assert_policy_is_what_refuses(net: Net, policy: str, prober_ns: str, target: str) -> None:
    """Refused now; allowed once ``policy`` is deleted; refused again once it is restored."""
    kube = net.kube
    assert net.probe(prober_ns, target)[target] == "refused", (policy, target)
    saved = kube.get("-n", NAMESPACE, "networkpolicy", policy)
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"):
        saved["metadata"].pop(key, None)
    kube.kubectl("-n", NAMESPACE, "delete", "networkpolicy", policy)
    try:
        net.wait_probe(prober_ns, target, "ok")
    finally:
        kube.kubectl("apply", "-f", "-", stdin=json.dumps(saved))
    net.wait_probe(prober_ns, target, "refused")


def test_brokers_take_clients_of_their_namespace_on_the_client_port_only(net: Net) -> None:
    broker = net.ip("coinfeed-kafka-0")
    # A new pod's rules follow within about a second of its start (localnode/netpol.py polls).
    net.wait_probe(NAMESPACE, f"{broker}:9092", "ok")
    inside = net.probe(NAMESPACE, f"{broker}:9092", f"{broker}:9093")
    assert inside == {f"{broker}:9092": "ok", f"{broker}:9093": "refused"}  # client / inter-broker
    assert_policy_is_what_refuses(net, "coinfeed-kafka-brokers", OUTSIDE, f"{broker}:9092")


def test_zookeeper_takes_only_the_brokers(net: Net) -> None:
    zk = net.ip("coinfeed-kafka-zookeeper-0")
    # The brokers are connected to ZooKeeper (they are Ready); a broker can open a new session.
    ok = net.kube.kubectl(
        "-n", NAMESPACE, "exec", "coinfeed-kafka-1", "--", "bash", "-c",
        f"exec 3<>/dev/tcp/{zk}/2181 && echo connected", check=False,
    )  # fmt: skip
    assert "connected" in ok.stdout, ok.stderr
    assert_policy_is_what_refuses(net, "coinfeed-kafka-zookeeper", NAMESPACE, f"{zk}:2181")


def test_operator_metrics_only_inside_the_namespace(net: Net) -> None:
    (pod,) = [
        p
        for p in net.kube.pods(NAMESPACE, "app.kubernetes.io/name=coinfeed-operator")
        if pod_ready(p)
    ]
    port = next(
        p["containerPort"]
        for c in pod["spec"]["containers"]
        for p in c.get("ports", [])
        if p["name"] == "metrics"
    )
    target = f"{pod['status']['podIP']}:{port}"
    net.wait_probe(NAMESPACE, target, "ok")
    assert_policy_is_what_refuses(net, "coinfeed-operator", OUTSIDE, target)


def test_producers_serve_only_their_metrics_port(net: Net) -> None:
    ip = net.ip("np-producer")
    net.wait_probe(NAMESPACE, f"{ip}:9400", "ok")
    assert_policy_is_what_refuses(net, "coinfeed-producers", NAMESPACE, f"{ip}:9401")
    assert_policy_is_what_refuses(net, "coinfeed-producers", OUTSIDE, f"{ip}:9400")


def test_spark_driver_and_executors_talk_only_to_each_other(net: Net) -> None:
    driver, executor = net.ip("np-driver"), net.ip("np-executor")

    def probe_from(pod: str, *targets: str) -> dict[str, str]:
        out = net.kube.kubectl(
            "-n", NAMESPACE, "exec", pod, "--", "python", "-c", PROBE, *targets
        ).stdout  # fmt: skip
        result: dict[str, str] = json.loads(out)
        return result

    both = (f"{driver}:7078", f"{driver}:7079")
    net.kube.wait_until(
        "executor -> driver allowed",
        lambda: set(probe_from("np-executor", *both).values()) == {"ok"},
        timeout=30,
        interval=1,
    )
    assert probe_from("np-driver", f"{executor}:7079") == {f"{executor}:7079": "ok"}
    assert_policy_is_what_refuses(net, "coinfeed-hourly", NAMESPACE, f"{driver}:7078")
    assert_policy_is_what_refuses(net, "coinfeed-hourly-executors", NAMESPACE, f"{executor}:7079")


def test_pushgateway_only_inside_the_namespace(net: Net) -> None:
    (pod,) = [
        p
        for p in net.kube.pods(NAMESPACE, "app.kubernetes.io/component=pushgateway")
        if pod_ready(p)
    ]
    target = f"{pod['status']['podIP']}:9091"
    net.wait_probe(NAMESPACE, target, "ok")
    assert_policy_is_what_refuses(net, "coinfeed-pushgateway", OUTSIDE, target)
