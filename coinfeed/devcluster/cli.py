"""``coinfeed kafka up|down|status``: the local ZooKeeper (or KRaft) + 3-broker cluster."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from coinfeed.devcluster.config import (
    DEFAULT_BROKER_PORTS,
    DEFAULT_CONTROLLER_PORTS,
    DEFAULT_HEAP_MB,
    DEFAULT_HOST,
    DEFAULT_ZOOKEEPER_PORT,
    MODES,
    SECURITIES,
    ClusterSpec,
    Mode,
)
from coinfeed.devcluster.kafka import ClusterError, LocalKafkaCluster, format_status

MODE_ENV = "KAFKA_MODE"
SECURITY_ENV = "KAFKA_SECURITY"
DEFAULT_RUN_DIR = Path("run/kafka")


def parse_ports(text: str) -> tuple[int, ...]:
    """``9092,9093,9094`` -> (9092, 9093, 9094)."""
    try:
        ports = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected three comma-separated port numbers, got {text!r}"
        ) from None
    if len(ports) != 3:
        raise argparse.ArgumentTypeError(f"expected three ports, got {len(ports)} in {text!r}")
    return ports


def default_mode() -> str:
    return os.environ.get(MODE_ENV) or "zookeeper"


def default_security() -> str:
    return os.environ.get(SECURITY_ENV) or "plaintext"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coinfeed kafka",
        description="Local Apache Kafka cluster: ZooKeeper + brokers 1, 2, 3 (or three combined "
        "KRaft controller+broker nodes), each with its own config, data dir, log and pid file "
        "under the run directory.",
        epilog="examples:\n"
        "  coinfeed kafka up                       # ZooKeeper + brokers on :9092,9093,9094\n"
        "  KAFKA_MODE=kraft coinfeed kafka up      # three combined KRaft nodes\n"
        "  KAFKA_SECURITY=sasl_ssl coinfeed kafka up  # TLS + SCRAM users + ACLs (zookeeper mode)\n"
        "  coinfeed kafka status --run-dir run/kafka\n"
        "  coinfeed kafka down --purge             # stop, and delete topics and records\n"
        "  coinfeed kafka k8s-secrets -n coinfeed --coin btc -o secrets.json  # for the secured charts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="{up,down,status,k8s-secrets}")

    def add_run_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--run-dir",
            type=Path,
            default=DEFAULT_RUN_DIR,
            help=f"where configs, data, logs and pid files live (default: {DEFAULT_RUN_DIR})",
        )

    up = sub.add_parser(
        "up", help="start the cluster; returns when all three brokers are registered"
    )
    add_run_dir(up)
    up.add_argument(
        "--mode",
        choices=MODES,
        default=default_mode(),
        help=f"zookeeper or kraft (default: ${MODE_ENV} or zookeeper; now {default_mode()})",
    )
    up.add_argument(
        "--security",
        choices=SECURITIES,
        default=default_security(),
        help="plaintext, or sasl_ssl: one SASL_SSL listener (SCRAM-SHA-512 over TLS, brokers "
        "included), a generated CA under <run-dir>/tls, ACLs; the admin password in "
        f"<run-dir>/secrets (default: ${SECURITY_ENV} or plaintext; now {default_security()})",
    )
    up.add_argument(
        "--host", default=DEFAULT_HOST, help=f"loopback address (default: {DEFAULT_HOST})"
    )
    up.add_argument(
        "--broker-ports",
        type=parse_ports,
        default=DEFAULT_BROKER_PORTS,
        metavar="P1,P2,P3",
        help="client ports of brokers 1, 2, 3 (default: 9092,9093,9094)",
    )
    up.add_argument(
        "--zookeeper-port",
        type=int,
        default=DEFAULT_ZOOKEEPER_PORT,
        help=f"ZooKeeper client port, zookeeper mode (default: {DEFAULT_ZOOKEEPER_PORT})",
    )
    up.add_argument(
        "--controller-ports",
        type=parse_ports,
        default=DEFAULT_CONTROLLER_PORTS,
        metavar="P1,P2,P3",
        help="KRaft controller ports of nodes 1, 2, 3 (default: 9192,9193,9194)",
    )
    up.add_argument(
        "--heap-mb",
        type=int,
        default=DEFAULT_HEAP_MB,
        help=f"JVM heap per node in MiB (default: {DEFAULT_HEAP_MB})",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds to wait for the brokers (default: 180)",
    )

    down = sub.add_parser(
        "down", help="stop the nodes this run directory started (safe to run twice)"
    )
    add_run_dir(down)
    down.add_argument(
        "--purge",
        action="store_true",
        help="also delete the data dirs (topics and records); logs are kept",
    )
    down.add_argument(
        "--timeout",
        type=float,
        default=45.0,
        help="seconds to wait after SIGTERM before SIGKILL (default: 45)",
    )

    status = sub.add_parser(
        "status", help="show nodes, pids and the brokers a metadata request sees"
    )
    add_run_dir(status)

    k8s = sub.add_parser(
        "k8s-secrets",
        help="write the Kubernetes Secrets of a secured release (charts/coinfeed/ci/"
        "sasl-ssl-values.yaml) for trying it: a new throw-away CA (7 days), broker stores, "
        "random SCRAM passwords",
        description="Writes a v1 List of Secrets (0600 file) to `kubectl apply -f` before "
        "installing the chart with charts/coinfeed/ci/sasl-ssl-values.yaml; then create the "
        "users once: kubectl exec <release>-kafka-0 -- bash /etc/kafka/coinfeed/kafka-users.sh. "
        "Each CoinFeed names its producer's Secret, coinfeed-kafka-producer-<coin>, in "
        "spec.kafka.credentialsSecretRef. Running it again makes a new CA and new passwords.",
    )
    k8s.add_argument("-n", "--namespace", required=True, help="namespace of the release")
    k8s.add_argument(
        "--coin",
        action="append",
        required=True,
        help="a coin whose producers get a Kafka user (repeat, or btc,eth)",
    )
    k8s.add_argument(
        "--fullname",
        default="coinfeed-kafka",
        help="the Kafka chart's full name (default: coinfeed-kafka, the umbrella chart's)",
    )
    k8s.add_argument("--cluster-domain", default="cluster.local", help="default: cluster.local")
    k8s.add_argument(
        "-o", "--output", type=Path, required=True, help="file to write (created 0600)"
    )
    return parser


def write_k8s_secrets(args: argparse.Namespace) -> str:
    """The k8s-secrets verb: returns what to tell the user (no secret in it)."""
    import json

    from coinfeed.devcluster.k8s_secrets import secured_release
    from coinfeed.devcluster.kafka import write_private

    coins = sorted({c.strip() for a in args.coin for c in a.split(",") if c.strip()})
    _, manifest = secured_release(args.namespace, coins, args.fullname, args.cluster_domain)
    write_private(args.output, json.dumps(manifest, indent=1).encode())
    names = ", ".join(i["metadata"]["name"] for i in manifest["items"])
    return f"wrote {len(manifest['items'])} Secrets ({names}) to {args.output}"


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    # kafka-python logs every refused connection while brokers start; our progress lines suffice.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    if args.verb == "k8s-secrets":
        try:
            print(write_k8s_secrets(args))
        except ModuleNotFoundError as exc:  # cryptography: a dev dependency
            print(
                f"coinfeed kafka k8s-secrets: needs {exc.name} (pip install 'coinfeed[dev]')",
                file=sys.stderr,
            )
            return 1
        except (OSError, ValueError) as exc:
            print(f"coinfeed kafka k8s-secrets: {exc}", file=sys.stderr)
            return 1
        return 0
    run_dir: Path = args.run_dir.resolve()
    try:
        if args.verb == "up":
            mode: Mode = "kraft" if args.mode == "kraft" else "zookeeper"
            spec = ClusterSpec(
                run_dir=run_dir,
                mode=mode,
                host=args.host,
                broker_ports=args.broker_ports,
                zookeeper_port=args.zookeeper_port,
                controller_ports=args.controller_ports,
                heap_mb=args.heap_mb,
                security="sasl_ssl" if args.security == "sasl_ssl" else "plaintext",
            )
            cluster = LocalKafkaCluster(spec, progress=_progress)
            cluster.up(timeout=args.timeout)
            print(format_status(cluster.status()))
            return 0
        existing = LocalKafkaCluster.load(run_dir, progress=_progress)
        if existing is None:
            print(f"no Kafka cluster in {run_dir} (nothing started there by `coinfeed kafka up`)")
            return 0 if args.verb == "down" else 3
        if args.verb == "down":
            stopped = existing.down(timeout=args.timeout, purge=args.purge)
            print(f"stopped {', '.join(stopped)}" if stopped else f"nothing running in {run_dir}")
            return 0
        status = existing.status()
        print(format_status(status))
        return 0 if status.healthy else 1
    except (ClusterError, ValueError) as exc:
        print(f"coinfeed kafka {args.verb}: {exc}", file=sys.stderr)
        return 1
