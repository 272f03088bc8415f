"""Start, check and stop the local single-node cluster (`make cluster-up/-down/-status`).

The processes run on this machine as root, each recorded in a pid file under run/cluster/pids;
``down`` stops them in reverse order, removes the pods' containers, network namespaces, mounts,
the bridge and our iptables chains, and restores the host settings recorded before the first
``up``. Both are safe to run twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from coinfeed import paths
from coinfeed.devcluster.pki import KeyPair
from coinfeed.devcluster.pki import cert as _cert
from coinfeed.devcluster.pki import key_pem as _key_pem
from coinfeed.devcluster.pki import new_key as _new_key
from coinfeed.devcluster.procs import free_ports, is_our_process, read_pid, write_pid
from coinfeed.versions import parse_versions
from localnode import config as cfg
from localnode.apiserver import PKI, kubeconfig
from localnode.config import Layout

ROOT: Final = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S: Final = 300.0
CNI_BIN_DIRS: Final = ("/usr/lib/cni", "/opt/cni/bin")
# Started in this order, stopped in the reverse one.
COMPONENTS: Final = (
    "containerd",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "provisioner",
    "netpol",
)


class NodeError(RuntimeError):
    """The local node could not be started, checked or stopped; the message says why."""


def say(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def version(name: str) -> str:
    """A pin from the repository's versions.env (this harness is dev code: it may read the repo)."""
    return parse_versions((ROOT / "versions.env").read_text())[name]


# --- prerequisites --------------------------------------------------------------------------


def node_bin_dir() -> Path:
    return paths.bin_dir() / f"node-{version('KUBERNETES_VERSION')}"


def envtest_dir() -> Path:
    return paths.bin_dir() / f"envtest-{version('KUBERNETES_VERSION')}"


def find_cni_bin_dir() -> str | None:
    for d in CNI_BIN_DIRS:
        if (Path(d) / "bridge").exists() and (Path(d) / "host-local").exists():
            return d
    return None


def missing_prerequisites() -> list[str]:
    """Each missing thing with what to do about it (pure but for the file-system look-ups)."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("the local node runs containers and changes iptables: run as root")
    apt = {
        "containerd": "containerd",
        "runc": "runc",
        "iptables": "iptables",
        "conntrack": "conntrack",
        "ip": "iproute2",
        "ctr": "containerd",
        "docker": "docker.io",
    }
    for tool, package in apt.items():
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found: apt-get install {package}")
    if find_cni_bin_dir() is None:
        problems.append(
            "CNI plugins (bridge, host-local, portmap) not found: apt-get install containernetworking-plugins"
        )
    for name in ("kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
        if not os.access(node_bin_dir() / name, os.X_OK):
            problems.append(f"{name} not built: run `bash scripts/build-go-tools.sh node`")
    for name in ("kube-apiserver", "etcd", "kubectl"):
        if not os.access(envtest_dir() / name, os.X_OK):
            problems.append(f"{name} not built: run `make envtest`")
    if not Path("/proc/sys/net/bridge").exists():
        problems.append("the br_netfilter kernel module is not loaded: modprobe br_netfilter")
    return problems


# --- small helpers --------------------------------------------------------------------------


def run(
    argv: Sequence[str], check: bool = True, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        if check:
            raise NodeError(f"{' '.join(argv)} did not finish within {timeout:.0f} s") from exc
        return subprocess.CompletedProcess(list(argv), 124, "", f"timed out after {timeout:.0f} s")
    if check and proc.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[:800]}")
    return proc


def read_sysctl(name: str) -> str | None:
    path = Path("/proc/sys") / name.replace(".", "/")
    try:
        return path.read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    path = Path("/proc/sys") / name.replace(".", "/")
    with contextlib.suppress(OSError):
        if path.read_text().strip() != value:
            path.write_text(value)


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_bytes()[-32 * 1024 :].decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def _write(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def iptables_chains(binary: str = "iptables") -> dict[str, list[str]]:
    """Every chain per table: {table: [chain, ...]}."""
    chains: dict[str, list[str]] = {}
    for table in ("filter", "nat", "mangle", "raw"):
        proc = run([binary, "-w", "-t", table, "-S"], check=False)
        if proc.returncode != 0:
            continue
        chains[table] = [
            line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("-N ", "-P "))
        ]
    return chains


def our_chains(chains: dict[str, list[str]]) -> dict[str, list[str]]:
    """The chains of ours in a listing (pure)."""
    return {
        t: [c for c in cs if c.startswith(cfg.OUR_CHAIN_PREFIXES)]
        for t, cs in chains.items()
        if any(c.startswith(cfg.OUR_CHAIN_PREFIXES) for c in cs)
    }


def our_mounts(layout: Layout, mounts_text: str) -> list[str]:
    """Mount points of ours in /proc/self/mounts text, deepest first (pure)."""
    roots = (
        str(layout.state_dir),
        str(layout.runtime_dir),
        "/run/netns/cni-",
        "/var/run/netns/cni-",
    )
    points = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            point = fields[1].replace("\\040", " ")
            if point.startswith(roots):
                points.append(point)
    return sorted(set(points), key=lambda p: (-p.count("/"), p))


# --- PKI and kubeconfigs -------------------------------------------------------------------


def write_pki(layout: Layout) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pki = PKI.generate()
    d = layout.pki
    _write(d / "ca.crt", pki.ca.cert_pem)
    _write(d / "ca.key", pki.ca.key_pem, 0o600)
    _write(d / "sa.key", pki.sa_key_pem, 0o600)
    _write(d / "sa.pub", pki.sa_pub_pem)
    ca_cert = x509.load_pem_x509_certificate(pki.ca.cert_pem)
    ca_key = serialization.load_pem_private_key(pki.ca.key_pem, password=None)

    def serving(cn: str, names: Sequence[str], ips: Sequence[str]) -> KeyPair:
        key = _new_key()
        pem = _cert(cn, (), key, (ca_cert.subject, ca_key), server_names=names, server_ips=ips)
        return KeyPair(pem, _key_pem(key))

    apiserver = serving(
        "kube-apiserver",
        (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            f"kubernetes.default.svc.{cfg.CLUSTER_DOMAIN}",
        ),
        ("127.0.0.1", cfg.NODE_IP, cfg.KUBERNETES_SERVICE_IP),
    )
    _write(d / "apiserver.crt", apiserver.cert_pem)
    _write(d / "apiserver.key", apiserver.key_pem, 0o600)
    kubelet = serving(f"system:node:{cfg.NODE_NAME}", (cfg.NODE_NAME,), (cfg.NODE_IP,))
    _write(d / "kubelet-serving.crt", kubelet.cert_pem)
    _write(d / "kubelet-serving.key", kubelet.key_pem, 0o600)
    url = f"https://{cfg.NODE_IP}:{cfg.APISERVER_PORT}"
    for component, (user, groups) in cfg.IDENTITIES.items():
        pair = pki.client_pair(user, groups)
        _write(d / f"{component}.crt", pair.cert_pem)
        _write(d / f"{component}.key", pair.key_pem, 0o600)
        config = kubeconfig(url, pki.ca.cert_pem, user, client=pair)
        path = layout.kubeconfig if component == "admin" else layout.kubeconfig_for(component)
        _write(path, yaml.safe_dump(config, sort_keys=False), 0o600)


# --- processes ------------------------------------------------------------------------------


def pid_file(layout: Layout, name: str) -> Path:
    return layout.pids / f"{name}.pid"


def running(layout: Layout, name: str) -> int | None:
    pid = read_pid(pid_file(layout, name))
    if pid is not None and is_our_process(pid, _marker(layout, name)):
        return pid
    return None


def exited(layout: Layout, name: str) -> bool:
    """The process we spawned under ``name`` is gone or a zombie (no marker check: right after
    the fork its command line may not be the program's yet)."""
    pid = read_pid(pid_file(layout, name))
    if pid is None:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def _marker(layout: Layout, name: str) -> str:
    # Every process of ours has a path of this node's on its command line.
    if name == "containerd":
        return str(layout.conf / "containerd.toml")
    if name == "etcd":
        return str(layout.etcd_data)
    if name in ("provisioner", "netpol"):
        return f"localnode.{name}"
    if name == "kube-apiserver":
        return str(layout.pki)
    return str(layout.conf)


def spawn(layout: Layout, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
    layout.logs.mkdir(parents=True, exist_ok=True)
    with (layout.logs / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    write_pid(pid_file(layout, name), proc.pid)
    return proc.pid


def stop_process(layout: Layout, name: str, timeout: float = 20.0) -> None:
    pid = running(layout, name)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_our_process(pid, _marker(layout, name)):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.2)
        if is_our_process(pid, _marker(layout, name)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    pid_file(layout, name).unlink(missing_ok=True)


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    logs: Sequence[Path] = (),
    alive: Callable[[], str | None] = lambda: None,
) -> None:
    """Poll ``check`` until true; fail at once (with the logs) when ``alive`` names a process that
    exited, else at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = alive()
        if dead:
            detail = "\n".join(f"--- last lines of {p}:\n{tail(p)}" for p in logs)
            raise NodeError(f"{dead} exited while waiting for {what}\n{detail}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.5)
    detail = "\n".join(f"--- last lines of {p}:\n{tail(p)}" for p in logs)
    raise NodeError(f"{what} not ready after {timeout:.0f} s\n{detail}")


# --- the API, as admin ----------------------------------------------------------------------


class Admin:
    def __init__(self, layout: Layout) -> None:
        self.url = f"https://{cfg.NODE_IP}:{cfg.APISERVER_PORT}"
        ctx = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
        ctx.load_cert_chain(layout.pki / "admin.crt", layout.pki / "admin.key")
        self._ctx = ctx
        self.kubectl = str(envtest_dir() / "kubectl")
        self.kubeconfig = str(layout.kubeconfig)

    def get(self, path: str) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path)
        try:
            with urllib.request.urlopen(req, context=self._ctx, timeout=5) as resp:
                body = resp.read().decode()
                return int(resp.status), json.loads(body) if body.startswith("{") else body
        except urllib.error.HTTPError as err:
            return int(err.code), err.read().decode(errors="replace")

    def apply(self, objects: list[dict[str, Any]]) -> None:
        manifest = "\n---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)
        run(
            [self.kubectl, "--kubeconfig", self.kubeconfig, "apply", "--server-side", "-f", "-"],
            input=manifest,
        )

    def node_ready(self) -> bool:
        status, node = self.get(f"/api/v1/nodes/{cfg.NODE_NAME}")
        if status != 200:
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


# --- DNS (a query built by hand: the node's check needs no extra library) -----------------


def dns_query(name: str, qid: int = 0x4346) -> bytes:
    """A minimal DNS query for an A record (pure)."""
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return header + labels + b"\x00" + struct.pack(">HH", 1, 1)


def dns_answer_ips(response: bytes) -> list[str]:
    """The A records of a response to :func:`dns_query` (pure; [] for none or an error)."""
    if len(response) < 12:
        return []
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", response[:12])
    if flags & 0x000F:  # RCODE != NOERROR
        return []
    pos = 12
    for _ in range(qd):
        while response[pos] != 0:
            pos += response[pos] + 1
        pos += 5
    ips = []
    for _ in range(an):
        if response[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while response[pos] != 0:
                pos += response[pos] + 1
            pos += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", response[pos : pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            ips.append(socket.inet_ntoa(response[pos : pos + 4]))
        pos += rdlen
    return ips


def resolve(name: str, server: str = cfg.DNS_SERVICE_IP, timeout: float = 2.0) -> list[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(dns_query(name), (server, 53))
        return dns_answer_ips(s.recv(4096))


# --- up -------------------------------------------------------------------------------------


def record_host_settings(layout: Layout) -> None:
    """Once, before the first up: what down must restore."""
    if layout.host_before.exists():
        return
    before = {
        "sysctls": {name: read_sysctl(name) for name in cfg.SYSCTLS},
        "iptables": iptables_chains("iptables"),
        "ip6tables": iptables_chains("ip6tables"),
    }
    _write(layout.host_before, json.dumps(before, indent=2))


def bridge_exists() -> bool:
    return run(["ip", "link", "show", cfg.BRIDGE], check=False).returncode == 0


def ensure_bridge() -> None:
    if not bridge_exists():
        run(["ip", "link", "add", cfg.BRIDGE, "type", "bridge"])
    addrs = run(["ip", "-4", "-o", "addr", "show", "dev", cfg.BRIDGE]).stdout
    if f" {cfg.NODE_IP}/" not in addrs:
        prefix = cfg.POD_CIDR.split("/")[1]
        run(["ip", "addr", "add", f"{cfg.NODE_IP}/{prefix}", "dev", cfg.BRIDGE])
    run(["ip", "link", "set", cfg.BRIDGE, "up"])


def ensure_isolation() -> None:
    """Nothing leaves the pod range through this machine, nothing enters it from outside."""
    chain = cfg.ISOLATION_CHAIN
    if run(["iptables", "-w", "-S", chain], check=False).returncode != 0:
        run(["iptables", "-w", "-N", chain])
    run(["iptables", "-w", "-F", chain])
    run(["iptables", "-w", "-A", chain, "-s", cfg.POD_CIDR, "!", "-d", cfg.POD_CIDR, "-j", "DROP"])
    run(["iptables", "-w", "-A", chain, "!", "-s", cfg.POD_CIDR, "-d", cfg.POD_CIDR, "-j", "DROP"])
    # Pod-to-pod traffic then meets the NetworkPolicies (localnode.netpol fills this chain).
    if run(["iptables", "-w", "-S", cfg.NETPOL_CHAIN], check=False).returncode != 0:
        run(["iptables", "-w", "-N", cfg.NETPOL_CHAIN])
    run(["iptables", "-w", "-A", chain, "-j", cfg.NETPOL_CHAIN])
    if run(["iptables", "-w", "-C", "FORWARD", "-j", chain], check=False).returncode != 0:
        run(["iptables", "-w", "-I", "FORWARD", "1", "-j", chain])


def write_configs(layout: Layout) -> None:
    cni_bin = find_cni_bin_dir() or CNI_BIN_DIRS[0]
    _write(layout.conf / "containerd.toml", cfg.containerd_config(layout, cni_bin))
    _write(layout.cni_conf_dir / "10-coinfeed.conflist", cfg.dumps(cfg.cni_conflist(layout)))
    _write(layout.conf / "kubelet.yaml", yaml.safe_dump(cfg.kubelet_config(layout)))
    _write(layout.conf / "kube-proxy.yaml", yaml.safe_dump(cfg.kube_proxy_config(layout)))


def docker_image_id(ref: str) -> str | None:
    proc = run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=False, env=docker_env()
    )
    return proc.stdout.strip() or None


def loaded_ids_file(layout: Layout) -> Path:
    return layout.state_dir / "loaded-images.json"


def images_to_load(layout: Layout, refs: Sequence[str]) -> list[str]:
    """The refs whose docker build is not what the node's containerd holds (by image id)."""
    listed = run(ctr(layout, "images", "ls", "-q"), check=False).stdout.split()
    loaded = (
        json.loads(loaded_ids_file(layout).read_text()) if loaded_ids_file(layout).exists() else {}
    )
    stale = []
    for ref in refs:
        full = (
            ref
            if "/" in ref.split(":")[0] and "." in ref.split("/")[0]
            else f"docker.io/library/{ref}"
        )
        if full not in listed:
            stale.append(ref)
            continue
        built = docker_image_id(ref)
        # No engine to ask (or no such build): what the node holds stays.
        if built is not None and loaded.get(ref) != built:
            stale.append(ref)
    return stale


def ctr(layout: Layout, *args: str) -> list[str]:
    return ["ctr", "--address", str(layout.containerd_socket), "--namespace", "k8s.io", *args]


def load_images(layout: Layout, refs: Sequence[str]) -> None:
    """docker save | ctr import: the images docker built, into the node's containerd."""
    env = docker_env()
    for ref in refs:
        save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE, env=env)
        imp = subprocess.run(
            ctr(layout, "images", "import", "--no-unpack", "-"),
            stdin=save.stdout,
            capture_output=True,
            text=True,
        )
        if save.stdout is not None:
            save.stdout.close()
        if save.wait() != 0 or imp.returncode != 0:
            raise NodeError(
                f"loading image {ref} into the node failed (is it built? `make images` / "
                f"`make base-images`): {imp.stderr.strip()[:500]}"
            )
        ids_file = loaded_ids_file(layout)
        loaded = json.loads(ids_file.read_text()) if ids_file.exists() else {}
        loaded[ref] = docker_image_id(ref)
        _write(ids_file, json.dumps(loaded, indent=2))


def docker_env() -> dict[str, str]:
    env = dict(os.environ)
    if "DOCKER_HOST" not in env and run(["docker", "info"], check=False).returncode != 0:
        env["DOCKER_HOST"] = f"unix://{ROOT / 'run' / 'docker' / 'docker.sock'}"
    return env


def up(layout: Layout, timeout: float = READY_TIMEOUT_S) -> None:
    problems = missing_prerequisites()
    if problems:
        raise NodeError("cannot start the local node:\n  - " + "\n  - ".join(problems))
    if all(running(layout, name) is None for name in COMPONENTS):
        # Nothing of this run folder runs: a node of another one would share the bridge and the
        # ports (refused, named), and what a dead one left would confuse this one (removed).
        found = reclaim_dead_node(layout)
        if found:
            say("removed what a dead node left: " + ", ".join(found))
    started = time.monotonic()
    for d in (layout.run_dir, layout.state_dir, layout.runtime_dir, layout.volumes, layout.pids):
        d.mkdir(parents=True, exist_ok=True)
    record_host_settings(layout)
    for name, value in cfg.NEEDED_SYSCTLS.items():
        write_sysctl(name, value)
    ensure_bridge()
    ensure_isolation()
    if running(layout, "etcd") is None and running(layout, "kube-apiserver") is None:
        # A fresh control plane: new PKI, so new identities, and an empty store to match.
        shutil.rmtree(layout.etcd_data, ignore_errors=True)
        write_pki(layout)
    write_configs(layout)
    nodebin, envbin = node_bin_dir(), envtest_dir()

    if running(layout, "containerd") is None:
        spawn(
            layout, "containerd", ["containerd", "--config", str(layout.conf / "containerd.toml")]
        )
    wait_for(
        "containerd",
        lambda: run(ctr(layout, "version"), check=False).returncode == 0,
        60,
        [layout.logs / "containerd.log"],
    )
    say(f"containerd up ({time.monotonic() - started:.0f} s)")
    missing = images_to_load(layout, [cfg.PAUSE_IMAGE, coredns_image()])
    if missing:
        say(f"loading {', '.join(missing)} into the node")
        load_images(layout, missing)

    if running(layout, "etcd") is None:
        client, peer = free_ports(2)
        _write(layout.conf / "etcd-port", str(client))
        spawn(layout, "etcd", [str(envbin / "etcd"), *cfg.etcd_args(layout, client, peer)])
    etcd_port = int((layout.conf / "etcd-port").read_text())
    if running(layout, "kube-apiserver") is None:
        spawn(
            layout,
            "kube-apiserver",
            [str(envbin / "kube-apiserver"), *cfg.apiserver_args(layout, etcd_port)],
        )
    admin = Admin(layout)
    wait_for(
        "kube-apiserver",
        lambda: admin.get("/readyz")[0] == 200,
        120,
        [layout.logs / "kube-apiserver.log", layout.logs / "etcd.log"],
        alive=lambda: next((n for n in ("etcd", "kube-apiserver") if exited(layout, n)), None),
    )
    say(f"kube-apiserver up at {admin.url} ({time.monotonic() - started:.0f} s)")
    cm_port, sched_port = free_ports(2)
    if running(layout, "kube-controller-manager") is None:
        spawn(
            layout,
            "kube-controller-manager",
            [
                str(nodebin / "kube-controller-manager"),
                *cfg.controller_manager_args(layout, cm_port),
            ],
        )
    if running(layout, "kube-scheduler") is None:
        spawn(
            layout,
            "kube-scheduler",
            [str(nodebin / "kube-scheduler"), *cfg.scheduler_args(layout, sched_port)],
        )
    if running(layout, "kubelet") is None:
        spawn(layout, "kubelet", [str(nodebin / "kubelet"), *cfg.kubelet_args(layout)])
    if running(layout, "kube-proxy") is None:
        spawn(layout, "kube-proxy", [str(nodebin / "kube-proxy"), *cfg.kube_proxy_args(layout)])
    if running(layout, "provisioner") is None:
        spawn(
            layout,
            "provisioner",
            [sys.executable, "-m", "localnode.provisioner", "--run-dir", str(layout.run_dir)],
            env={"PYTHONPATH": str(ROOT)},
        )
    if running(layout, "netpol") is None:
        spawn(
            layout,
            "netpol",
            [sys.executable, "-m", "localnode.netpol", "--run-dir", str(layout.run_dir)],
            env={"PYTHONPATH": str(ROOT)},
        )
    wait_for(
        f"node {cfg.NODE_NAME}",
        admin.node_ready,
        timeout,
        [layout.logs / "kubelet.log", layout.logs / "containerd.log"],
    )
    say(f"node {cfg.NODE_NAME} Ready ({time.monotonic() - started:.0f} s)")
    # The service-account controller makes `default` in every namespace; the addons need kube-system's.
    admin.apply(cfg.addons(coredns_image()))
    wait_for(
        "cluster DNS (CoreDNS answering kubernetes.default)",
        lambda: (
            resolve(f"kubernetes.default.svc.{cfg.CLUSTER_DOMAIN}") == [cfg.KUBERNETES_SERVICE_IP]
        ),
        timeout,
        [layout.logs / "kubelet.log", layout.logs / "kube-proxy.log"],
    )
    say(f"cluster DNS answers ({time.monotonic() - started:.0f} s)")


def coredns_image() -> str:
    return f"coinfeed.local/coredns:{version('COREDNS_VERSION')}"


# --- down -----------------------------------------------------------------------------------


def remove_pods(layout: Layout) -> None:
    """Every container and sandbox the node's containerd runs, and their network namespaces."""
    if running(layout, "containerd") is not None:
        tasks = run(ctr(layout, "tasks", "ls", "-q"), check=False).stdout.split()
        for task in tasks:
            run(ctr(layout, "tasks", "kill", "--signal", "SIGKILL", task), check=False)
        deadline = time.monotonic() + 20
        for task in tasks:
            while time.monotonic() < deadline:
                if run(ctr(layout, "tasks", "delete", task), check=False).returncode == 0:
                    break
                time.sleep(0.3)
        for container in run(ctr(layout, "containers", "ls", "-q"), check=False).stdout.split():
            run(ctr(layout, "containers", "delete", container), check=False)
    # Shims outlive containerd by design; ours name our socket.
    run(["pkill", "-9", "-f", f"containerd-shim.*{layout.containerd_socket}"], check=False)
    for netns in run(["ip", "netns", "list"], check=False).stdout.splitlines():
        name = netns.split()[0] if netns.strip() else ""
        if name.startswith("cni-"):
            run(["ip", "netns", "delete", name], check=False)


def unmount_ours(layout: Layout) -> list[str]:
    failed = []
    for point in our_mounts(layout, Path("/proc/self/mounts").read_text()):
        if run(["umount", point], check=False).returncode != 0 and (
            run(["umount", "-l", point], check=False).returncode != 0
        ):
            failed.append(point)
    return failed


def remove_chains(binary: str, before: dict[str, list[str]]) -> None:
    """Delete the chains of ours that were not there before, and every jump to them."""
    now = our_chains(iptables_chains(binary))
    for table, chains in now.items():
        new = [c for c in chains if c not in before.get(table, [])]
        if not new:
            continue
        rules = run([binary, "-w", "-t", table, "-S"], check=False).stdout.splitlines()
        for rule in rules:
            parts = shlex.split(rule)
            if (
                parts[:1] == ["-A"]
                and parts[1] not in new
                and any(p in new for p in parts[2:] if not p.startswith("-"))
            ):
                run([binary, "-w", "-t", table, "-D", *parts[1:]], check=False)
        for chain in new:
            run([binary, "-w", "-t", table, "-F", chain], check=False)
        for chain in new:
            run([binary, "-w", "-t", table, "-X", chain], check=False)


def remove_cgroups() -> None:
    """The kubelet's kubepods hierarchy in every cgroup v1 controller (empty once pods are gone)."""
    for controller in Path("/sys/fs/cgroup").iterdir():
        top = controller / "kubepods"
        if not top.is_dir():
            continue
        for d in sorted(top.rglob("*"), key=lambda p: -len(p.parts)):
            if d.is_dir():
                with contextlib.suppress(OSError):
                    d.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def _holds_files_under(proc: Path, layout: Layout) -> bool:
    """A process with a file open in the node's state folders (e.g. containerd's meta.db) is ours,
    whatever run folder started it."""
    roots = (str(layout.state_dir) + "/", str(layout.runtime_dir) + "/")
    try:
        for fd in (proc / "fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith(roots):
                    return True
    except OSError:
        return False
    return False


def stray_processes(layout: Layout) -> list[tuple[int, str]]:
    """Processes of this node that no pid file names (e.g. after a crashed up): any command line
    that mentions the node's folders or socket."""
    markers = (
        str(layout.run_dir) + "/",
        str(layout.state_dir) + "/",
        str(layout.containerd_socket),
    )
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "localnode down" in cmdline or "localnode leftovers" in cmdline:
            continue
        try:
            exe = os.readlink(entry / "exe")
        except OSError:
            exe = ""
        if (
            any(m in cmdline for m in markers)
            or f"={cfg.NODE_IP}" in cmdline  # the API server's and kubelet's addresses
            or exe.startswith(str(node_bin_dir()) + "/")  # kubelet, controller-manager, ...
            or _holds_files_under(entry, layout)
        ):
            found.append((int(entry.name), cmdline.strip()[:200]))
    return found


def down(layout: Layout) -> None:
    for name in reversed(COMPONENTS):
        if name == "containerd":
            remove_pods(layout)
        stop_process(layout, name)
    for pid, _ in stray_processes(layout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run(["pkill", "-9", "-f", f"containerd-shim.*{layout.containerd_socket}"], check=False)
    failed = unmount_ours(layout)
    if failed:
        say("could not unmount: " + ", ".join(failed))
    if bridge_exists():
        run(["ip", "link", "delete", cfg.BRIDGE], check=False)
    if shutil.which("iptables"):
        # kube-proxy's own cleanup first (it knows its rules), then whatever else is ours.
        proxy = node_bin_dir() / "kube-proxy"
        if os.access(proxy, os.X_OK):
            run([str(proxy), "--cleanup"], check=False)
        before: dict[str, Any] = {}
        if layout.host_before.exists():
            before = json.loads(layout.host_before.read_text())
        remove_chains("iptables", before.get("iptables", {}))
        remove_chains("ip6tables", before.get("ip6tables", {}))
    if layout.host_before.exists():
        before = json.loads(layout.host_before.read_text())
        for name, value in before["sysctls"].items():
            if value is not None:
                write_sysctl(name, value)
        layout.host_before.unlink()
    remove_cgroups()
    # Pods and volumes go with the cluster; containerd's image store stays (a cache).
    for d in (
        layout.kubelet_root,
        layout.volumes,
        layout.cni_data_dir,
        layout.etcd_data,
        layout.runtime_dir,
    ):
        shutil.rmtree(d, ignore_errors=True)
    for d in (layout.pids, layout.pki, layout.conf):
        shutil.rmtree(d, ignore_errors=True)
    layout.kubeconfig.unlink(missing_ok=True)


def reclaim_dead_node(layout: Layout) -> list[str]:
    """Remove what a node whose processes are all gone left on the machine (a run killed before
    its ``down``: the bridge, iptables chains, mounts, network namespaces, the node's state), so a
    new node can start; returns what was found. Raises NodeError, touching nothing, while any
    node process still runs: that node is alive (``make cluster-up``, another test run).
    Without our bridge there is no sign of a dead node of ours: nothing is touched then (chains
    named like ours may belong to another Kubernetes on the host)."""
    live = stray_processes(layout)
    if live:
        raise NodeError(
            "a local node is running on this machine; stop it with `make cluster-down` (its "
            "processes: " + "; ".join(f"{pid}: {cmd}" for pid, cmd in live) + ")"
        )
    if not bridge_exists():
        return []
    found = leftovers(layout)
    if found:
        down(layout)
    return found


# --- status ---------------------------------------------------------------------------------


def leftovers(layout: Layout) -> list[str]:
    """What of ours is still on the machine (empty after a clean down)."""
    found = [f"process {n} (pid {p})" for n in COMPONENTS if (p := running(layout, n)) is not None]
    found += [f"process {pid}: {cmd}" for pid, cmd in stray_processes(layout)]
    found += [f"mount {m}" for m in our_mounts(layout, Path("/proc/self/mounts").read_text())]
    if bridge_exists():
        found.append(f"bridge {cfg.BRIDGE}")
    for binary in ("iptables", "ip6tables"):
        if shutil.which(binary):
            for table, chains in our_chains(iptables_chains(binary)).items():
                found += [f"{binary} chain {table}/{c}" for c in chains]
    for netns in run(["ip", "netns", "list"], check=False).stdout.splitlines():
        if netns.startswith("cni-"):
            found.append(f"network namespace {netns.split()[0]}")
    return found


def status(layout: Layout) -> dict[str, Any]:
    procs = {n: running(layout, n) for n in COMPONENTS}
    ready = False
    if procs["kube-apiserver"] and (layout.pki / "admin.crt").exists():
        with contextlib.suppress(OSError, NodeError):
            ready = Admin(layout).node_ready()
    return {"processes": procs, "node_ready": ready, "kubeconfig": str(layout.kubeconfig)}
