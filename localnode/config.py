"""What the local node is made of, as pure data: addresses, paths, flags and config files.

One single-node Kubernetes cluster on this machine (`make cluster-up`): etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kubelet on containerd, kube-proxy (iptables), CoreDNS and
a hostPath provisioner. Nothing here touches the machine; :mod:`localnode.node` does.

Addresses: the pods live on one bridge (``cfbr0``) that cluster-up creates; its address is the
node's address, where the API server and the kubelet listen, so pods reach them and nothing else
outside the node: pods get routes to the pod and service ranges only (no default route), CoreDNS
serves the cluster zone only, and a FORWARD rule drops anything that would leave the pod range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

NODE_NAME: Final = "coinfeed-node"
BRIDGE: Final = "cfbr0"
POD_CIDR: Final = "10.244.0.0/24"
NODE_IP: Final = "10.244.0.1"  # the bridge's address = the gateway of the pod range
SERVICE_CIDR: Final = "10.96.0.0/16"
KUBERNETES_SERVICE_IP: Final = "10.96.0.1"
DNS_SERVICE_IP: Final = "10.96.0.10"
CLUSTER_DOMAIN: Final = "cluster.local"
APISERVER_PORT: Final = 6443
KUBELET_PORT: Final = 10250
# CoreDNS listens unprivileged inside its pod; the kube-dns Service maps 53 to it.
COREDNS_PORT: Final = 1053
PAUSE_IMAGE: Final = "coinfeed.local/pause:3.10"
STORAGE_CLASS: Final = "coinfeed-local"
PROVISIONER: Final = "coinfeed.local/hostpath"
# Our own iptables chain (FORWARD isolation); kube-proxy's and the kubelet's start with KUBE-,
# the CNI plugins' with CNI-.
ISOLATION_CHAIN: Final = "COINFEED-NODE"
# NetworkPolicy enforcement (localnode/netpol.py): this chain, jumped to from ISOLATION_CHAIN,
# and one COINFEED-NPI-/COINFEED-NPE- chain per isolated pod.
NETPOL_CHAIN: Final = "COINFEED-NETPOL"
OUR_CHAIN_PREFIXES: Final = ("KUBE-", "CNI-", "COINFEED-")
# Host sysctls the node needs or that the kubelet changes; recorded at up, restored at down.
SYSCTLS: Final = (
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "vm.overcommit_memory",
    "kernel.panic",
    "kernel.panic_on_oops",
)
# What the node itself needs set (the kubelet sets the last three on its own).
NEEDED_SYSCTLS: Final = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}


@dataclass(frozen=True)
class Layout:
    """Where one node keeps its files. ``run_dir`` is the repository's run/cluster (logs, pid
    files, PKI, kubeconfigs); ``state_dir`` (/var/lib/coinfeed-node) holds what must live on a
    real file system with mounts (containerd's images, the kubelet's pods, volumes);
    ``runtime_dir`` (/run/coinfeed-node) holds sockets."""

    run_dir: Path
    state_dir: Path = Path("/var/lib/coinfeed-node")
    runtime_dir: Path = Path("/run/coinfeed-node")

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig printed by cluster-up."""
        return self.run_dir / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.run_dir / "pki"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def pids(self) -> Path:
        return self.run_dir / "pids"

    @property
    def conf(self) -> Path:
        return self.run_dir / "conf"

    @property
    def host_before(self) -> Path:
        """The host settings as found before the first cluster-up (restored by cluster-down)."""
        return self.run_dir / "host-before.json"

    @property
    def containerd_socket(self) -> Path:
        return self.runtime_dir / "containerd.sock"

    @property
    def containerd_root(self) -> Path:
        return self.state_dir / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.runtime_dir / "containerd"

    @property
    def kubelet_root(self) -> Path:
        return self.state_dir / "kubelet"

    @property
    def volumes(self) -> Path:
        return self.state_dir / "volumes"

    @property
    def cni_conf_dir(self) -> Path:
        return self.conf / "cni"

    @property
    def cni_data_dir(self) -> Path:
        return self.state_dir / "cni"

    @property
    def etcd_data(self) -> Path:
        return self.state_dir / "etcd"

    def kubeconfig_for(self, component: str) -> Path:
        return self.conf / f"{component}.kubeconfig"


def containerd_config(layout: Layout, cni_bin_dir: str) -> str:
    """containerd 1.6 config (version 2). restrict_oom_score_adj: this VM withholds
    CAP_SYS_RESOURCE, without it every sandbox fails ("can't get final child's PID from pipe")."""
    return f"""version = 2
root = "{layout.containerd_root}"
state = "{layout.containerd_state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{layout.state_dir}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir}"
    conf_dir = "{layout.cni_conf_dir}"
"""


def cni_conflist(layout: Layout) -> dict[str, Any]:
    """One bridge, host-local addresses; routes to the pod and service ranges only."""
    return {
        "cniVersion": "1.0.0",
        "name": "coinfeed",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    "routes": [{"dst": POD_CIDR}, {"dst": SERVICE_CIDR}],
                    "dataDir": str(layout.cni_data_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: Layout) -> dict[str, Any]:
    pki = layout.pki
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        # cgroups v1 on this VM: Kubernetes 1.34 still runs on it when told so.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "clusterDNS": [DNS_SERVICE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        # No host resolvers in pods: the cluster zone is all they may resolve.
        "resolvConf": "",
        "serializeImagePulls": False,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "protectKernelDefaults": False,
        # A shared build machine: evict only when truly out of room.
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
            "nodefs.inodesFree": "2%",
        },
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "maxPods": 110,
        "podPidsLimit": 4096,
        "shutdownGracePeriod": "0s",
    }


def kubelet_args(layout: Layout) -> list[str]:
    return [
        f"--config={layout.conf / 'kubelet.yaml'}",
        f"--kubeconfig={layout.kubeconfig_for('kubelet')}",
        f"--root-dir={layout.kubelet_root}",
        f"--cert-dir={layout.pki}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        "--v=1",
    ]


def kube_proxy_config(layout: Layout) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig_for("kube-proxy"))},
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "clusterCIDR": POD_CIDR,
        "mode": "iptables",
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        # Leave the host's conntrack settings as they are (0 = do not change).
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        # true would set net.ipv4.conf.all.route_localnet on the host.
        "iptables": {"localhostNodePorts": False},
    }


def etcd_args(layout: Layout, client_port: int, peer_port: int) -> list[str]:
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    return [
        "--name=coinfeed-node",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=coinfeed-node={peer}",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_args(layout: Layout, etcd_client_port: int) -> list[str]:
    p = layout.pki
    return [
        f"--etcd-servers=http://127.0.0.1:{etcd_client_port}",
        f"--bind-address={NODE_IP}",
        f"--advertise-address={NODE_IP}",
        f"--secure-port={APISERVER_PORT}",
        f"--tls-cert-file={p / 'apiserver.crt'}",
        f"--tls-private-key-file={p / 'apiserver.key'}",
        f"--client-ca-file={p / 'ca.crt'}",
        "--authorization-mode=Node,RBAC",
        # ServiceAccount and Pod Security admission are on by default.
        "--enable-admission-plugins=NodeRestriction",
        f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
        f"--service-account-key-file={p / 'sa.pub'}",
        f"--service-account-signing-key-file={p / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={p / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_args(layout: Layout, port: int) -> list[str]:
    p = layout.pki
    kc = layout.kubeconfig_for("kube-controller-manager")
    return [
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--service-account-private-key-file={p / 'sa.key'}",
        f"--root-ca-file={p / 'ca.crt'}",
        f"--cluster-signing-cert-file={p / 'ca.crt'}",
        f"--cluster-signing-key-file={p / 'ca.key'}",
        "--use-service-account-credentials=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--leader-elect=false",
        "--v=1",
    ]


def scheduler_args(layout: Layout, port: int) -> list[str]:
    kc = layout.kubeconfig_for("kube-scheduler")
    return [
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--leader-elect=false",
        "--v=1",
    ]


def kube_proxy_args(layout: Layout) -> list[str]:
    return [f"--config={layout.conf / 'kube-proxy.yaml'}", "--v=1"]


# Client identities: Kubernetes reads the user from CN and the groups from O.
IDENTITIES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "admin": ("coinfeed-admin", ("system:masters",)),
    "kube-controller-manager": ("system:kube-controller-manager", ()),
    "kube-scheduler": ("system:kube-scheduler", ()),
    "kubelet": (f"system:node:{NODE_NAME}", ("system:nodes",)),
    "kube-proxy": ("system:kube-proxy", ()),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("system:masters",)),
}


def corefile() -> str:
    """The cluster zone only: no `forward`, so names outside it are refused."""
    return f""".:{COREDNS_PORT} {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    loadbalance
}}
"""


def addons(coredns_image: str) -> list[dict[str, Any]]:
    """CoreDNS (Deployment + Service + RBAC) and the default StorageClass."""
    labels = {"k8s-app": "kube-dns"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": corefile()},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "priorityClassName": "system-cluster-critical",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65535,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "coredns",
                                "image": coredns_image,
                                "imagePullPolicy": "Never",
                                "command": ["/coredns", "-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {
                                        "containerPort": COREDNS_PORT,
                                        "protocol": "UDP",
                                        "name": "dns",
                                    },
                                    {
                                        "containerPort": COREDNS_PORT,
                                        "protocol": "TCP",
                                        "name": "dns-tcp",
                                    },
                                ],
                                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}},
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080},
                                    "initialDelaySeconds": 10,
                                },
                                "resources": {
                                    "requests": {"cpu": "20m", "memory": "32Mi"},
                                    "limits": {"memory": "128Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "clusterIP": DNS_SERVICE_IP,
                "selector": labels,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": COREDNS_PORT},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": COREDNS_PORT},
                ],
            },
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
    ]


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2) + "\n"
