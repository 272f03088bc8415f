"""``coinfeed operator``: run the CoinFeed operator (kopf) with its metrics and health endpoints."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import threading

from coinfeed.operator.settings import SettingsError, settings_from_env

log = logging.getLogger("coinfeed.operator")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coinfeed operator",
        description=(
            "Watch CoinFeed resources and make Kafka topics, producer Deployments, their metrics "
            "Service and the hourly CronJob match them. Image names, the Kafka bootstrap, the "
            "Pushgateway and the lake come from COINFEED_OPERATOR_* environment variables "
            "(see coinfeed.operator.settings); the flags below override the common ones."
        ),
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="namespace to watch (repeatable; default: $COINFEED_OPERATOR_NAMESPACES, comma-separated, "
        "else the pod's own namespace from $POD_NAMESPACE)",
    )
    scope.add_argument("--all-namespaces", action="store_true", help="watch CoinFeeds cluster-wide")
    p.add_argument("--kafka-bootstrap", help="Kafka bootstrap servers (host:port,...)")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("COINFEED_OPERATOR_METRICS_PORT", "8080")),
        help="port of /metrics, /healthz and /readyz (default 8080)",
    )
    p.add_argument(
        "--liveness-port",
        type=int,
        default=int(os.environ.get("COINFEED_OPERATOR_LIVENESS_PORT", "8081")),
        help="port of kopf's liveness endpoint /healthz (default 8081)",
    )
    p.add_argument(
        "--bind",
        default=os.environ.get("COINFEED_OPERATOR_BIND", "0.0.0.0"),
        help="address the endpoints listen on (default 0.0.0.0)",
    )
    p.add_argument(
        "--drift-interval",
        type=float,
        help="seconds between drift checks of each feed (default 30)",
    )
    p.add_argument(
        "--delete-timeout",
        type=float,
        default=120.0,
        help="seconds to keep retrying topic deletion before releasing the finalizer (default 120)",
    )
    p.add_argument(
        "--watch-timeout",
        type=float,
        default=300.0,
        help="server-side timeout of each watch request, seconds (default 300)",
    )
    p.add_argument(
        "--release-on-uninstall",
        metavar="DEPLOYMENT",
        help="instead of running: scale the operator's Deployment DEPLOYMENT (in $POD_NAMESPACE) "
        "to 0, then release every watched CoinFeed's finalizer, topics kept (the chart's "
        "pre-delete hook; always exits 0)",
    )
    p.add_argument("--log-level", default=os.environ.get("COINFEED_OPERATOR_LOG_LEVEL", "INFO"))
    p.add_argument("--plain-logs", action="store_true", help="human-readable logs instead of JSON")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    # `kill -USR1 <pid>` prints every thread's stack: the way to see what a stuck reconcile waits on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    env = dict(os.environ)
    if args.kafka_bootstrap:
        env["COINFEED_OPERATOR_KAFKA_BOOTSTRAP"] = args.kafka_bootstrap
    if args.drift_interval:
        env["COINFEED_OPERATOR_DRIFT_INTERVAL_SECONDS"] = str(args.drift_interval)
    namespaces = list(args.namespace)
    if not namespaces and not args.all_namespaces:
        raw = os.environ.get("COINFEED_OPERATOR_NAMESPACES") or os.environ.get("POD_NAMESPACE", "")
        namespaces = [n.strip() for n in raw.split(",") if n.strip()]
    if not namespaces and not args.all_namespaces:
        print("coinfeed operator: give --namespace (or --all-namespaces, or set POD_NAMESPACE)")
        return 2

    if args.release_on_uninstall:
        return _release_on_uninstall(args, namespaces or None)

    try:
        settings = settings_from_env(env)
    except SettingsError as exc:
        print(f"coinfeed operator: {exc}")
        return 2

    import kopf

    from coinfeed import logs
    from coinfeed.metrics import HealthServer, new_registry
    from coinfeed.operator.handlers import (
        FINALIZER,
        Context,
        DriftLoop,
        register,
        release_finalizers,
    )
    from coinfeed.operator.kafka_apply import KafkaTopics
    from coinfeed.operator.kube_apply import Kube
    from coinfeed.operator.opmetrics import OperatorMetrics

    logs.configure(args.log_level, json_logs=not args.plain_logs)
    # kopf logs every handler run at INFO with its whole settings object attached.
    logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, logging.getLogger().level))
    metrics_registry = new_registry()
    metrics = OperatorMetrics(metrics_registry)
    ready = threading.Event()
    health = HealthServer(metrics_registry, args.metrics_port, host=args.bind)
    health.add_check("watching", ready.is_set)
    health.start()

    _load_kube_config()
    kafka = KafkaTopics(settings.kafka_bootstrap, settings.kafka_timeout_seconds)
    ctx = Context(settings, kafka, Kube(), metrics, args.delete_timeout, namespaces or None)
    registry = kopf.OperatorRegistry()
    register(registry, ctx)

    def configure(settings: kopf.OperatorSettings, **_: object) -> None:
        settings.persistence.finalizer = FINALIZER
        # Progress in annotations only: status stays ours alone.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix="coinfeed.io"
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="coinfeed.io", key="last-handled-configuration"
        )
        # Kubernetes wants whole seconds here.
        settings.watching.server_timeout = int(args.watch_timeout)
        settings.watching.client_timeout = int(args.watch_timeout) + 30
        # A namespaced Role cannot list namespaces or CRDs: watch the named namespaces only.
        settings.scanning.disabled = not args.all_namespaces
        settings.watching.connect_timeout = 30
        settings.posting.level = logging.INFO
        settings.execution.max_workers = 8
        settings.peering.standalone = True

    kopf.on.startup(registry=registry)(configure)
    kopf.on.login(registry=registry)(kopf.login_via_client)

    log.info("operator starting", extra={"namespaces": namespaces or ["*"]})
    drift = DriftLoop(ctx, namespaces or None).start()
    try:
        kopf.run(
            registry=registry,
            standalone=True,
            clusterwide=args.all_namespaces,
            namespaces=namespaces,
            liveness_endpoint=f"http://{args.bind}:{args.liveness_port}/healthz",
            ready_flag=ready,  # kopf raises it once it is watching
        )
    finally:
        drift.stop()
        released = release_finalizers(
            ctx, namespaces or None, os.environ.get("POD_NAMESPACE") or None
        )
        if released:
            log.warning(
                "released CoinFeeds being deleted; their topics are kept", extra={"feeds": released}
            )
        kafka.close()
        health.stop()
    return 0


def _release_on_uninstall(args: argparse.Namespace, watched: list[str] | None) -> int:
    from coinfeed import logs
    from coinfeed.operator.kube_apply import Kube
    from coinfeed.operator.uninstall import release_on_uninstall

    logs.configure(args.log_level, json_logs=not args.plain_logs)
    own = os.environ.get("POD_NAMESPACE", "")
    if not own:
        log.warning("POD_NAMESPACE is not set: cannot find the operator's Deployment")
        return 0
    try:
        _load_kube_config()
        release_on_uninstall(Kube(), own, args.release_on_uninstall, watched)
    except Exception:
        log.warning("releasing CoinFeeds for uninstall failed", exc_info=True)
    return 0


def _load_kube_config() -> None:
    from kubernetes import config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
