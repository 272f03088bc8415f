"""The local node's pure parts: configs, DNS packets, what counts as ours, the provisioner's decisions."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from localnode import config as cfg
from localnode import node, provisioner
from localnode.config import Layout

LAYOUT = Layout(Path("/tmp/run-cluster"))


def test_containerd_config_has_the_settings_this_vm_needs() -> None:
    text = cfg.containerd_config(LAYOUT, "/usr/lib/cni")
    assert "restrict_oom_score_adj = true" in text
    assert "SystemdCgroup = false" in text
    assert f'sandbox_image = "{cfg.PAUSE_IMAGE}"' in text
    assert f'address = "{LAYOUT.containerd_socket}"' in text


def test_kubelet_runs_on_cgroup_v1_without_host_resolvers() -> None:
    conf = cfg.kubelet_config(LAYOUT)
    assert conf["failCgroupV1"] is False and conf["cgroupDriver"] == "cgroupfs"
    assert conf["resolvConf"] == ""
    assert conf["clusterDNS"] == [cfg.DNS_SERVICE_IP]
    assert conf["authentication"]["anonymous"]["enabled"] is False
    assert conf["address"] == cfg.NODE_IP


def test_pods_get_no_default_route() -> None:
    bridge = cfg.cni_conflist(LAYOUT)["plugins"][0]
    assert bridge["isDefaultGateway"] is False and bridge["ipMasq"] is False
    assert [r["dst"] for r in bridge["ipam"]["routes"]] == [cfg.POD_CIDR, cfg.SERVICE_CIDR]


def test_kube_proxy_leaves_host_conntrack_and_route_localnet_alone() -> None:
    conf = cfg.kube_proxy_config(LAYOUT)
    assert conf["conntrack"]["maxPerCore"] == 0
    assert conf["iptables"]["localhostNodePorts"] is False


def test_corefile_serves_the_cluster_zone_only() -> None:
    text = cfg.corefile()
    assert "kubernetes cluster.local" in text
    assert "forward" not in text


def _response(qid: int, name: str, ips: list[str], rcode: int = 0) -> bytes:
    query = node.dns_query(name, qid)
    header = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(ips), 0, 0)
    answers = b"".join(
        b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + socket.inet_aton(ip) for ip in ips
    )
    return header + query[12:] + answers


def test_dns_packets_round_trip() -> None:
    q = node.dns_query("kubernetes.default.svc.cluster.local", 7)
    assert q[:2] == b"\x00\x07" and b"\x0akubernetes\x07default" in q
    assert node.dns_answer_ips(_response(7, "a.b", ["10.96.0.1", "10.96.0.2"])) == [
        "10.96.0.1",
        "10.96.0.2",
    ]
    assert node.dns_answer_ips(_response(7, "a.b", [], rcode=5)) == []  # REFUSED
    assert node.dns_answer_ips(b"") == []


def test_our_chains_and_mounts_are_told_apart_from_the_hosts() -> None:
    chains = {
        "filter": ["INPUT", "FORWARD", "KUBE-FIREWALL", "DOCKER"],
        "nat": ["CNI-abc", "POSTROUTING"],
    }
    assert node.our_chains(chains) == {"filter": ["KUBE-FIREWALL"], "nat": ["CNI-abc"]}
    mounts = (
        "/dev/vda / ext4 rw 0 0\n"
        f"tmpfs {LAYOUT.state_dir}/kubelet/pods/x/volumes/a tmpfs rw 0 0\n"
        f"overlay {LAYOUT.runtime_dir}/containerd/io/rootfs overlay rw 0 0\n"
        "nsfs /run/netns/cni-1234 nsfs rw 0 0\n"
        "nsfs /run/netns/other nsfs rw 0 0\n"
    )
    got = node.our_mounts(LAYOUT, mounts)
    assert "/" not in got and "/run/netns/other" not in got
    assert got[0] == f"{LAYOUT.state_dir}/kubelet/pods/x/volumes/a"  # deepest first
    assert "/run/netns/cni-1234" in got


def test_missing_prerequisites_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("COINFEED_CACHE", "/nonexistent-cache")
    problems = "\n".join(node.missing_prerequisites())
    assert "apt-get install containerd" in problems
    assert "apt-get install docker.io" in problems
    assert "build-go-tools.sh node" in problems
    assert "make envtest" in problems


def _claim(**spec: object) -> dict[str, object]:
    base = {
        "storageClassName": cfg.STORAGE_CLASS,
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "2Gi"}},
    }
    base.update(spec)
    return {
        "metadata": {"name": "data-kafka-0", "namespace": "coinfeed", "uid": "0123456789abcdef"},
        "spec": base,
        "status": {"phase": "Pending"},
    }


def test_provisioner_serves_pending_claims_of_its_class_only() -> None:
    assert provisioner.wants_volume(_claim())
    assert not provisioner.wants_volume(_claim(storageClassName="other"))
    assert not provisioner.wants_volume(_claim(volumeName="pvc-x"))
    pv = provisioner.volume_for(_claim(), Path("/v/x"))
    assert pv["spec"]["capacity"] == {"storage": "2Gi"}
    assert pv["spec"]["claimRef"]["uid"] == "0123456789abcdef"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == cfg.PROVISIONER
    assert provisioner.volume_dir(Path("/v"), _claim()) == Path("/v/coinfeed-data-kafka-0-01234567")


def test_provisioner_removes_only_its_own_released_volumes() -> None:
    ours = {"metadata": {"annotations": {"pv.kubernetes.io/provisioned-by": cfg.PROVISIONER}}}
    assert provisioner.released({**ours, "status": {"phase": "Released"}})
    assert not provisioner.released({**ours, "status": {"phase": "Bound"}})
    assert not provisioner.released({"metadata": {}, "status": {"phase": "Released"}})
