"""A real Kubernetes API server for tests (the envtest approach): etcd + kube-apiserver on loopback.

No nodes and no controller-manager: objects are stored, validated, admitted (Pod Security
Admission included) and authorized by RBAC exactly as in a cluster, but nothing runs them and no
garbage collector deletes children by owner reference. The binaries come from
``$KUBEBUILDER_ASSETS`` or ``make envtest`` (``~/.cache/coinfeed/bin/envtest-<version>/``).

Pure functions build the PKI, the command lines and the kubeconfigs; :class:`KubeAPIServer` only
starts, waits for and stops the two processes. Run one by hand with
``python -m localnode.apiserver --run-dir run/apiserver``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import yaml

from coinfeed import paths, versions
from coinfeed.devcluster.pki import KeyPair, cert, key_pem, new_key
from coinfeed.devcluster.procs import free_ports

HOST: Final = "127.0.0.1"
SERVICE_CLUSTER_IP_RANGE: Final = "10.0.0.0/24"
# The first address of the service range: the in-cluster `kubernetes` Service.
KUBERNETES_SERVICE_IP: Final = "10.0.0.1"
ADMIN_USER: Final = "coinfeed-admin"
MASTERS_GROUP: Final = "system:masters"
MISSING_HINT: Final = "run `make envtest` (or set KUBEBUILDER_ASSETS to a folder holding both)"
READY_TIMEOUT_S: Final = 180.0
TOKEN_SECONDS: Final = 24 * 3600


class APIServerError(RuntimeError):
    """The test API server could not be started or used; the message says why."""


class BinariesMissingError(APIServerError, FileNotFoundError):
    """kube-apiserver or etcd is not where it should be."""


class PortTakenError(APIServerError):
    """Another process bound one of the free ports picked between picking and binding."""


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path
    # `make envtest` also builds a kubectl of the same release; other asset folders may lack one.
    kubectl: Path | None = None


def default_assets_dir() -> Path:
    return paths.bin_dir() / f"envtest-{versions.get('KUBERNETES_VERSION')}"


def find_binaries(env: Mapping[str, str] | None = None) -> Binaries:
    """``$KUBEBUILDER_ASSETS`` when set, else the folder ``make envtest`` fills."""
    env = os.environ if env is None else env
    assets = env.get("KUBEBUILDER_ASSETS")
    folder = Path(assets) if assets else default_assets_dir()
    source = "KUBEBUILDER_ASSETS" if assets else "the envtest cache"
    apiserver, etcd, kubectl = (folder / n for n in ("kube-apiserver", "etcd", "kubectl"))
    missing = [p.name for p in (apiserver, etcd) if not os.access(p, os.X_OK)]
    if missing:
        raise BinariesMissingError(
            f"{' and '.join(missing)} not found in {folder} ({source}): {MISSING_HINT}"
        )
    return Binaries(apiserver, etcd, kubectl if os.access(kubectl, os.X_OK) else None)


def find_kubectl(env: Mapping[str, str] | None = None) -> Path | None:
    """The kubectl of the API server's release when present, else the one on PATH (or None)."""
    try:
        bundled = find_binaries(env).kubectl
    except BinariesMissingError:
        bundled = None
    if bundled is not None:
        return bundled
    on_path = shutil.which("kubectl")
    return Path(on_path) if on_path else None


# --- PKI ------------------------------------------------------------------------------------------

# The certificate helpers live in the package (the Kafka dev cluster's TLS mode uses them too).
_new_key, _key_pem, _cert = new_key, key_pem, cert


@dataclass(frozen=True)
class PKI:
    """A throw-away CA, the API server's serving pair and the service-account signing key."""

    ca: KeyPair
    serving: KeyPair
    sa_key_pem: bytes
    sa_pub_pem: bytes

    @classmethod
    def generate(cls) -> PKI:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        ca_key = _new_key()
        ca_pem = _cert("coinfeed-envtest-ca", (), ca_key, None, ca=True)
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
        serving_key = _new_key()
        serving_pem = _cert(
            "kube-apiserver",
            (),
            serving_key,
            (ca_cert.subject, ca_key),
            server_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            server_ips=(HOST, KUBERNETES_SERVICE_IP),
        )
        sa_key = _new_key()
        sa_pub = sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(
            ca=KeyPair(ca_pem, _key_pem(ca_key)),
            serving=KeyPair(serving_pem, _key_pem(serving_key)),
            sa_key_pem=_key_pem(sa_key),
            sa_pub_pem=sa_pub,
        )

    def client_pair(self, user: str, groups: Sequence[str]) -> KeyPair:
        """A client certificate: Kubernetes reads the user from CN and the groups from O."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        ca_cert = x509.load_pem_x509_certificate(self.ca.cert_pem)
        ca_key = serialization.load_pem_private_key(self.ca.key_pem, password=None)
        key = _new_key()
        pem = _cert(user, groups, key, (ca_cert.subject, ca_key), client=True)
        return KeyPair(pem, _key_pem(key))


# --- command lines and kubeconfigs (pure) ----------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Ports and files of one test API server run."""

    run_dir: Path
    etcd_client_port: int
    etcd_peer_port: int
    secure_port: int

    @property
    def etcd_url(self) -> str:
        return f"http://{HOST}:{self.etcd_client_port}"

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.secure_port}"

    @property
    def pki_dir(self) -> Path:
        return self.run_dir / "pki"

    @property
    def etcd_data_dir(self) -> Path:
        return self.run_dir / "etcd-data"

    @property
    def kubeconfig_dir(self) -> Path:
        return self.run_dir / "kubeconfigs"

    def pki_file(self, name: str) -> Path:
        return self.pki_dir / name


def etcd_args(layout: Layout) -> list[str]:
    peer = f"http://{HOST}:{layout.etcd_peer_port}"
    return [
        "--name=coinfeed-envtest",
        f"--data-dir={layout.etcd_data_dir}",
        f"--listen-client-urls={layout.etcd_url}",
        f"--advertise-client-urls={layout.etcd_url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=coinfeed-envtest={peer}",
        # Throw-away data on a shared, busy machine: durability is not worth the fsync latency.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_args(layout: Layout) -> list[str]:
    f = layout.pki_file
    return [
        f"--etcd-servers={layout.etcd_url}",
        f"--bind-address={HOST}",
        f"--advertise-address={HOST}",
        f"--secure-port={layout.secure_port}",
        f"--cert-dir={layout.pki_dir}",
        f"--tls-cert-file={f('apiserver.crt')}",
        f"--tls-private-key-file={f('apiserver.key')}",
        f"--client-ca-file={f('ca.crt')}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={layout.url}",
        f"--service-account-key-file={f('sa.pub')}",
        f"--service-account-signing-key-file={f('sa.key')}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        # Pod Security Admission is on by default. ServiceAccount admission is off, as in envtest:
        # without a controller-manager no `default` ServiceAccount ever appears, and that plugin
        # would refuse every Pod for it.
        "--disable-admission-plugins=ServiceAccount",
        # So that a privileged Pod is refused by Pod Security Admission, not by this flag.
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def kubeconfig(
    url: str,
    ca_pem: bytes,
    user: str,
    *,
    client: KeyPair | None = None,
    token: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """A self-contained kubeconfig (everything embedded) for one identity."""
    if (client is None) == (token is None):
        raise ValueError("a kubeconfig needs exactly one of a client certificate or a token")
    if client is not None:
        credentials = {
            "client-certificate-data": _b64(client.cert_pem),
            "client-key-data": _b64(client.key_pem),
        }
    else:
        credentials = {"token": str(token)}
    context: dict[str, str] = {"cluster": "envtest", "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "envtest",
                "cluster": {"server": url, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": context}],
        "current-context": user,
    }


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def _safe_file_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_bytes()[-32 * 1024 :].decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


# --- the processes ---------------------------------------------------------------------------

_PR_SET_PDEATHSIG: Final = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux), so no orphan stays."""
    if sys.platform == "linux":
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class KubeAPIServer:
    """etcd + kube-apiserver on free loopback ports; use as a context manager or start()/stop()."""

    def __init__(self, run_dir: Path | None = None, binaries: Binaries | None = None) -> None:
        self._binaries = binaries
        self._own_tmp = run_dir is None
        self.run_dir = (
            Path(tempfile.mkdtemp(prefix="coinfeed-apiserver-")) if run_dir is None else run_dir
        )
        etcd_client, etcd_peer, secure = free_ports(3)
        self.layout = Layout(self.run_dir, etcd_client, etcd_peer, secure)
        self._pki: PKI | None = None
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None
        self._kubeconfigs: dict[tuple[str, tuple[str, ...]], Path] = {}
        self.admin_kubeconfig = self.layout.kubeconfig_dir / "admin.yaml"

    @property
    def url(self) -> str:
        return self.layout.url

    @property
    def ca_file(self) -> Path:
        return self.layout.pki_file("ca.crt")

    @property
    def pki(self) -> PKI:
        if self._pki is None:
            raise APIServerError("the API server has not been started")
        return self._pki

    # lifecycle

    def start(self, timeout: float = READY_TIMEOUT_S, attempts: int = 3) -> KubeAPIServer:
        binaries = self._binaries or find_binaries()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, attempts + 1):
            self._write_pki()
            self._etcd = self._spawn([str(binaries.etcd), *etcd_args(self.layout)], "etcd.log")
            self._apiserver = self._spawn(
                [str(binaries.kube_apiserver), *apiserver_args(self.layout)], "kube-apiserver.log"
            )
            try:
                self._wait_ready(timeout)
                return self
            except PortTakenError:
                # Ports are picked free and bound a moment later; on a shared machine another
                # service can win that race. Start over on new ports with fresh etcd data.
                self._stop_processes()
                if attempt == attempts:
                    self._own_tmp = False
                    raise
                shutil.rmtree(self.layout.etcd_data_dir, ignore_errors=True)
                for name in ("etcd", "kube-apiserver"):
                    log = self.run_dir / f"{name}.log"
                    if log.exists():
                        log.replace(self.run_dir / f"{name}.attempt{attempt}.log")
                self.layout = Layout(self.run_dir, *free_ports(3))
            except BaseException:
                self._own_tmp = False  # keep the logs the error points at
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Terminate kube-apiserver, then etcd, and wait for both (safe to call twice)."""
        self._stop_processes()
        if self._own_tmp:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self._own_tmp = False

    def _stop_processes(self) -> None:
        for proc in (self._apiserver, self._etcd):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._apiserver = self._etcd = None

    def __enter__(self) -> KubeAPIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = (self.run_dir / log_name).open("ab")
        try:
            # A session of their own: a Ctrl-C aimed at the test run does not kill them mid-write;
            # the parent-death signal still ends them if the test run itself is killed.
            return subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    def _write_pki(self) -> None:
        self._pki = pki = PKI.generate()
        f = self.layout.pki_file
        _write_private(f("ca.crt"), pki.ca.cert_pem)
        _write_private(f("apiserver.crt"), pki.serving.cert_pem)
        _write_private(f("apiserver.key"), pki.serving.key_pem)
        _write_private(f("sa.key"), pki.sa_key_pem)
        _write_private(f("sa.pub"), pki.sa_pub_pem)
        admin = pki.client_pair(ADMIN_USER, (MASTERS_GROUP,))
        _write_private(f("admin.crt"), admin.cert_pem)
        _write_private(f("admin.key"), admin.key_pem)
        self._write_kubeconfig(
            self.admin_kubeconfig, kubeconfig(self.url, pki.ca.cert_pem, ADMIN_USER, client=admin)
        )

    def _write_kubeconfig(self, path: Path, config: dict[str, Any]) -> Path:
        _write_private(path, yaml.safe_dump(config, sort_keys=False).encode("utf-8"))
        return path

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            for name, proc in (("etcd", self._etcd), ("kube-apiserver", self._apiserver)):
                if proc is not None and proc.poll() is not None:
                    log = self.run_dir / f"{name}.log"
                    last_lines = _tail(log)
                    error = (
                        PortTakenError if "address already in use" in last_lines else APIServerError
                    )
                    raise error(
                        f"{name} exited with code {proc.returncode} while starting; "
                        f"last lines of {log}:\n{last_lines}"
                    )
            try:
                status, body = self.request("GET", "/readyz")
                if status == 200:
                    return
                last = f"HTTP {status}: {body[-500:]}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.5)
        log = self.run_dir / "kube-apiserver.log"
        raise APIServerError(
            f"kube-apiserver at {self.url} not ready after {timeout:.0f} s ({last}); "
            f"last lines of {log}:\n{_tail(log)}"
        )

    # talking to it as admin (for what kubectl cannot hand out, e.g. service-account tokens)

    def _admin_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(self.layout.pki_file("admin.crt"), self.layout.pki_file("admin.key"))
        return ctx

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, str]:
        """One HTTP call as the admin user; returns (status, body text) for any HTTP status."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._admin_context(), timeout=10) as resp:
                return int(resp.status), resp.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as err:
            return int(err.code), err.read().decode("utf-8", errors="replace")

    # identities

    def kubeconfig_for(self, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig authenticating as ``user`` in ``groups`` (client certificate)."""
        if not user or user.startswith("system:serviceaccount:"):
            raise ValueError(
                f"invalid user {user!r}: give a plain user name; for a ServiceAccount use "
                "kubeconfig_for_service_account(namespace, name)"
            )
        key = (user, tuple(groups))
        if key not in self._kubeconfigs:
            pair = self.pki.client_pair(user, groups)
            name = _safe_file_name("user-" + "-".join((user, *groups))) + ".yaml"
            self._kubeconfigs[key] = self._write_kubeconfig(
                self.layout.kubeconfig_dir / name,
                kubeconfig(self.url, self.pki.ca.cert_pem, user, client=pair),
            )
        return self._kubeconfigs[key]

    def kubeconfig_for_service_account(self, namespace: str, name: str) -> Path:
        """A kubeconfig with a token the API server issues for an existing ServiceAccount.

        The token comes from the TokenRequest API, so the identity is exactly the one RBAC
        RoleBindings name (``system:serviceaccount:<ns>:<name>``, groups ``system:serviceaccounts``
        and ``system:serviceaccounts:<ns>``), authenticated the way a Pod's would be.
        """
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_SECONDS},
        }
        status, body = self.request("POST", path, request)
        if status == 404:
            raise APIServerError(
                f"ServiceAccount {namespace}/{name} does not exist: create it first "
                f"(e.g. install the chart that ships it) — {body[:300]}"
            )
        if status != 201:
            raise APIServerError(
                f"TokenRequest for {namespace}/{name} failed: HTTP {status}: {body[:500]}"
            )
        token = json.loads(body)["status"]["token"]
        user = service_account_user(namespace, name)
        return self._write_kubeconfig(
            self.layout.kubeconfig_dir / (_safe_file_name(f"sa-{namespace}-{name}") + ".yaml"),
            kubeconfig(self.url, self.pki.ca.cert_pem, user, token=str(token), namespace=namespace),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localnode.apiserver",
        description="Run the test Kubernetes API server (etcd + kube-apiserver on loopback) until Ctrl-C.",
    )
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="where PKI, logs, etcd data and kubeconfigs go"
    )
    args = parser.parse_args(argv)
    try:
        server = KubeAPIServer(args.run_dir).start()
    except APIServerError as exc:
        print(f"apiserver: {exc}", file=sys.stderr)
        return 1
    print(f"kube-apiserver ready at {server.url}")
    print(f"export KUBECONFIG={server.admin_kubeconfig}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
