"""Start, watch and stop a local Kafka cluster: ZooKeeper + 3 brokers, or 3 combined KRaft nodes.

The JVMs run from the jars ``make setup`` fetched (``coinfeed.paths.kafka_jars_dir()``), each with
its own config, data dir, log file and pid file under the run directory. ``up`` returns only when
a metadata request sees all three brokers; ``down`` signals only pids whose command line names
this run directory, so it never touches another cluster's (or anybody's) processes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coinfeed import paths
from coinfeed.devcluster import procs
from coinfeed.devcluster.config import (
    ADMIN_USER,
    BROKER_IDS,
    SCRAM_MECHANISM,
    ZOOKEEPER,
    ClusterSpec,
    admin_scram_command,
    admin_scram_properties,
    broker_name,
    broker_properties,
    format_command,
    log4j_properties,
    new_cluster_id,
    node_command,
    render_properties,
    zookeeper_config,
)
from coinfeed.kafka_acls import Grant, apply_acls
from coinfeed.kafka_security import (
    CAFILE_ENV,
    PASSWORD_FILE_ENV,
    PROTOCOL_ENV,
    USERNAME_ENV,
    KafkaSecurity,
)

Progress = Callable[[str], None]

# Kafka's error code for a topic the asked broker does not know (yet).
UNKNOWN_TOPIC_OR_PARTITION = 3


class ClusterError(RuntimeError):
    """The local cluster could not be started, reached or stopped; the message says why."""


class JarsMissingError(ClusterError):
    pass


class PortInUseError(ClusterError):
    def __init__(self, port: int, user: str, host: str) -> None:
        self.port = port
        super().__init__(
            f"port {port} ({user}) on {host} is already in use: stop what listens there "
            f"(or an earlier cluster with `coinfeed kafka down --run-dir ...`), or choose other ports"
        )


class NodeFailedError(ClusterError):
    pass


@dataclass(frozen=True)
class NodeStatus:
    name: str
    pid: int | None
    alive: bool
    log: Path


@dataclass(frozen=True)
class ClusterStatus:
    spec: ClusterSpec
    nodes: list[NodeStatus]
    brokers_seen: list[int]
    metadata_error: str | None

    @property
    def healthy(self) -> bool:
        return all(n.alive for n in self.nodes) and self.brokers_seen == list(BROKER_IDS)


def format_status(status: ClusterStatus) -> str:
    """Human-readable status: one line per node, then what the metadata request saw."""
    spec = status.spec
    lines = [
        f"Kafka cluster ({spec.mode}, {spec.security}) in {spec.run_dir}",
        f"  bootstrap: {spec.bootstrap}",
    ]
    if spec.tls:
        # Paths only: the passwords stay in their 0600 files.
        lines.append(
            f"  SASL_SSL/{SCRAM_MECHANISM}: CA {spec.ca_path()}, "
            f"users' passwords in {spec.run_dir / 'secrets'} (super user {ADMIN_USER})"
        )
    ports = spec.listen_ports()
    for n in status.nodes:
        state = "alive" if n.alive else "stopped"
        pid = str(n.pid) if n.pid is not None else "-"
        controller = ports.get(f"{n.name} controller")
        extra = f" controller {controller}" if controller is not None else ""
        lines.append(
            f"  {n.name:<10} port {ports[n.name]:<6} pid {pid:<8} {state:<8} log {n.log}{extra}"
        )
    if status.metadata_error is not None:
        lines.append(f"  brokers seen via metadata: none ({status.metadata_error})")
    else:
        seen = ", ".join(str(b) for b in status.brokers_seen) or "none"
        lines.append(f"  brokers seen via metadata: {seen} ({len(status.brokers_seen)} of 3)")
    return "\n".join(lines)


def find_java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise ClusterError(
            "java not found: install Java 17+ (apt-get install openjdk-17-jre-headless)"
        )
    return java


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only (passwords, keys, configs holding a password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def new_ca() -> tuple[bytes, bytes]:
    """A fresh CA: (certificate PEM, PKCS#8 key PEM)."""
    from coinfeed.devcluster.pki import cert as _cert
    from coinfeed.devcluster.pki import key_pem as _key_pem
    from coinfeed.devcluster.pki import new_key as _new_key

    ca_key = _new_key()
    return _cert("coinfeed-kafka-dev-ca", (), ca_key, None, ca=True), _key_pem(ca_key)


def broker_keystore(
    host: str, ca_pem: bytes, ca_key_pem: bytes, valid: tuple[Any, Any] | None = None
) -> bytes:
    """The brokers' key + certificate chain (one PEM, PKCS#8 key), signed by the given CA.

    The brokers share one certificate valid for every name a client on this host may use.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from coinfeed.devcluster.pki import cert as _cert
    from coinfeed.devcluster.pki import key_pem as _key_pem
    from coinfeed.devcluster.pki import new_key as _new_key

    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = _new_key()
    ips = sorted({host, "127.0.0.1"} - {"localhost"})
    cert = _cert(
        "coinfeed-kafka-broker",
        (),
        key,
        (ca_cert.subject, ca_key),
        server_names=("localhost",),
        server_ips=ips,
        # Brokers also open TLS connections to each other, so the certificate is a client's too.
        client_and_server=True,
        valid=valid,
    )
    return _key_pem(key) + cert + ca_pem


def certificate_problem(pem: bytes, name: str, now: Any = None) -> str | None:
    """Why the first certificate in ``pem`` (a keystore or CA file called ``name``) is not valid
    at ``now``, or None. The JVM's own refusal does not always say "expired" (it may only report
    a failed PKIX validity check), so the dev cluster names it itself."""
    import datetime as dt

    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return f"{name}: no readable PEM certificate"
    when = now or dt.datetime.now(dt.UTC)
    subject = cert.subject.rfc4514_string()
    if when > cert.not_valid_after_utc:
        return f"{name}: certificate {subject} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if when < cert.not_valid_before_utc:
        return (
            f"{name}: certificate {subject} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    return None


def check_jars(jars_dir: Path) -> Path:
    if not any(jars_dir.glob("kafka_*.jar")) or not any(jars_dir.glob("zookeeper-*.jar")):
        raise JarsMissingError(
            f"Kafka/ZooKeeper jars not found in {jars_dir}: run `make setup` "
            "(it fetches them from Maven Central)"
        )
    return jars_dir


class LocalKafkaCluster:
    """One local cluster, described by a :class:`ClusterSpec`.

    ``tie_to_parent`` makes the JVMs die with the process that started them (tests); the CLI
    leaves it off so the cluster outlives ``coinfeed kafka up``. Linux ties a child to the
    *thread* that forked it, so with ``tie_to_parent`` call ``up``/``start_broker`` from a thread
    that outlives the cluster (the main thread, as pytest fixtures and tests do).
    """

    def __init__(
        self,
        spec: ClusterSpec,
        *,
        jars_dir: Path | None = None,
        java: str | None = None,
        tie_to_parent: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.spec = spec
        self._jars_dir = jars_dir
        self._java = java
        self.tie_to_parent = tie_to_parent
        self._progress = progress or (lambda _msg: None)
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._admin_client: Any = None
        self.up_seconds: float | None = None  # how long the last successful `up` took

    # -- construction from a run dir ------------------------------------------------------------

    @classmethod
    def load(cls, run_dir: Path, **kwargs: Any) -> LocalKafkaCluster | None:
        """The cluster whose state ``up`` saved in ``run_dir``, or None if there is none."""
        state = ClusterSpec(run_dir=run_dir).state_path()
        if not state.is_file():
            return None
        return cls(ClusterSpec.from_json(state.read_text(encoding="utf-8")), **kwargs)

    # -- facts ----------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return self.spec.bootstrap

    @property
    def marker(self) -> str:
        return str(self.spec.run_dir)

    def pid(self, node: str) -> int | None:
        """The node's pid if it is alive and ours, else None."""
        child = self._children.get(node)
        if child is not None and child.poll() is None:
            # Our own child: between fork and exec its cmdline does not show the run dir yet.
            return child.pid
        pid = procs.read_pid(self.spec.pid_path(node))
        if pid is None:
            return None
        procs.reap(pid)
        return pid if procs.is_our_process(pid, self.marker) else None

    def alive(self, node: str) -> bool:
        return self.pid(node) is not None

    # -- lifecycle ------------------------------------------------------------------------------

    def up(self, timeout: float = 180.0) -> float:
        """Start every node that is not running and wait until all brokers are registered.

        Returns the seconds it took. On failure, stops what it started and raises with the
        failing node's log file named.
        """
        started_at = time.monotonic()
        java = self._java or find_java()
        jars_dir = check_jars(self._jars_dir or paths.kafka_jars_dir())
        self._prepare_run_dir()
        to_start = [n for n in self.spec.node_names() if not self.alive(n)]
        if not to_start:
            self._progress(f"cluster in {self.spec.run_dir} is already running")
        self._check_ports(to_start)
        try:
            if self.spec.mode == "kraft":
                self._format_kraft(java, jars_dir, [n for n in to_start if n != ZOOKEEPER])
            if ZOOKEEPER in to_start:
                self._spawn(java, jars_dir, ZOOKEEPER)
                self._wait_zookeeper(started_at + timeout)
            if self.spec.tls and any(n != ZOOKEEPER for n in to_start):
                self._store_admin_credential(java, jars_dir)
            for node in to_start:
                if node != ZOOKEEPER:
                    self._spawn(java, jars_dir, node)
            self.wait_for_brokers(BROKER_IDS, deadline=started_at + timeout)
        except BaseException:
            # A half-started cluster is not worth a long graceful stop.
            self.down(timeout=15)
            raise
        elapsed = time.monotonic() - started_at
        self.up_seconds = elapsed
        self._progress(f"cluster up in {elapsed:.1f}s: {self.bootstrap}")
        return elapsed

    def down(self, timeout: float = 45.0, purge: bool = False) -> list[str]:
        """Stop this cluster's nodes (brokers first). Safe to run twice. Returns nodes stopped."""
        brokers = [broker_name(b) for b in BROKER_IDS]
        stopped = self._stop_nodes(brokers, timeout)
        if self.spec.mode == "zookeeper":
            stopped += self._stop_nodes([ZOOKEEPER], timeout)
        self._close_admin()
        if purge:
            for sub in ("data", "config", "pids"):
                shutil.rmtree(self.spec.run_dir / sub, ignore_errors=True)
            self.spec.state_path().unlink(missing_ok=True)
        return stopped

    def status(self) -> ClusterStatus:
        nodes = [
            NodeStatus(n, self.pid(n), self.alive(n), self.spec.log_path(n))
            for n in self.spec.node_names()
        ]
        error: str | None = None
        seen: list[int] = []
        if any(n.alive for n in nodes if n.name != ZOOKEEPER):
            try:
                seen = sorted(self.registered_brokers())
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
        else:
            error = "no broker is running"
        return ClusterStatus(self.spec, nodes, seen, error)

    # -- single brokers (for failure tests) -----------------------------------------------------

    def stop_broker(self, broker_id: int, timeout: float = 45.0) -> None:
        """SIGTERM one broker (a controlled shutdown) and wait for its process to exit."""
        self._stop_nodes([broker_name(broker_id)], timeout)
        self._wait_unregistered(broker_id, timeout)

    def kill_broker(self, broker_id: int, timeout: float = 45.0, wait: bool = True) -> None:
        """SIGKILL one broker; with ``wait``, also until the cluster noticed (it left the metadata)."""
        node = broker_name(broker_id)
        pid = self.pid(node)
        if pid is None:
            raise ClusterError(f"{node} is not running")
        procs.send_signal(pid, signal.SIGKILL)
        self._reap_child(node)
        if not procs.wait_gone(pid, self.marker, timeout):
            raise ClusterError(f"{node} (pid {pid}) survived SIGKILL")
        self.spec.pid_path(node).unlink(missing_ok=True)
        if wait:
            self._wait_unregistered(broker_id, timeout)

    def start_broker(self, broker_id: int, timeout: float = 120.0) -> None:
        """Start one stopped broker and wait until it is registered again."""
        node = broker_name(broker_id)
        if not self.alive(node):
            self._check_ports([node])
            self._spawn(self._java or find_java(), self._jars_dir or paths.kafka_jars_dir(), node)
        self.wait_for_brokers([broker_id], deadline=time.monotonic() + timeout)

    # -- security (sasl_ssl) ----------------------------------------------------------------------

    def password(self, user: str) -> str:
        """``user``'s password (made on first use, kept 0600 under the run dir)."""
        path = self.spec.password_path(user)
        if not path.is_file():
            write_private(path, secrets.token_urlsafe(24).encode())
        return path.read_text(encoding="utf-8").strip()

    def client_security(self, user: str) -> KafkaSecurity:
        """How ``user`` connects (PLAINTEXT when this cluster is not secured)."""
        if not self.spec.tls:
            return KafkaSecurity()
        return KafkaSecurity(
            protocol="SASL_SSL",
            mechanism=SCRAM_MECHANISM,
            username=user,
            password=self.password(user),
            cafile=str(self.spec.ca_path()),
        )

    def admin_security(self) -> KafkaSecurity:
        return self.client_security(ADMIN_USER)

    def client_env(self, user: str) -> dict[str, str]:
        """``COINFEED_KAFKA_*`` variables for a child process connecting as ``user``: the password
        as a file path, as a mounted Secret would give it, never the value itself."""
        if not self.spec.tls:
            return {}
        self.password(user)
        return {
            PROTOCOL_ENV: "SASL_SSL",
            USERNAME_ENV: user,
            PASSWORD_FILE_ENV: str(self.spec.password_path(user)),
            CAFILE_ENV: str(self.spec.ca_path()),
        }

    def add_user(self, user: str, grants: Sequence[Grant]) -> KafkaSecurity:
        """Create (or reset) ``user``'s SCRAM credential through the brokers, as admin, and allow
        it exactly ``grants``. Returns how the user connects."""
        if not self.spec.tls:
            raise ClusterError("users and ACLs exist only with security sasl_ssl")
        from kafka.admin import UserScramCredentialUpsertion

        # With ZooKeeper only the controller takes this request; another broker answers
        # NOT_CONTROLLER, which kafka-python reports as success (no message). So: alter, then
        # check the credential is stored, and try again (the next request may reach the
        # controller).
        for _ in range(20):
            result = self.admin().alter_user_scram_credentials(
                [UserScramCredentialUpsertion(user, SCRAM_MECHANISM, self.password(user))]
            )
            if result.get(user):
                raise ClusterError(f"creating Kafka user {user} failed: {result[user]}")
            stored = self.admin().describe_user_scram_credentials([user]).get(user) or {}
            if stored.get("credential_infos"):
                break
            self._close_admin()  # a new client may pick another node
            time.sleep(0.3)
        else:
            raise ClusterError(f"creating Kafka user {user}: the credential was not stored")
        if grants:
            apply_acls(self.admin(), user, grants)
        security = self.client_security(user)
        self._wait_user_ready(security)
        return security

    def _wait_user_ready(self, security: KafkaSecurity, timeout: float = 60.0) -> None:
        """Each broker learns a new credential from ZooKeeper a moment later: wait until every
        broker accepts it, so the caller's first connection does not race that."""
        from coinfeed.kafka import make_admin

        deadline = time.monotonic() + timeout
        for port in self.spec.broker_ports:
            while True:
                try:
                    make_admin(
                        f"{self.spec.host}:{port}",
                        security=security,
                        bootstrap_timeout_ms=2_000,
                        request_timeout_ms=5_000,
                    ).close()
                    break
                except Exception as exc:
                    if time.monotonic() > deadline:
                        raise ClusterError(
                            f"broker on port {port} does not accept user {security.username} "
                            f"after {timeout:.0f}s: {exc}"
                        ) from exc
                    time.sleep(0.5)

    def _ensure_tls(self) -> None:
        spec = self.spec
        if spec.ca_path().is_file() and spec.broker_keystore_path().is_file():
            return
        ca_pem, ca_key = new_ca()
        # The CA key is kept (owner only) so certificates can be reissued for this dev cluster.
        write_private(spec.ca_key_path(), ca_key)
        write_private(spec.broker_keystore_path(), broker_keystore(spec.host, ca_pem, ca_key))
        spec.ca_path().write_bytes(ca_pem)

    def _store_admin_credential(self, java: str, jars_dir: Path) -> None:
        """The brokers' own SCRAM user goes straight into ZooKeeper (they log in to each other
        with it, so it cannot be made through them); the password travels in a 0600 file."""
        write_private(
            self.spec.scram_config_path(),
            admin_scram_properties(self.password(ADMIN_USER)).encode(),
        )
        cmd = admin_scram_command(java, jars_dir, self.spec)
        log_path = self.spec.log_path(ZOOKEEPER)
        with log_path.open("ab") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=120).returncode
        if rc != 0:
            raise NodeFailedError(
                f"storing the admin SCRAM credential failed (exit {rc}); see {log_path}:\n"
                + procs.tail(log_path)
            )
        self._progress(f"SCRAM user {ADMIN_USER} stored in ZooKeeper")

    # -- metadata -------------------------------------------------------------------------------

    def admin(self) -> Any:
        """A cached ``KafkaAdminClient`` for this cluster (made lazily)."""
        if self._admin_client is None:
            from coinfeed.kafka import make_admin

            self._admin_client = make_admin(
                self.bootstrap,
                security=self.admin_security(),
                request_timeout_ms=10_000,
                client_id="coinfeed-devcluster",
            )
        return self._admin_client

    def registered_brokers(self) -> set[int]:
        """Ids of the live (unfenced) brokers a metadata request sees."""
        try:
            meta = self.admin().describe_cluster()
        except Exception:
            self._close_admin()  # a fresh client next time: the old one may point at a dead node
            raise
        return {int(b["broker_id"]) for b in meta["brokers"] if not b.get("is_fenced", False)}

    def partitions(self, topic: str, wait: float = 15.0) -> list[dict[str, Any]]:
        """Partition metadata of ``topic``: ``partition_index``, ``leader_id``, ``replica_nodes``,
        ``isr_nodes`` (as kafka-python returns them).

        The controller sends a new topic's metadata to each broker on its own, and the admin
        client asks whichever broker it likes; so "unknown topic" is retried for ``wait`` seconds
        before it counts as not found."""
        deadline = time.monotonic() + wait
        while True:
            try:
                topics = self.admin().describe_topics([topic])
            except Exception:
                self._close_admin()
                raise
            if topics and topics[0].get("error_code", 0) == 0:
                return sorted(topics[0]["partitions"], key=lambda p: int(p["partition_index"]))
            unknown = bool(topics) and topics[0].get("error_code") == UNKNOWN_TOPIC_OR_PARTITION
            if not unknown or time.monotonic() >= deadline:
                raise ClusterError(f"topic {topic!r} not found: {topics}")
            time.sleep(0.25)

    def leader(self, topic: str, partition: int) -> int:
        for p in self.partitions(topic):
            if int(p["partition_index"]) == partition:
                return int(p["leader_id"])
        raise ClusterError(f"topic {topic!r} has no partition {partition}")

    def wait_in_sync(self, topic: str, timeout: float = 120.0) -> None:
        """Wait until every partition of ``topic`` has all its replicas in the ISR."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                parts = self.partitions(topic)
                lagging = {
                    int(p["partition_index"]): sorted(set(p["replica_nodes"]) - set(p["isr_nodes"]))
                    for p in parts
                }
                lagging = {k: v for k, v in lagging.items() if v}
                if not lagging:
                    return
                last = f"replicas outside the ISR by partition: {lagging}"
            except Exception as exc:
                last = exc
            time.sleep(0.5)
        raise ClusterError(f"topic {topic!r} not fully in sync after {timeout:.0f}s: {last}")

    def wait_for_brokers(self, broker_ids: Iterable[int], deadline: float) -> None:
        """Wait until each of ``broker_ids`` is registered; fail fast when one's JVM exits."""
        wanted = set(broker_ids)
        started = time.monotonic()
        next_note = started + 5
        seen: set[int] = set()
        last_error: str | None = None
        while True:
            for b in sorted(wanted):
                self._check_alive(broker_name(b))
            if self.spec.mode == "zookeeper" and not self.alive(ZOOKEEPER):
                self._check_alive(ZOOKEEPER)
            try:
                seen = self.registered_brokers()
                last_error = None
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if wanted <= seen:
                return
            now = time.monotonic()
            if now >= deadline:
                missing = sorted(wanted - seen)
                logs = ", ".join(str(self.spec.log_path(broker_name(b))) for b in missing)
                detail = f"; last metadata error: {last_error}" if last_error else ""
                raise ClusterError(
                    f"brokers {missing} not registered after {now - started:.0f}s "
                    f"(seen: {sorted(seen)}){detail}; see {logs}"
                )
            if now >= next_note:
                self._progress(
                    f"waiting for brokers: {len(seen & wanted)} of {len(wanted)} registered "
                    f"({now - started:.0f}s)"
                )
                next_note = now + 5
            time.sleep(0.5)

    # -- internals ------------------------------------------------------------------------------

    def _prepare_run_dir(self) -> None:
        spec = self.spec
        state = spec.state_path()
        if state.is_file():
            saved = ClusterSpec.from_json(state.read_text(encoding="utf-8"))
            if saved.mode != spec.mode and (spec.run_dir / "data").exists():
                raise ClusterError(
                    f"{spec.run_dir} holds a {saved.mode} cluster; run "
                    f"`coinfeed kafka down --purge --run-dir {spec.run_dir}` first, "
                    "or choose another --run-dir"
                )
            running = [n for n in saved.node_names() if self.alive(n)]
            if running and replace(saved, cluster_id=None) != replace(spec, cluster_id=None):
                raise ClusterError(
                    f"a cluster with other settings is running in {spec.run_dir} "
                    f"({', '.join(running)}): run `coinfeed kafka down` first"
                )
            if spec.mode == "kraft" and spec.cluster_id is None:
                spec = replace(spec, cluster_id=saved.cluster_id)
        if spec.mode == "kraft" and spec.cluster_id is None:
            spec = replace(spec, cluster_id=new_cluster_id())
        self.spec = spec
        for sub in ("config", "data", "logs", "pids"):
            (spec.run_dir / sub).mkdir(parents=True, exist_ok=True)
        spec.log4j_path().write_text(log4j_properties(), encoding="utf-8")
        if spec.mode == "zookeeper":
            spec.config_path(ZOOKEEPER).write_text(
                render_properties(zookeeper_config(spec)), encoding="utf-8"
            )
        admin_password = None
        if spec.tls:
            self._ensure_tls()
            admin_password = self.password(ADMIN_USER)
        for b in BROKER_IDS:
            # Private: in sasl_ssl mode the file holds the brokers' own SCRAM password.
            write_private(
                spec.config_path(broker_name(b)),
                render_properties(broker_properties(spec, b, admin_password)).encode(),
            )
        state.write_text(spec.to_json(), encoding="utf-8")

    def _check_ports(self, nodes: list[str]) -> None:
        for user, port in self.spec.listen_ports().items():
            if user.split()[0] in nodes and not procs.port_free(self.spec.host, port):
                raise PortInUseError(port, user, self.spec.host)

    def _format_kraft(self, java: str, jars_dir: Path, nodes: list[str]) -> None:
        todo = [n for n in nodes if not (self.spec.data_dir(n) / "meta.properties").is_file()]
        if not todo:
            return
        self._progress(f"formatting KRaft log dirs ({', '.join(todo)})")
        running = []
        for node in todo:
            broker_id = BROKER_IDS[[broker_name(b) for b in BROKER_IDS].index(node)]
            cmd = format_command(java, jars_dir, self.spec, broker_id)
            log = self.spec.log_path(node).open("ab")
            running.append((node, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
        for node, proc, log in running:
            rc = proc.wait(timeout=120)
            log.close()
            if rc != 0:
                raise NodeFailedError(
                    f"formatting {node}'s log dir failed (exit {rc}); see {self.spec.log_path(node)}:\n"
                    + procs.tail(self.spec.log_path(node))
                )

    def _spawn(self, java: str, jars_dir: Path, node: str) -> None:
        cmd = node_command(java, jars_dir, self.spec, node)
        if self.tie_to_parent and shutil.which("setpriv"):
            # The JVM is SIGKILLed if its parent dies: no orphaned brokers after a crashed test run.
            cmd = ["setpriv", "--pdeathsig", "KILL", "--", *cmd]
        log_path = self.spec.log_path(node)
        with log_path.open("ab") as log:
            log.write(f"\n===== coinfeed: starting {node} at {time.ctime()} =====\n".encode())
            log.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.spec.run_dir,
                # Own session: Ctrl-C in the terminal that ran `kafka up` does not reach the JVMs.
                start_new_session=not self.tie_to_parent,
            )
        self._children[node] = proc
        procs.write_pid(self.spec.pid_path(node), proc.pid)
        self._progress(f"started {node} (pid {proc.pid}), log {log_path}")

    def _check_alive(self, node: str) -> None:
        if self.alive(node):
            return
        proc = self._children.get(node)
        code = proc.poll() if proc is not None else None
        how = f"exited with code {code}" if code is not None else "is not running"
        log = self.spec.log_path(node)
        cause = ""
        if self.spec.tls and node != ZOOKEEPER:
            problems = [
                certificate_problem(path.read_bytes(), path.name)
                for path in (self.spec.broker_keystore_path(), self.spec.ca_path())
                if path.is_file()
            ]
            cause = "".join(f"{p}\n" for p in problems if p)
        raise NodeFailedError(f"{node} {how}; {cause}see {log}. Last lines:\n{procs.tail(log)}")

    def _wait_zookeeper(self, deadline: float) -> None:
        while procs.four_letter_word(self.spec.host, self.spec.zookeeper_port, "ruok") != "imok":
            self._check_alive(ZOOKEEPER)
            if time.monotonic() >= deadline:
                log = self.spec.log_path(ZOOKEEPER)
                raise ClusterError(
                    f"ZooKeeper on {self.spec.host}:{self.spec.zookeeper_port} did not answer; see {log}"
                )
            time.sleep(0.2)
        self._progress(f"zookeeper answers on {self.spec.host}:{self.spec.zookeeper_port}")

    def _wait_unregistered(self, broker_id: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if broker_id not in self.registered_brokers():
                    return
            except Exception:
                pass  # with brokers going away the metadata request may fail for a moment
            time.sleep(0.3)
        raise ClusterError(f"broker {broker_id} still registered {timeout:.0f}s after it stopped")

    def _reap_child(self, node: str) -> None:
        proc = self._children.get(node)
        if proc is not None and proc.poll() is not None:
            del self._children[node]

    def _stop_nodes(self, nodes: list[str], timeout: float) -> list[str]:
        """SIGTERM the nodes together, SIGKILL whichever is still alive after ``timeout``."""
        pids = {n: p for n in nodes if (p := self.pid(n)) is not None}
        for node, pid in pids.items():
            self._progress(f"stopping {node} (pid {pid})")
            procs.send_signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node, pid in pids.items():
            child = self._children.get(node)
            if child is not None and child.pid == pid:
                # Our own child: wait on the process itself. Its command line may not show the
                # run dir yet (just forked, not yet exec'd), which a marker check would take for
                # "gone" while the JVM is about to start.
                try:
                    child.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._progress(
                        f"{node} (pid {pid}) ignored SIGTERM for {timeout:.0f}s: SIGKILL"
                    )
                    child.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.wait(10)
            elif not procs.wait_gone(pid, self.marker, max(0.0, deadline - time.monotonic())):
                self._progress(f"{node} (pid {pid}) ignored SIGTERM for {timeout:.0f}s: SIGKILL")
                procs.send_signal(pid, signal.SIGKILL)
                procs.wait_gone(pid, self.marker, 10)
            self._reap_child(node)
        for node in nodes:
            if node not in pids or not self.alive(node):
                self.spec.pid_path(node).unlink(missing_ok=True)
        return list(pids)

    def _close_admin(self) -> None:
        if self._admin_client is not None:
            # Closing a client of a dead cluster may fail; there is nothing to keep.
            with contextlib.suppress(Exception):
                self._admin_client.close()
            self._admin_client = None
