"""NetworkPolicy enforcement on the local node: the API's NetworkPolicies as iptables rules.

Why our own: the agent kind uses (sigs.k8s.io/kube-network-policies, from the Go module proxy)
sends packets to user space with the nftables ``queue`` statement, and this machine's kernel is
built without it (CONFIG_NFT_QUEUE is not set); kube-router, the iptables + ipset agent the proxy
also serves, has open security reports for the only version offered. So this process does what
those agents do, for one node: it watches pods, namespaces and NetworkPolicies and, after any
change (and on a slow resync, in case a watch missed one), rewrites its own chains in the filter table's FORWARD path (pod-to-pod traffic on the node's
bridge passes FORWARD through br_netfilter, after kube-proxy's DNAT, so rules see real pod IPs).

Semantics (networking.k8s.io/v1): a pod selected by a policy with Ingress (Egress) in its
policyTypes is isolated in that direction and accepts only what some selecting policy's rules
allow: peers by podSelector (the policy's namespace), namespaceSelector, both, or ipBlock (with
except); ports by number, range (endPort) or name (the destination pod's container port);
protocols TCP, UDP, SCTP. Replies of allowed connections pass (conntrack). Traffic from the node
itself (kubelet probes, a host Prometheus) does not pass FORWARD and is never blocked, as with
most network plugins. Denied connections are rejected (TCP reset, ICMP otherwise), so clients
fail at once instead of timing out.

Limits, said plainly: a new pod can send or receive for the moment between its IP appearing in a
watch event and the rules being applied (real agents close that window with pod admission hooks); ipBlock rules match pod IPs
only here, since nothing outside the pod range is reachable on this node anyway.

Runs as a process of `make cluster-up` (pid file run/cluster/pids/netpol.pid).
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import logging
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localnode import config as cfg

log = logging.getLogger("localnode.netpol")

TOP_CHAIN = cfg.NETPOL_CHAIN
Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    ip: str
    labels: Mapping[str, str]
    # container port name -> (number, protocol)
    named_ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)


def pods_from(items: Iterable[Obj]) -> list[Pod]:
    """Running pods with an IP of their own (not host network) from API objects (pure)."""
    out = []
    for item in items:
        spec, status, meta = item.get("spec") or {}, item.get("status") or {}, item["metadata"]
        ip = status.get("podIP") or status.get("pod_ip")
        host_network = spec.get("hostNetwork") or spec.get("host_network")
        if not ip or host_network or status.get("phase") in ("Succeeded", "Failed"):
            continue
        ports = {
            p["name"]: (
                int(p.get("containerPort") or p.get("container_port")),
                p.get("protocol") or "TCP",
            )
            for c in spec.get("containers") or []
            for p in c.get("ports") or []
            if p.get("name")
        }
        out.append(Pod(meta["namespace"], meta["name"], ip, dict(meta.get("labels") or {}), ports))
    return out


def selects(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector against labels; an empty selector selects everything (pure)."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or selector.get("match_labels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or selector.get("match_expressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown label selector operator {op!r}")
    return True


@dataclass(frozen=True)
class Allow:
    """One allowed (peer, port) pair: ``peer`` a CIDR (None = anyone), ``port`` e.g. "9092" or
    "7078:7079" (None = any), ``proto`` tcp|udp|sctp (None = any)."""

    peer: str | None
    proto: str | None
    port: str | None
    exceptions: tuple[str, ...] = ()


def _peer_cidrs(
    peer: Obj, policy_ns: str, pods: Sequence[Pod], ns_labels: Mapping[str, Mapping[str, str]]
) -> list[tuple[str, tuple[str, ...]]]:
    block = peer.get("ipBlock") or peer.get("ip_block")
    if block:
        return [(block["cidr"], tuple(block.get("except") or block.get("_except") or ()))]
    pod_sel = peer.get("podSelector", peer.get("pod_selector"))
    ns_sel = peer.get("namespaceSelector", peer.get("namespace_selector"))
    out: list[tuple[str, tuple[str, ...]]] = []
    for pod in pods:
        if ns_sel is None:
            if pod.namespace != policy_ns:
                continue
        elif not selects(ns_sel, ns_labels.get(pod.namespace, {})):
            continue
        if pod_sel is not None and not selects(pod_sel, pod.labels):
            continue
        out.append((f"{pod.ip}/32", ()))
    return out


def _ports(
    rule_ports: Sequence[Obj] | None, target: Pod | None
) -> list[tuple[str | None, str | None]]:
    """(proto, port) pairs of a rule's ports; a named port resolves on ``target`` (pure)."""
    if not rule_ports:
        return [(None, None)]
    out: list[tuple[str | None, str | None]] = []
    for p in rule_ports:
        proto = str(p.get("protocol") or "TCP").lower()
        port = p.get("port")
        if port is None:
            out.append((proto, None))
        elif isinstance(port, int) or str(port).isdigit():
            end = p.get("endPort") or p.get("end_port")
            out.append((proto, f"{port}:{end}" if end else str(port)))
        elif target is not None and port in target.named_ports:
            number, named_proto = target.named_ports[port]
            out.append((named_proto.lower(), str(number)))
        # A named port the pod does not have allows nothing on it.
    return out


def _direction(policy: Obj, direction: str) -> tuple[bool, list[Obj]]:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or spec.get("policy_types")
    if not types:  # the API's default: Ingress, plus Egress when egress rules exist
        types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    return direction in types, list(spec.get(direction.lower()) or [])


def allowed(
    pods: Sequence[Pod],
    namespaces: Mapping[str, Mapping[str, str]],
    policies: Sequence[Obj],
    direction: str,
) -> dict[str, list[Allow]]:
    """Pod IP -> what it may receive (Ingress) or send (Egress), for isolated pods only (pure)."""
    out: dict[str, list[Allow]] = {}
    for policy in policies:
        meta, spec = policy["metadata"], policy.get("spec") or {}
        applies, rules = _direction(policy, direction)
        if not applies:
            continue
        selector = spec.get("podSelector", spec.get("pod_selector")) or {}
        for pod in pods:
            if pod.namespace != meta["namespace"] or not selects(selector, pod.labels):
                continue
            allows = out.setdefault(pod.ip, [])
            for rule in rules:
                peers = rule.get("from" if direction == "Ingress" else "to") or rule.get("_from")
                port_specs = rule.get("ports")
                if not peers:
                    cidrs: list[tuple[str | None, tuple[str, ...], Pod | None]] = [(None, (), None)]
                else:
                    cidrs = []
                    for peer in peers:
                        for block, exc in _peer_cidrs(peer, meta["namespace"], pods, namespaces):
                            peer_pod = next((p for p in pods if f"{p.ip}/32" == block), None)
                            cidrs.append((block, exc, peer_pod))
                for cidr, exc, peer_pod in cidrs:
                    # Ingress named ports are the receiving pod's; egress ones the peer's.
                    target = pod if direction == "Ingress" else peer_pod
                    for proto, port in _ports(port_specs, target):
                        allows.append(Allow(cidr, proto, port, exc))
    return out


def _chain(prefix: str, ip: str) -> str:
    return f"{prefix}{hashlib.sha256(ip.encode()).hexdigest()[:12].upper()}"


def render(
    pods: Sequence[Pod], namespaces: Mapping[str, Mapping[str, str]], policies: Sequence[Obj]
) -> tuple[str, list[str]]:
    """The iptables-restore input for the filter table, and the chains it declares (pure)."""
    ingress = allowed(pods, namespaces, policies, "Ingress")
    egress = allowed(pods, namespaces, policies, "Egress")
    chains = [TOP_CHAIN]
    body = [f"-A {TOP_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"]
    per_pod: list[str] = []
    for table, prefix, dst_flag, peer_flag in (
        (ingress, "COINFEED-NPI-", "-d", "-s"),
        (egress, "COINFEED-NPE-", "-s", "-d"),
    ):
        for ip in sorted(table, key=lambda a: ipaddress.ip_address(a)):
            chain = _chain(prefix, ip)
            chains.append(chain)
            body.append(f"-A {TOP_CHAIN} {dst_flag} {ip}/32 -j {chain}")
            for allow in table[ip]:
                if allow.exceptions:
                    # An excepted range inside an allowed block: rejected before the allow.
                    for exc in allow.exceptions:
                        per_pod.append(f"-A {chain} {peer_flag} {exc} -j REJECT")
                match = f"-A {chain}"
                if allow.peer:
                    match += f" {peer_flag} {allow.peer}"
                if allow.proto:
                    match += f" -p {allow.proto}"
                    if allow.port:
                        match += f" --dport {allow.port}"
                per_pod.append(f"{match} -j RETURN")
            per_pod.append(f"-A {chain} -p tcp -j REJECT --reject-with tcp-reset")
            per_pod.append(f"-A {chain} -j REJECT --reject-with icmp-port-unreachable")
    text = "\n".join(["*filter", *(f":{c} - [0:0]" for c in chains), *body, *per_pod, "COMMIT", ""])
    return text, chains


# --- I/O -----------------------------------------------------------------------------------------


def existing_chains() -> list[str]:
    out = subprocess.run(
        ["iptables", "-w", "-S"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[1] for line in out.splitlines() if line.startswith("-N COINFEED-NP")]


def apply(text: str, chains: Sequence[str]) -> None:
    subprocess.run(
        ["iptables-restore", "-w", "--noflush"],
        input=text,
        text=True,
        check=True,
        capture_output=True,
    )
    for stale in set(existing_chains()) - set(chains):
        subprocess.run(["iptables", "-w", "-X", stale], check=False, capture_output=True)


def snapshot(core: Any, net: Any) -> tuple[list[Pod], dict[str, dict[str, str]], list[Obj]]:
    ser = core.api_client.sanitize_for_serialization
    pods = pods_from(ser(core.list_pod_for_all_namespaces()).get("items", []))
    namespaces = {
        ns["metadata"]["name"]: dict(ns["metadata"].get("labels") or {})
        for ns in ser(core.list_namespace()).get("items", [])
    }
    policies = ser(net.list_network_policy_for_all_namespaces()).get("items", [])
    return pods, namespaces, policies


Enforce = Callable[[str, Sequence[str]], None]


def _watch_forever(
    list_fn: Callable[..., Any], changed: threading.Event, stop: threading.Event
) -> None:
    """Set ``changed`` on every event of one watch; the watch is re-opened when it ends or fails
    (a restart may have missed events, so it counts as a change too)."""
    from kubernetes import watch

    while not stop.is_set():
        changed.set()
        watcher = watch.Watch()
        try:
            for _ in watcher.stream(list_fn, timeout_seconds=60):
                changed.set()
                if stop.is_set():
                    break
        except Exception as exc:
            log.warning(
                "watch %s failed, re-opening: %s", getattr(list_fn, "__name__", list_fn), exc
            )
            stop.wait(1.0)
        finally:
            watcher.stop()


def run(
    core: Any,
    net: Any,
    enforce: Enforce,
    resync: float = 30.0,
    stop: threading.Event | None = None,
    settle: float = 0.1,
) -> None:
    """Render and enforce the rules after every watched change, and at least every ``resync``
    seconds; returns when ``stop`` is set. ``enforce`` gets the rules text and its chains, only
    when the text changed."""
    stop = stop or threading.Event()
    changed = threading.Event()
    for list_fn in (
        core.list_pod_for_all_namespaces,
        core.list_namespace,
        net.list_network_policy_for_all_namespaces,
    ):
        threading.Thread(
            target=_watch_forever, args=(list_fn, changed, stop), daemon=True, name="netpol-watch"
        ).start()
    applied = ""
    while not stop.is_set():
        changed.wait(timeout=resync)
        if stop.is_set():
            break
        stop.wait(settle)  # a burst of events (a new pod: several updates) makes one pass
        changed.clear()
        try:
            text, chains = render(*snapshot(core, net))
            if text != applied:
                enforce(text, chains)
                applied = text
                log.info("applied %d chains", len(chains))
        except Exception as exc:
            log.warning("pass failed: %s", exc)
            stop.wait(1.0)
            changed.set()  # try again soon rather than at the next resync


def main(argv: list[str] | None = None) -> int:
    from kubernetes import client
    from kubernetes import config as kconfig

    from localnode.config import Layout

    parser = argparse.ArgumentParser(prog="python -m localnode.netpol", description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True, help="the node's run/cluster folder")
    parser.add_argument(
        "--resync",
        type=float,
        default=30.0,
        help="seconds between full passes when no watch event arrives (default 30)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    layout = Layout(args.run_dir)
    kconfig.load_kube_config(str(layout.kubeconfig))
    rules_file = layout.run_dir / "netpol-rules.txt"

    def enforce(text: str, chains: Sequence[str]) -> None:
        apply(text, chains)
        rules_file.write_text(text)

    run(client.CoreV1Api(), client.NetworkingV1Api(), enforce, resync=args.resync)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
