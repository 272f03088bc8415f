"""localnode.netpol: NetworkPolicies -> allowed (peer, port) pairs -> iptables rules (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from localnode.netpol import Allow, Pod, allowed, pods_from, render, selects

NS = {"coinfeed": {"kubernetes.io/metadata.name": "coinfeed"}, "other": {"team": "x"}}
BROKER = Pod("coinfeed", "kafka-0", "10.244.0.10", {"app": "kafka"}, {"client": (9092, "TCP")})
ZK = Pod("coinfeed", "zk-0", "10.244.0.11", {"app": "zk"})
PRODUCER = Pod("coinfeed", "btc-prices", "10.244.0.12", {"app": "producer"})
STRANGER = Pod("other", "curl", "10.244.0.13", {"app": "curl"})
PODS = [BROKER, ZK, PRODUCER, STRANGER]


def policy(
    name: str, selector: dict[str, Any], ingress: list[Any], ns: str = "coinfeed"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": ingress},
    }


KAFKA = policy(
    "kafka",
    {"matchLabels": {"app": "kafka"}},
    [{"from": [{"podSelector": {}}], "ports": [{"port": "client"}]}],
)
ZOOKEEPER = policy(
    "zk",
    {"matchLabels": {"app": "zk"}},
    [{"from": [{"podSelector": {"matchLabels": {"app": "kafka"}}}], "ports": [{"port": 2181}]}],
)


def test_only_selected_pods_are_isolated_and_named_ports_resolve() -> None:
    got = allowed(PODS, NS, [KAFKA, ZOOKEEPER], "Ingress")
    assert set(got) == {BROKER.ip, ZK.ip}  # the producer and the stranger stay open
    # podSelector {} = every pod of the policy's namespace, not the other namespace's
    assert {a.peer for a in got[BROKER.ip]} == {f"{p.ip}/32" for p in (BROKER, ZK, PRODUCER)}
    assert {(a.proto, a.port) for a in got[BROKER.ip]} == {("tcp", "9092")}
    assert got[ZK.ip] == [Allow(f"{BROKER.ip}/32", "tcp", "2181")]


def test_namespace_selector_and_an_isolating_policy_without_rules() -> None:
    from_other = policy(
        "prom", {"matchLabels": {"app": "producer"}},
        [{"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}}]}],
    )  # fmt: skip
    deny_all = policy("deny", {"matchLabels": {"app": "zk"}}, [])
    got = allowed(PODS, NS, [from_other, deny_all], "Ingress")
    assert got[PRODUCER.ip] == [Allow(f"{STRANGER.ip}/32", None, None)]
    assert got[ZK.ip] == []  # isolated, nothing allowed


def test_rules_reject_what_is_not_allowed_and_keep_replies() -> None:
    text, chains = render(PODS, NS, [ZOOKEEPER])
    lines = text.splitlines()
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    (chain,) = [c for c in chains if c.startswith("COINFEED-NPI-")]
    assert len(chain) <= 28  # iptables' limit
    assert "-A COINFEED-NETPOL -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN" in lines
    assert f"-A COINFEED-NETPOL -d {ZK.ip}/32 -j {chain}" in lines
    assert f"-A {chain} -s {BROKER.ip}/32 -p tcp --dport 2181 -j RETURN" in lines
    assert lines.index(f"-A {chain} -p tcp -j REJECT --reject-with tcp-reset") > lines.index(
        f"-A {chain} -s {BROKER.ip}/32 -p tcp --dport 2181 -j RETURN"
    )
    # Without the policy nothing is isolated.
    text, chains = render(PODS, NS, [])
    assert chains == ["COINFEED-NETPOL"]


def test_ip_block_except_and_port_ranges() -> None:
    pol = policy(
        "block", {"matchLabels": {"app": "kafka"}},
        [{"from": [{"ipBlock": {"cidr": "10.244.0.0/24", "except": ["10.244.0.13/32"]}}],
          "ports": [{"port": 7078, "endPort": 7079, "protocol": "TCP"}]}],
    )  # fmt: skip
    text, chains = render(PODS, NS, [pol])
    chain = chains[1]
    lines = text.splitlines()
    reject = lines.index(f"-A {chain} -s 10.244.0.13/32 -j REJECT")
    allow = lines.index(f"-A {chain} -s 10.244.0.0/24 -p tcp --dport 7078:7079 -j RETURN")
    assert reject < allow


def test_selector_operators() -> None:
    labels = {"tier": "db", "env": "prod"}
    assert selects(
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}, labels
    )
    assert not selects(
        {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, labels
    )
    assert selects({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)
    with pytest.raises(ValueError, match="Gt"):
        selects({"matchExpressions": [{"key": "x", "operator": "Gt"}]}, labels)


def test_pods_from_skips_finished_and_host_network_pods() -> None:
    def item(name: str, **status: Any) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": "n", "labels": {"a": "b"}},
            "spec": {"containers": [{"ports": [{"name": "metrics", "containerPort": 9400}]}]},
            "status": {"podIP": "10.244.0.9", "phase": "Running", **status},
        }

    host = item("host")
    host["spec"]["hostNetwork"] = True
    got = pods_from([item("ok"), item("done", phase="Succeeded"), item("new", podIP=None), host])
    assert [p.name for p in got] == ["ok"]
    assert got[0].named_ports == {"metrics": (9400, "TCP")}
