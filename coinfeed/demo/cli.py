"""``coinfeed demo run|down`` (``make demo`` / ``make demo-down``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from coinfeed.demo.monitoring import REPO_ROOT


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(
        prog="coinfeed demo",
        description="Run the whole pipeline locally on the shipped sample, or stop it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,down}")
    run = sub.add_parser(
        "run",
        help="Kafka + topics + replay producers + hourly job, then the table and the report",
        description="Starts a fresh local Kafka, creates the example CoinFeeds' topics, replays "
        "the sample through the producers, runs the hourly job over every complete hour and shows "
        "the result (terminal table, out/report.html + report.png). A second run stops the "
        "first one's leftovers itself.",
    )
    down = sub.add_parser("down", help="stop everything `demo run` started (safe to run twice)")
    for p in (run, down):
        p.add_argument("--run-dir", type=Path, default=Path("run"), help="state, logs, lake, pids")
    down.add_argument("--purge", action="store_true", help="also delete the Kafka data")
    run.add_argument("--out", type=Path, default=Path("out"), help="report folder (default out/)")
    run.add_argument(
        "--sample-dir", type=Path, default=REPO_ROOT / "samples", help="replay files folder"
    )
    run.add_argument(
        "--manifest",
        type=Path,
        action="append",
        help="CoinFeed manifest (repeatable; default manifests/coinfeed-btc.yaml and -eth.yaml)",
    )
    run.add_argument(
        "--hours", type=int, default=None, help="only the first N complete hours of the sample"
    )
    run.add_argument(
        "--speed",
        type=float,
        default=3600.0,
        help="replay speed factor: 3600 = one sample hour per second, 0 = as fast as possible",
    )
    run.add_argument(
        "--prometheus",
        action="store_true",
        help="also start Prometheus + Pushgateway (or set PROMETHEUS=1)",
    )
    run.add_argument("--prometheus-port", type=int, default=9090)
    run.add_argument("--pushgateway-port", type=int, default=9091)
    run.add_argument(
        "--free-ports",
        action="store_true",
        help="Kafka on free ports instead of 2181/9092-9094 (tests, busy machines)",
    )
    run.add_argument(
        "--platforms",
        default="x,bluesky",
        help="social posts to replay: x, bluesky or both (default x,bluesky); each platform's "
        "sample file gets its own replay producer, all onto the coin's tweets topic",
    )
    run.add_argument(
        "--kafka-security",
        choices=("plaintext", "sasl_ssl"),
        default=os.environ.get("KAFKA_SECURITY") or "plaintext",
        help="sasl_ssl: TLS + SCRAM users with per-client ACLs (default $KAFKA_SECURITY or "
        "plaintext)",
    )
    run.add_argument("--replay-timeout", type=float, default=600.0, help="seconds")
    run.add_argument("--job-timeout", type=float, default=900.0, help="seconds")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from coinfeed.demo import run as demo

    if args.command == "down":
        stopped = demo.down(args.run_dir, purge=args.purge)
        print("stopped: " + ", ".join(stopped) if stopped else "nothing to stop")
        return 0
    opts = demo.Options(
        run_dir=args.run_dir,
        out_dir=args.out,
        sample_dir=args.sample_dir,
        manifests=args.manifest or list(demo.DEFAULT_MANIFESTS),
        hours=args.hours,
        speed=args.speed,
        prometheus=args.prometheus or demo.env_flag("PROMETHEUS"),
        free_ports=args.free_ports,
        prometheus_port=args.prometheus_port,
        pushgateway_port=args.pushgateway_port,
        replay_timeout=args.replay_timeout,
        job_timeout=args.job_timeout,
        platforms=tuple(p.strip().lower() for p in args.platforms.split(",") if p.strip()),
        kafka_security="sasl_ssl" if args.kafka_security == "sasl_ssl" else "plaintext",
    )
    return demo.run(opts)
