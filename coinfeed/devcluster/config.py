"""What the local cluster looks like: node names, ports, directories and every config file's text.

Everything here is pure, so the settings the issue promises (RF 3, min ISR 2, 24 h retention, ...)
are tested without starting a JVM.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

Mode = Literal["zookeeper", "kraft"]
MODES: Final[tuple[Mode, ...]] = ("zookeeper", "kraft")
# plaintext: one PLAINTEXT listener. sasl_ssl: one SASL_SSL listener (SCRAM-SHA-512 over TLS) for
# clients and brokers alike, an ACL authorizer, and ``admin`` as the only super user.
Security = Literal["plaintext", "sasl_ssl"]
SECURITIES: Final[tuple[Security, ...]] = ("plaintext", "sasl_ssl")
ADMIN_USER: Final = "admin"
SCRAM_MECHANISM: Final = "SCRAM-SHA-512"
CONFIG_COMMAND_MAIN: Final = "kafka.admin.ConfigCommand"
BROKER_IDS: Final[tuple[int, ...]] = (1, 2, 3)
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_BROKER_PORTS: Final[tuple[int, int, int]] = (9092, 9093, 9094)
DEFAULT_ZOOKEEPER_PORT: Final = 2181
DEFAULT_CONTROLLER_PORTS: Final[tuple[int, int, int]] = (9192, 9193, 9194)
DEFAULT_HEAP_MB: Final = 384
STATE_FILE: Final = "cluster.json"
ZOOKEEPER: Final = "zookeeper"

ZOOKEEPER_MAIN: Final = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
KAFKA_MAIN: Final = "kafka.Kafka"
STORAGE_TOOL_MAIN: Final = "kafka.tools.StorageTool"


def broker_name(broker_id: int) -> str:
    return f"broker-{broker_id}"


def _check_port(port: int) -> int:
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"invalid port {port!r}: expected 1-65535")
    return port


@dataclass(frozen=True)
class ClusterSpec:
    """One local cluster: its mode, ports and run directory. Saved as ``<run_dir>/cluster.json``."""

    run_dir: Path
    mode: Mode = "zookeeper"
    host: str = DEFAULT_HOST
    broker_ports: tuple[int, ...] = DEFAULT_BROKER_PORTS
    zookeeper_port: int = DEFAULT_ZOOKEEPER_PORT
    controller_ports: tuple[int, ...] = DEFAULT_CONTROLLER_PORTS
    heap_mb: int = DEFAULT_HEAP_MB
    security: Security = "plaintext"
    # KRaft only: every node's log dir is formatted with this one id (made on first `up`).
    cluster_id: str | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir).resolve())
        object.__setattr__(self, "broker_ports", tuple(self.broker_ports))
        object.__setattr__(self, "controller_ports", tuple(self.controller_ports))
        if self.mode not in MODES:
            raise ValueError(
                f"unknown Kafka mode {self.mode!r}: expected one of {', '.join(MODES)}"
            )
        if self.host != "localhost":
            try:
                loopback = ipaddress.ip_address(self.host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise ValueError(f"host {self.host!r} is not a loopback address (127.0.0.1)")
        for name, ports in (("broker", self.broker_ports), ("controller", self.controller_ports)):
            if len(ports) != len(BROKER_IDS):
                raise ValueError(f"expected {len(BROKER_IDS)} {name} ports, got {list(ports)}")
        listening = self.listen_ports()
        for port in listening.values():
            _check_port(port)
        if len(set(listening.values())) != len(listening):
            raise ValueError(f"ports must all differ, got {listening}")
        if self.security not in SECURITIES:
            raise ValueError(
                f"unknown Kafka security {self.security!r}: expected one of {', '.join(SECURITIES)}"
            )
        if self.security == "sasl_ssl" and self.mode == "kraft":
            # KRaft's only bootstrap path for SCRAM users is `kafka-storage format --add-scram`,
            # which takes the credential on the command line: we do not put secrets in argv.
            raise ValueError("KAFKA_SECURITY=sasl_ssl needs KAFKA_MODE=zookeeper")
        if self.heap_mb < 128:
            raise ValueError(f"heap of {self.heap_mb} MB is too small for a broker (>= 128)")

    @property
    def bootstrap(self) -> str:
        """``host:port,host:port,host:port`` of the three brokers."""
        return ",".join(f"{self.host}:{p}" for p in self.broker_ports)

    def node_names(self) -> list[str]:
        """Start order: ZooKeeper first (ZooKeeper mode), then the brokers."""
        names = [broker_name(b) for b in BROKER_IDS]
        return [ZOOKEEPER, *names] if self.mode == "zookeeper" else names

    def broker_port(self, broker_id: int) -> int:
        return self.broker_ports[BROKER_IDS.index(broker_id)]

    def listen_ports(self) -> dict[str, int]:
        """Every port a node of this cluster listens on, named by what uses it."""
        ports: dict[str, int] = {}
        if self.mode == "zookeeper":
            ports["zookeeper"] = self.zookeeper_port
        for b, port in zip(BROKER_IDS, self.broker_ports, strict=True):
            ports[broker_name(b)] = port
        if self.mode == "kraft":
            for b, port in zip(BROKER_IDS, self.controller_ports, strict=True):
                ports[f"{broker_name(b)} controller"] = port
        return ports

    # Layout under run_dir: one folder per concern, one file per node.
    def config_path(self, node: str) -> Path:
        suffix = "cfg" if node == ZOOKEEPER else "properties"
        return self.run_dir / "config" / f"{node}.{suffix}"

    def data_dir(self, node: str) -> Path:
        return self.run_dir / "data" / node

    def log_path(self, node: str) -> Path:
        return self.run_dir / "logs" / f"{node}.log"

    def pid_path(self, node: str) -> Path:
        return self.run_dir / "pids" / f"{node}.pid"

    def log4j_path(self) -> Path:
        return self.run_dir / "config" / "log4j.properties"

    def state_path(self) -> Path:
        return self.run_dir / STATE_FILE

    # sasl_ssl only: the generated CA, the brokers' key + certificate, and one password per user.
    def ca_path(self) -> Path:
        return self.run_dir / "tls" / "ca.pem"

    def ca_key_path(self) -> Path:
        return self.run_dir / "tls" / "ca.key"

    def broker_keystore_path(self) -> Path:
        return self.run_dir / "tls" / "broker.pem"

    def password_path(self, user: str) -> Path:
        if not user or not all(c.isalnum() or c in "-_." for c in user):
            raise ValueError(f"invalid Kafka user name {user!r}: letters, digits, '-', '_', '.'")
        return self.run_dir / "secrets" / f"{user}.password"

    def scram_config_path(self) -> Path:
        return self.run_dir / "secrets" / "admin-scram.properties"

    @property
    def tls(self) -> bool:
        return self.security == "sasl_ssl"

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["run_dir"] = str(self.run_dir)
        data["broker_ports"] = list(self.broker_ports)
        data["controller_ports"] = list(self.controller_ports)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterSpec:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("cluster state must be a JSON object")
        data["run_dir"] = Path(data["run_dir"])
        data["broker_ports"] = tuple(data["broker_ports"])
        data["controller_ports"] = tuple(data["controller_ports"])
        return cls(**data)


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka's ``Uuid.randomUuid()`` makes it: URL-safe base64, no padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka rejects ids that look like a command-line flag
            return text


# Broker settings the issue fixes, identical in both modes.
DURABILITY_SETTINGS: Final[dict[str, str]] = {
    "log.retention.hours": "24",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "unclean.leader.election.enable": "false",
    "auto.create.topics.enable": "false",
}

# Small-machine settings: several clusters share 2 cores, so fewer threads and partitions.
LOCAL_SETTINGS: Final[dict[str, str]] = {
    "num.partitions": "3",
    "offsets.topic.num.partitions": "6",
    "transaction.state.log.num.partitions": "6",
    "group.initial.rebalance.delay.ms": "0",
    "num.network.threads": "2",
    "num.io.threads": "4",
    "num.recovery.threads.per.data.dir": "1",
    "background.threads": "4",
    "log.cleaner.threads": "1",
    # The default 128 MiB dedupe buffer would take a third of a 384 MiB heap.
    "log.cleaner.dedupe.buffer.size": "8388608",
    "log.segment.bytes": "67108864",
    "delete.topic.enable": "true",
    "controlled.shutdown.enable": "true",
    # A whole-cluster `down` stops the controller too: retry the hand-over quickly, not every 5 s.
    "controlled.shutdown.retry.backoff.ms": "1000",
}


def security_properties(spec: ClusterSpec, admin_password: str) -> dict[str, str]:
    """Broker settings of ``sasl_ssl``: SCRAM over TLS on the one listener, brokers included
    (they log in as ``admin``), hostname-verified, and ACLs with no allow-by-default."""
    if '"' in admin_password or "\\" in admin_password or "\n" in admin_password:
        raise ValueError("the admin password must not contain quotes, backslashes or newlines")
    mech = SCRAM_MECHANISM.lower()
    return {
        "security.inter.broker.protocol": "SASL_SSL",
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"listener.name.sasl_ssl.{mech}.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN_USER}" password="{admin_password}";'
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(spec.broker_keystore_path()),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(spec.ca_path()),
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.client.auth": "none",  # clients authenticate with SCRAM; TLS only encrypts
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN_USER}",
    }


def broker_properties(
    spec: ClusterSpec, broker_id: int, admin_password: str | None = None
) -> dict[str, str]:
    """``server.properties`` of one broker (ZooKeeper mode) or combined KRaft node.

    ``sasl_ssl`` needs ``admin_password``: the file holding it is written private (0600).
    """
    if broker_id not in BROKER_IDS:
        raise ValueError(f"unknown broker id {broker_id}: expected one of {list(BROKER_IDS)}")
    port = spec.broker_port(broker_id)
    listener = "SASL_SSL" if spec.tls else "PLAINTEXT"
    props: dict[str, str] = {}
    if spec.mode == "zookeeper":
        props |= {
            "broker.id": str(broker_id),
            "listeners": f"{listener}://{spec.host}:{port}",
            "advertised.listeners": f"{listener}://{spec.host}:{port}",
            "zookeeper.connect": f"{spec.host}:{spec.zookeeper_port}",
            # A SIGKILLed broker is noticed when its session expires: keep that short.
            "zookeeper.session.timeout.ms": "6000",
            "zookeeper.connection.timeout.ms": "30000",
        }
    else:
        voters = ",".join(
            f"{b}@{spec.host}:{p}" for b, p in zip(BROKER_IDS, spec.controller_ports, strict=True)
        )
        cport = spec.controller_ports[BROKER_IDS.index(broker_id)]
        props |= {
            "process.roles": "broker,controller",
            "node.id": str(broker_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{spec.host}:{port},CONTROLLER://{spec.host}:{cport}",
            "advertised.listeners": f"PLAINTEXT://{spec.host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1000",
        }
    if spec.tls:
        if admin_password is None:
            raise ValueError("a sasl_ssl broker needs the admin password")
        props |= security_properties(spec, admin_password)
    props["log.dirs"] = str(spec.data_dir(broker_name(broker_id)))
    props |= DURABILITY_SETTINGS
    props |= LOCAL_SETTINGS
    return props


def zookeeper_config(spec: ClusterSpec) -> dict[str, str]:
    """``zoo.cfg`` of the single ZooKeeper node."""
    return {
        "dataDir": str(spec.data_dir(ZOOKEEPER)),
        "clientPort": str(spec.zookeeper_port),
        "clientPortAddress": spec.host,
        # Short ticks allow the brokers' 6 s session timeout (sessions are 2-20 ticks).
        "tickTime": "500",
        "maxClientCnxns": "0",
        # The admin server listens on 8080 by default: several clusters would collide.
        "admin.enableServer": "false",
        "4lw.commands.whitelist": "ruok,srvr",
        "autopurge.snapRetainCount": "3",
        "autopurge.purgeInterval": "1",
    }


def render_properties(props: dict[str, str]) -> str:
    """Java ``.properties`` text; values here never contain characters that need escaping."""
    for key, value in props.items():
        if "\n" in key or "\n" in value or "=" in key:
            raise ValueError(f"cannot write property {key!r}={value!r}")
    return "".join(f"{k}={v}\n" for k, v in props.items())


def log4j_properties() -> str:
    """Everything to stdout (redirected to the node's log file); request logs kept quiet."""
    return (
        "log4j.rootLogger=INFO, stdout\n"
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        "log4j.logger.kafka.request.logger=WARN\n"
        "log4j.logger.kafka.network.RequestChannel$=WARN\n"
        "log4j.logger.kafka.log.LogCleaner=WARN\n"
        "log4j.logger.state.change.logger=WARN\n"
        "log4j.logger.org.apache.zookeeper=WARN\n"
        "log4j.logger.org.apache.zookeeper.server.ZooKeeperServerMain=INFO\n"
        "log4j.logger.kafka.server.KafkaServer=INFO\n"
        "log4j.logger.org.apache.kafka.clients.NetworkClient=WARN\n"
    )


def java_command(
    java: str, jars_dir: Path, spec: ClusterSpec, main_class: str, *args: str
) -> list[str]:
    """The JVM command line of one node or tool. The run dir appears in it, which is how ``down``
    recognises its own processes."""
    return [
        java,
        f"-Xms{min(64, spec.heap_mb)}m",
        f"-Xmx{spec.heap_mb}m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",  # C1 only: faster start, enough speed for a local cluster
        "-Djava.awt.headless=true",
        "-Dzookeeper.admin.enableServer=false",
        f"-Dlog4j.configuration=file:{spec.log4j_path()}",
        f"-Dcoinfeed.run.dir={spec.run_dir}",
        "-cp",
        f"{jars_dir}/*",
        main_class,
        *args,
    ]


def node_command(java: str, jars_dir: Path, spec: ClusterSpec, node: str) -> list[str]:
    main_class = ZOOKEEPER_MAIN if node == ZOOKEEPER else KAFKA_MAIN
    return java_command(java, jars_dir, spec, main_class, str(spec.config_path(node)))


def admin_scram_properties(admin_password: str) -> str:
    """ConfigCommand's ``--add-config-file``: the admin's SCRAM credential, kept out of argv."""
    return f"{SCRAM_MECHANISM}=password={admin_password}\n"


def admin_scram_command(java: str, jars_dir: Path, spec: ClusterSpec) -> list[str]:
    """Store the admin's SCRAM credential in ZooKeeper before any broker starts: the brokers
    log in to each other with it, so it cannot be created through a broker."""
    return java_command(
        java,
        jars_dir,
        spec,
        CONFIG_COMMAND_MAIN,
        "--zookeeper",
        f"{spec.host}:{spec.zookeeper_port}",
        "--alter",
        "--entity-type",
        "users",
        "--entity-name",
        ADMIN_USER,
        "--add-config-file",
        str(spec.scram_config_path()),
    )


def format_command(java: str, jars_dir: Path, spec: ClusterSpec, broker_id: int) -> list[str]:
    """``StorageTool format`` for one KRaft node (a no-op on an already formatted dir)."""
    if spec.cluster_id is None:
        raise ValueError("a KRaft cluster needs a cluster id before its log dirs are formatted")
    config = str(spec.config_path(broker_name(broker_id)))
    return java_command(
        java,
        jars_dir,
        spec,
        STORAGE_TOOL_MAIN,
        "format",
        "--ignore-formatted",
        "-t",
        spec.cluster_id,
        "-c",
        config,
    )
