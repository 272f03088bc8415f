"""Decide: a CoinFeed (+ operator settings) -> the topics and Kubernetes objects that should exist.

Every function here is pure. ``desired_topics`` is also used by the local demo (no Kubernetes) to
create the same topics the operator would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from coinfeed import job_env as jenv
from coinfeed import kafka_security as ksec
from coinfeed import producer_env as penv
from coinfeed.operator.groups import (
    GROUP_LABEL,
    HOURLY_JOB_LABEL,
    HourlyGroup,
    Member,
    group_key,
)
from coinfeed.operator.settings import OperatorSettings, memory_mib
from coinfeed.operator.spec import FeedSpec, parse_spec
from coinfeed.topics import TOPIC_KINDS, topic_name

API_VERSION: Final = "coinfeed.io/v1alpha1"
KIND: Final = "CoinFeed"
MANAGED_BY: Final = "coinfeed-operator"
FEED_LABEL: Final = "coinfeed.io/feed"
COIN_LABEL: Final = "coinfeed.io/coin"
TOKEN_DIR: Final = "/var/run/secrets/coinfeed/x"
KAFKA_CREDENTIALS_DIR: Final = "/var/run/secrets/coinfeed/kafka"
KAFKA_CA_DIR: Final = "/var/run/secrets/coinfeed/kafka-ca"
RUN_AS: Final = 10001
TERMINATION_LOG: Final = "/dev/termination-log"
# k8s:// master: the executor pod template, a ConfigMap mounted into the driver.
EXECUTOR_CONFIGMAP_SUFFIX: Final = "hourly-executor"
EXECUTOR_TEMPLATE_DIR: Final = "/etc/coinfeed/spark"
EXECUTOR_TEMPLATE_KEY: Final = "executor-pod.yaml"
EXECUTOR_COMPONENT: Final = "hourly-executor"
EXECUTOR_LOCAL_DIR_VOLUME: Final = "spark-local-dir-1"
HOURLY_CONTAINER: Final = "hourly"
SPARK_RPC_VOLUME: Final = "spark-rpc"
HOUR_MS: Final = 3_600_000

Obj = dict[str, Any]


@dataclass(frozen=True)
class DesiredTopic:
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)


def desired_topics(manifest_or_spec: Mapping[str, Any] | FeedSpec) -> list[DesiredTopic]:
    """Both topics of the feed (prices and tweets) with partitions, RF and topic config.

    Accepts a parsed CoinFeed manifest, its ``spec`` alone, or a :class:`FeedSpec`.
    """
    spec = (
        manifest_or_spec if isinstance(manifest_or_spec, FeedSpec) else parse_spec(manifest_or_spec)
    )
    config = {
        "retention.ms": str(spec.topics.retention_hours * HOUR_MS),
        "min.insync.replicas": str(spec.topics.min_insync_replicas),
        "cleanup.policy": "delete",
    }
    return [
        DesiredTopic(
            name=topic_name(spec.coin, kind),
            partitions=spec.topics.partitions,
            replication_factor=spec.topics.replication_factor,
            config=dict(config),
        )
        for kind in TOPIC_KINDS
    ]


# --- Kubernetes children --------------------------------------------------------------------


def child_name(feed_name: str, suffix: str) -> str:
    return f"{feed_name}-{suffix}"


def labels(feed_name: str, coin: str, component: str, app: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": feed_name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "coinfeed",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        FEED_LABEL: feed_name,
        COIN_LABEL: coin,
    }


def owner_reference(name: str, uid: str) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(name: str, namespace: str, lbls: Mapping[str, str], owner: Obj) -> Obj:
    return {
        "name": name,
        "namespace": namespace,
        "labels": dict(lbls),
        "ownerReferences": [owner],
    }


def pod_security_context(uid: int = RUN_AS, gid: int = RUN_AS) -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "fsGroup": gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def spark_pod_security_context(settings: OperatorSettings) -> Obj:
    """The hourly job's pods run as the Spark image's user (185 by default), not the producers'."""
    return pod_security_context(settings.spark_run_as_user, settings.spark_run_as_group)


def container_security_context() -> Obj:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _env(pairs: Mapping[str, str]) -> list[Obj]:
    # The API server stores an empty value as no value; leaving it out keeps drift checks exact.
    return [{"name": k, "value": v} for k, v in pairs.items() if v]


def _replay_env(path: str, speed: float) -> dict[str, str]:
    # Whole-hour rebase + event timestamps: the file's hours become the newest closed hours, which
    # the hourly job (reading hours by Kafka timestamp) aggregates exactly like the file's own.
    return {
        penv.REPLAY_FILE: path,
        penv.REPLAY_SPEED: f"{speed:g}",
        penv.REPLAY_REBASE: "hour",
        penv.KAFKA_TIMESTAMP: "event",
    }


def producer_env(spec: FeedSpec, kind: str, settings: OperatorSettings) -> list[Obj]:
    """The producer's environment (names from ``coinfeed.producer_env``); never a secret value."""
    common = {
        penv.COIN: spec.coin,
        penv.KAFKA_BOOTSTRAP: settings.kafka_bootstrap,
        penv.METRICS_PORT: str(settings.producer_metrics_port),
    }
    if kind == "prices":
        own = {
            penv.PRICE_SOURCE: spec.prices.source,
            penv.PRICE_PAIR: spec.prices.pair,
            penv.PRICE_MODE: spec.prices.mode,
            penv.POLL_INTERVAL_SECONDS: str(spec.prices.poll_interval_seconds),
        }
        if spec.prices.source == "replay":
            own |= _replay_env(spec.prices.replay_file, spec.prices.replay_speed)
    else:
        t = spec.tweets
        own = {
            penv.TWEET_SOURCE: t.source,
            penv.TWEET_KEYWORDS: ",".join(t.keywords),
            penv.TWEET_LANGUAGES: ",".join(t.languages),
            penv.POLL_INTERVAL_SECONDS: str(t.poll_interval_seconds),
        }
        if t.source == "replay":
            own |= _replay_env(t.replay_file, t.replay_speed)
        if t.lookback_minutes is not None:
            own[penv.SOCIAL_LOOKBACK_MINUTES] = str(t.lookback_minutes)
        if t.source == "bluesky":
            # No Secret: Jetstream is public. Endpoints only when the feed names its own.
            own[penv.JETSTREAM_URLS] = ",".join(t.jetstream_endpoints)
        else:
            if t.bearer_token is not None:
                own[penv.X_BEARER_TOKEN_FILE] = f"{TOKEN_DIR}/token"
            if settings.x_api_base_url:
                own[penv.X_API_BASE_URL] = settings.x_api_base_url
    return _env({**common, **own})


@dataclass(frozen=True)
class KafkaClientPlumbing:
    """What a child pod needs to reach a secured Kafka: env and Secret volumes, by reference."""

    env: list[Obj]
    volumes: list[Obj]
    mounts: list[Obj]


def kafka_client_plumbing(
    settings: OperatorSettings, credentials: str | None
) -> KafkaClientPlumbing:
    """``COINFEED_KAFKA_*`` for a child (read by ``coinfeed.kafka_security``): the user name by
    secretKeyRef, the password and CA as mounted files; never a secret value in the spec."""
    env: list[Obj] = []
    volumes: list[Obj] = []
    mounts: list[Obj] = []
    protocol = settings.kafka_security_protocol
    if protocol != "PLAINTEXT":
        env.append({"name": ksec.PROTOCOL_ENV, "value": protocol})
    if credentials and "SASL" in protocol:
        env.append(
            {
                "name": ksec.USERNAME_ENV,
                "valueFrom": {"secretKeyRef": {"name": credentials, "key": "username"}},
            }
        )
        env.append({"name": ksec.PASSWORD_FILE_ENV, "value": f"{KAFKA_CREDENTIALS_DIR}/password"})
        volumes.append(
            {
                "name": "kafka-credentials",
                "secret": {
                    "secretName": credentials,
                    "items": [{"key": "password", "path": "password"}],
                    "defaultMode": 0o440,
                },
            }
        )
        mounts.append(
            {"name": "kafka-credentials", "mountPath": KAFKA_CREDENTIALS_DIR, "readOnly": True}
        )
    if settings.kafka_ca_secret and protocol in ("SSL", "SASL_SSL"):
        env.append({"name": ksec.CAFILE_ENV, "value": f"{KAFKA_CA_DIR}/ca.crt"})
        volumes.append(
            {
                "name": "kafka-ca",
                "secret": {
                    "secretName": settings.kafka_ca_secret,
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    "defaultMode": 0o444,
                },
            }
        )
        mounts.append({"name": "kafka-ca", "mountPath": KAFKA_CA_DIR, "readOnly": True})
    return KafkaClientPlumbing(env, volumes, mounts)


def producer_deployment(
    name: str, namespace: str, uid: str, spec: FeedSpec, kind: str, settings: OperatorSettings
) -> Obj:
    """One producer Deployment (``kind`` is prices or tweets)."""
    lbls = labels(name, spec.coin, kind, "coinfeed-producer")
    selector = {FEED_LABEL: name, "app.kubernetes.io/component": kind}
    volumes: list[Obj] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    mounts: list[Obj] = [{"name": "tmp", "mountPath": "/tmp"}]
    if kind == "tweets" and spec.tweets.source == "x-api" and spec.tweets.bearer_token is not None:
        ref = spec.tweets.bearer_token
        volumes.append(
            {
                "name": "x-bearer-token",
                "secret": {
                    "secretName": ref.name,
                    "items": [{"key": ref.key, "path": "token"}],
                    "defaultMode": 0o440,
                },
            }
        )
        mounts.append({"name": "x-bearer-token", "mountPath": TOKEN_DIR, "readOnly": True})
    kafka = kafka_client_plumbing(settings, spec.kafka_credentials)
    volumes += kafka.volumes
    mounts += kafka.mounts
    port = settings.producer_metrics_port
    probe_common = {"port": "metrics"}
    pod_spec: Obj = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": 30,
        "containers": [
            {
                "name": "producer",
                "image": settings.producer_image,
                "imagePullPolicy": settings.image_pull_policy,
                "command": ["coinfeed", "producer", kind],
                "env": producer_env(spec, kind, settings) + kafka.env,
                "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}],
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", **probe_common},
                    "periodSeconds": 20,
                    "failureThreshold": 3,
                },
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", **probe_common},
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                },
                "resources": settings.producer_resources.as_k8s(),
                "securityContext": container_security_context(),
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    if settings.service_account:
        pod_spec["serviceAccountName"] = settings.service_account
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(child_name(name, kind), namespace, lbls, owner_reference(name, uid)),
        "spec": {
            "replicas": 0 if spec.suspend else 1,
            # One producer per source: two would publish every record twice.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": lbls}, "spec": pod_spec},
        },
    }


def metrics_service(
    name: str, namespace: str, uid: str, spec: FeedSpec, settings: OperatorSettings
) -> Obj:
    """One Service in front of the feed's producers, for Prometheus to scrape."""
    lbls = labels(name, spec.coin, "metrics", "coinfeed-producer")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(
            child_name(name, "metrics"), namespace, lbls, owner_reference(name, uid)
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": {FEED_LABEL: name, "app.kubernetes.io/name": "coinfeed-producer"},
            "ports": [
                {
                    "name": "metrics",
                    "port": settings.producer_metrics_port,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                }
            ],
        },
    }


def hourly_command(group: HourlyGroup, settings: OperatorSettings) -> list[str]:
    key = group.key
    cmd = [
        *settings.hourly_command,
        # One Spark application for every coin of the group (the job takes a comma list).
        "--coin",
        ",".join(group.coins),
        "--lookback-hours",
        str(key.lookback_hours),
        "--lake",
        settings.lake,
        "--bootstrap",
        settings.kafka_bootstrap,
        # Kafka keeps this many hours: the job looks for missed hours only that far back.
        "--retention-hours",
        str(key.retention_hours),
    ]
    if settings.pushgateway:
        cmd += ["--pushgateway", settings.pushgateway]
    if settings.spark_master:
        cmd += ["--master", settings.spark_master]
    return cmd


def spark_on_kubernetes(settings: OperatorSettings) -> bool:
    """The job pod is a Spark driver starting executor pods (it needs its ServiceAccount token)."""
    return settings.spark_master.startswith("k8s://")


def _field_env(name: str, field_path: str) -> Obj:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}}


def hourly_env(settings: OperatorSettings) -> list[Obj]:
    """The job's environment (names from ``coinfeed.job_env``); S3 keys only by secretKeyRef."""
    # Spark writes scratch files and its Ivy cache under HOME and /tmp.
    plain = {
        "HOME": "/tmp",
        "SPARK_LOCAL_DIRS": "/tmp",
        jenv.S3_ENDPOINT: settings.s3_endpoint,
        # The run's JSON summary becomes the container's termination message (status.lastRun).
        jenv.TERMINATION_LOG: TERMINATION_LOG,
    }
    k8s = spark_on_kubernetes(settings)
    if k8s:
        plain[jenv.K8S_IMAGE] = settings.spark_image
        plain[jenv.K8S_IMAGE_PULL_POLICY] = settings.image_pull_policy
        plain[jenv.S3_SECRET] = settings.s3_secret  # a name, so executors can reference it
        if settings.lake_pvc:
            plain[jenv.LAKE_PVC] = settings.lake_pvc
            plain[jenv.LAKE_PATH] = settings.lake
        plain.update(executor_env(settings))
        if settings.spark_rpc_secret:
            # Names and paths only: the key stays in the Secret (see spark_rpc_volume).
            plain[jenv.RPC_SECRET_NAME] = settings.spark_rpc_secret
            plain[jenv.RPC_SECRET] = f"{jenv.RPC_SECRET_DIR}/{jenv.RPC_SECRET_KEY}"
    env = _env(plain)
    if settings.s3_secret:
        env += [
            {
                "name": var,
                "valueFrom": {"secretKeyRef": {"name": settings.s3_secret, "key": var}},
            }
            for var in (jenv.AWS_ACCESS_KEY_ID, jenv.AWS_SECRET_ACCESS_KEY)
        ]
    if k8s:
        env += [
            _field_env(jenv.POD_NAME, "metadata.name"),
            _field_env(jenv.POD_NAMESPACE, "metadata.namespace"),
            _field_env(jenv.POD_IP, "status.podIP"),
            _field_env(jenv.SERVICE_ACCOUNT, "spec.serviceAccountName"),
        ]
    return env


def executor_env(settings: OperatorSettings) -> dict[str, str]:
    """How many executors and how big (k8s:// master): Spark sets each executor pod's memory to
    heap + overhead, so the heap is the configured limit minus an overhead of a quarter of it
    (at least 384 MiB: Python workers and off-heap buffers live there)."""
    res = settings.spark_executor_resources
    total = memory_mib(res.memory_limit)
    overhead = max(384, total // 4)
    return {
        jenv.EXECUTOR_TEMPLATE: f"{EXECUTOR_TEMPLATE_DIR}/{EXECUTOR_TEMPLATE_KEY}",
        jenv.EXECUTOR_INSTANCES: str(settings.spark_executor_instances),
        jenv.EXECUTOR_CPU_REQUEST: res.cpu_request,
        jenv.EXECUTOR_CPU_LIMIT: res.cpu_limit,
        jenv.EXECUTOR_MEMORY: f"{total - overhead}m",
        jenv.EXECUTOR_MEMORY_OVERHEAD: f"{overhead}m",
    }


def spark_rpc_volume(settings: OperatorSettings) -> tuple[list[Obj], list[Obj]]:
    """The driver's volume and mount of the Spark RPC key (k8s:// master with the setting on).

    Local mode has no RPC between pods, so its pod gets no key at all. ``optional``: a missing
    Secret (e.g. a feed namespace other than the chart's) must not leave the pod stuck in
    ContainerCreating; the job then stops at start naming the file (``hourly.job_conf``).
    Executors get the same Secret from Spark (``spark.kubernetes.executor.secrets.*``)."""
    if not (settings.spark_rpc_secret and spark_on_kubernetes(settings)):
        return [], []
    volume = {
        "name": SPARK_RPC_VOLUME,
        "secret": {
            "secretName": settings.spark_rpc_secret,
            "items": [{"key": jenv.RPC_SECRET_KEY, "path": jenv.RPC_SECRET_KEY}],
            "defaultMode": 0o440,
            "optional": True,
        },
    }
    mount = {"name": SPARK_RPC_VOLUME, "mountPath": jenv.RPC_SECRET_DIR, "readOnly": True}
    return [volume], [mount]


def hourly_labels(group: HourlyGroup, component: str = "hourly") -> dict[str, str]:
    """Labels of a shared CronJob, its Jobs and pods (no feed or coin label: they serve many)."""
    return {
        "app.kubernetes.io/name": "coinfeed-hourly",
        "app.kubernetes.io/instance": group.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "coinfeed",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        GROUP_LABEL: group.key.id(),
        HOURLY_JOB_LABEL: group.name,
    }


def group_owner_references(group: HourlyGroup) -> list[Obj]:
    """Every member feed owns the shared objects: Kubernetes' garbage collector deletes them only
    when the last member is gone (even with no operator running). None is the controller (only
    one owner may be) and none blocks its owner's deletion (a feed must not wait for a job it
    shares)."""
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": m.name,
            "uid": m.uid,
            "controller": False,
            "blockOwnerDeletion": False,
        }
        for m in sorted(group.members, key=lambda m: m.name)
    ]


def _group_metadata(name: str, group: HourlyGroup) -> Obj:
    return {
        "name": name,
        "namespace": group.namespace,
        "labels": hourly_labels(group),
        "ownerReferences": group_owner_references(group),
    }


def executor_configmap_name(group_name: str) -> str:
    return f"{group_name}-{EXECUTOR_CONFIGMAP_SUFFIX}"


def executor_pod_template(group: HourlyGroup, settings: OperatorSettings) -> Obj:
    """The pod template Spark starts executors from (k8s:// master): the restricted security
    context, the shared job's labels with component hourly-executor (the chart's NetworkPolicies
    select them), a writable /tmp, no ServiceAccount token. No command: Spark passes
    ``executor`` as the arguments of the image's entrypoint, and sets image, env, ports and the
    memory/cpu it computed itself."""
    lbls = hourly_labels(group, EXECUTOR_COMPONENT)
    pod_spec: Obj = {
        "automountServiceAccountToken": False,
        "securityContext": spark_pod_security_context(settings),
        "containers": [
            {
                "name": jenv.EXECUTOR_CONTAINER,
                "env": [{"name": "HOME", "value": "/tmp"}],
                "resources": settings.spark_executor_resources.as_k8s(),
                "securityContext": container_security_context(),
                # Named spark-local-dir-*: Spark then takes this volume as the executor's local
                # dir instead of adding its own emptyDir at SPARK_LOCAL_DIRS (/tmp), which the
                # API server refuses as a second mount at the same path.
                "volumeMounts": [{"name": EXECUTOR_LOCAL_DIR_VOLUME, "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": EXECUTOR_LOCAL_DIR_VOLUME, "emptyDir": {"sizeLimit": "2Gi"}}],
    }
    # Executors run the Kafka consumers: the truststore path of the reader options must exist
    # there too (the credentials travel inside the options, not in the pod).
    ca = [v for v in kafka_client_plumbing(settings, None).volumes if v["name"] == "kafka-ca"]
    if ca:
        pod_spec["volumes"] += ca
        pod_spec["containers"][0]["volumeMounts"].append(
            {"name": "kafka-ca", "mountPath": KAFKA_CA_DIR, "readOnly": True}
        )
    if settings.spark_service_account:
        pod_spec["serviceAccountName"] = settings.spark_service_account
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": lbls}, "spec": pod_spec}


def executor_template_configmap(group: HourlyGroup, settings: OperatorSettings) -> Obj:
    """The executor pod template of one shared job, mounted into its driver (``spark.kubernetes.
    executor.podTemplateFile`` is read by the driver in client mode)."""
    template = executor_pod_template(group, settings)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _group_metadata(executor_configmap_name(group.name), group),
        "data": {EXECUTOR_TEMPLATE_KEY: yaml.safe_dump(template, sort_keys=True)},
    }


def group_cronjob(group: HourlyGroup, settings: OperatorSettings) -> Obj:
    """The hourly Spark aggregation of every coin of ``group``, one application per run."""
    lbls = hourly_labels(group)
    volumes: list[Obj] = [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}]
    mounts: list[Obj] = [{"name": "tmp", "mountPath": "/tmp"}]
    if settings.lake_pvc:
        volumes.append({"name": "lake", "persistentVolumeClaim": {"claimName": settings.lake_pvc}})
        mounts.append({"name": "lake", "mountPath": settings.lake})
    if spark_on_kubernetes(settings):
        volumes.append(
            {
                "name": "executor-template",
                "configMap": {"name": executor_configmap_name(group.name)},
            }
        )
        mounts.append(
            {"name": "executor-template", "mountPath": EXECUTOR_TEMPLATE_DIR, "readOnly": True}
        )
    rpc_volumes, rpc_mounts = spark_rpc_volume(settings)
    volumes += rpc_volumes
    mounts += rpc_mounts
    kafka = kafka_client_plumbing(settings, settings.hourly_kafka_secret)
    volumes += kafka.volumes
    mounts += kafka.mounts
    pod_spec: Obj = {
        "restartPolicy": "Never",
        # Only a driver on Kubernetes talks to the API server (to start its executors).
        "automountServiceAccountToken": spark_on_kubernetes(settings),
        "securityContext": spark_pod_security_context(settings),
        "containers": [
            {
                "name": HOURLY_CONTAINER,
                "image": settings.spark_image,
                "imagePullPolicy": settings.image_pull_policy,
                "command": hourly_command(group, settings),
                "env": hourly_env(settings) + kafka.env,
                "resources": settings.spark_resources.as_k8s(),
                "securityContext": container_security_context(),
                "volumeMounts": mounts,
                # The job writes its summary here; if it dies first, the log's tail stands in.
                "terminationMessagePath": TERMINATION_LOG,
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "volumes": volumes,
    }
    if settings.spark_service_account:
        pod_spec["serviceAccountName"] = settings.spark_service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _group_metadata(group.name, group),
        "spec": {
            "schedule": group.key.schedule,
            "timeZone": "Etc/UTC",
            # A rerun recomputes the same hours; two at once would race on the same partitions.
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            # Suspended feeds leave the group instead; an empty group has no CronJob.
            "suspend": False,
            "jobTemplate": {
                "metadata": {"labels": lbls},
                "spec": {
                    "backoffLimit": 2,
                    # Exit 1: some coin failed (its error is in the summary) or the run raised;
                    # retrying would rerun every other coin of the group for nothing (the next
                    # run's lookback and gap search redo those hours). Exit 2: a usage error.
                    # Kills (OOM, signals) are still retried; evictions do not count.
                    "podFailurePolicy": {
                        "rules": [
                            {
                                "action": "FailJob",
                                "onExitCodes": {
                                    "containerName": HOURLY_CONTAINER,
                                    "operator": "In",
                                    "values": [1, 2],
                                },
                            },
                            {
                                "action": "Ignore",
                                "onPodConditions": [{"type": "DisruptionTarget"}],
                            },
                        ]
                    },
                    "activeDeadlineSeconds": 3000,
                    "template": {"metadata": {"labels": lbls}, "spec": pod_spec},
                },
            },
        },
    }


def group_children(group: HourlyGroup, settings: OperatorSettings) -> list[Obj]:
    """The shared CronJob, preceded (k8s:// master) by the executor pod template it mounts."""
    template = (
        [executor_template_configmap(group, settings)] if spark_on_kubernetes(settings) else []
    )
    return [*template, group_cronjob(group, settings)]


def single_feed_group(name: str, namespace: str, uid: str, spec: FeedSpec) -> HourlyGroup:
    """The group of one feed alone (what a feed's hourly objects look like by themselves)."""
    return HourlyGroup(group_key(namespace, spec), 0, (Member(name, uid, spec.coin, ""),))


def hourly_cronjob(
    name: str, namespace: str, uid: str, spec: FeedSpec, settings: OperatorSettings
) -> Obj:
    """The shared CronJob of a group holding only this feed."""
    return group_cronjob(single_feed_group(name, namespace, uid, spec), settings)


def hourly_children(
    name: str, namespace: str, uid: str, spec: FeedSpec, settings: OperatorSettings
) -> list[Obj]:
    """:func:`group_children` of a group holding only this feed."""
    return group_children(single_feed_group(name, namespace, uid, spec), settings)


def desired_children(
    name: str, namespace: str, uid: str, spec: FeedSpec, settings: OperatorSettings
) -> list[Obj]:
    """Every Kubernetes object the feed owns alone, in apply order (the hourly CronJob it shares
    with other feeds is planned per group: ``groups.plan_groups``, :func:`group_children`)."""
    kinds = ["prices", *(["tweets"] if spec.tweets.enabled else [])]
    out = [producer_deployment(name, namespace, uid, spec, k, settings) for k in kinds]
    out.append(metrics_service(name, namespace, uid, spec, settings))
    return out


def legacy_hourly_children(name: str) -> list[tuple[str, str]]:
    """(kind, name) of the per-feed hourly objects of operator versions before shared jobs."""
    return [
        ("CronJob", child_name(name, "hourly")),
        ("ConfigMap", child_name(name, EXECUTOR_CONFIGMAP_SUFFIX)),
    ]


def all_children(name: str) -> list[tuple[str, str]]:
    """(kind, name) of every object a feed can own alone, whatever its spec (e.g. to remove them
    all), including the per-feed hourly objects of earlier versions."""
    return [
        ("Deployment", child_name(name, "prices")),
        ("Deployment", child_name(name, "tweets")),
        ("Service", child_name(name, "metrics")),
        *legacy_hourly_children(name),
    ]


def unwanted_children(name: str, spec: FeedSpec) -> list[tuple[str, str]]:
    """(kind, name) of children that must not exist, e.g. the tweets producer once disabled."""
    return [] if spec.tweets.enabled else [("Deployment", child_name(name, "tweets"))]
