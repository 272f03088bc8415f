"""The hourly CronJob's ServiceAccount, Spark master and S3 lake settings (pure builder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from coinfeed import job_env as jenv
from coinfeed.operator.desired import hourly_cronjob
from coinfeed.operator.settings import OperatorSettings, SettingsError, settings_from_env
from coinfeed.operator.spec import parse_spec
from coinfeed.spark.session import env_conf

ROOT = Path(__file__).resolve().parents[3]
BTC = parse_spec(yaml.safe_load((ROOT / "manifests" / "coinfeed-btc.yaml").read_text()))
K8S = "k8s://https://kubernetes.default.svc"
BASE: dict[str, Any] = {
    "kafka_bootstrap": "kafka:9092",
    "producer_image": "p:1",
    "spark_image": "s:1",
    "service_account": "producers",
    "spark_service_account": "coinfeed-spark",
}


def _job(**overrides: Any) -> dict[str, Any]:
    cron = hourly_cronjob("btc", "feeds", "uid-1", BTC, OperatorSettings(**{**BASE, **overrides}))
    pod: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in pod["containers"][0]["env"]}


def test_cronjob_runs_as_the_spark_account_not_the_producers() -> None:
    pod = _job()
    assert pod["serviceAccountName"] == "coinfeed-spark"
    assert "serviceAccountName" not in _job(spark_service_account="")


def test_local_master_keeps_the_token_unmounted_and_passes_no_master() -> None:
    pod = _job()
    assert pod["automountServiceAccountToken"] is False
    assert "--master" not in pod["containers"][0]["command"]
    assert not {jenv.K8S_IMAGE, jenv.POD_IP, jenv.POD_NAMESPACE} & set(_env(pod))


def test_k8s_master_mounts_the_token_and_tells_spark_where_it_runs() -> None:
    pod = _job(spark_master=K8S, lake_pvc="coinfeed-lake")
    assert pod["automountServiceAccountToken"] is True
    cmd = pod["containers"][0]["command"]
    assert cmd[cmd.index("--master") + 1] == K8S
    env = _env(pod)
    assert env[jenv.K8S_IMAGE]["value"] == "s:1"
    assert env[jenv.POD_IP]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env[jenv.POD_NAMESPACE]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env[jenv.POD_NAME]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert (env[jenv.LAKE_PVC]["value"], env[jenv.LAKE_PATH]["value"]) == ("coinfeed-lake", "/lake")


def test_s3_keys_come_from_the_secret_by_reference_only() -> None:
    pod = _job(lake="s3a://b/lake", s3_endpoint="http://minio:9000", s3_secret="lake-keys")
    env = _env(pod)
    assert env[jenv.S3_ENDPOINT]["value"] == "http://minio:9000"
    for var in (jenv.AWS_ACCESS_KEY_ID, jenv.AWS_SECRET_ACCESS_KEY):
        assert env[var] == {
            "name": var,
            "valueFrom": {"secretKeyRef": {"name": "lake-keys", "key": var}},
        }
        assert "value" not in env[var]
    assert not pod["volumes"][1:]  # no lake PVC in S3 mode


def test_no_s3_env_without_s3_settings() -> None:
    env = _env(_job())
    assert not {jenv.S3_ENDPOINT, jenv.AWS_ACCESS_KEY_ID, jenv.AWS_SECRET_ACCESS_KEY} & set(env)


def _strings(obj: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _strings(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [x for i, v in enumerate(obj) for x in _strings(v, f"{path}[{i}]")]
    return [(path, obj)] if isinstance(obj, str) else []


def test_no_secret_value_anywhere_in_the_object() -> None:
    """The Secret appears only by name (secretKeyRef, and the name for executors); no AWS
    variable has a literal value."""
    cron = hourly_cronjob(
        "btc",
        "feeds",
        "uid-1",
        BTC,
        OperatorSettings(**{**BASE, "spark_master": K8S, "s3_secret": "lake-keys"}),
    )
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = pod["containers"][0]["env"]
    literal = {e["name"] for e in env if "value" in e}
    assert not literal & {jenv.AWS_ACCESS_KEY_ID, jenv.AWS_SECRET_ACCESS_KEY}
    mentions = sorted(p for p, v in _strings(cron) if "lake-keys" in v)
    names = {e["name"]: i for i, e in enumerate(env)}
    prefix = ".spec.jobTemplate.spec.template.spec.containers[0].env"
    assert mentions == sorted(
        [
            f"{prefix}[{names[jenv.S3_SECRET]}].value",
            f"{prefix}[{names[jenv.AWS_ACCESS_KEY_ID]}].valueFrom.secretKeyRef.name",
            f"{prefix}[{names[jenv.AWS_SECRET_ACCESS_KEY]}].valueFrom.secretKeyRef.name",
        ]
    )


def test_settings_from_env_reads_the_new_settings_and_refuses_a_bad_master() -> None:
    s = settings_from_env(
        {
            "COINFEED_OPERATOR_SPARK_SERVICE_ACCOUNT": "coinfeed-spark",
            "COINFEED_OPERATOR_SPARK_MASTER": K8S,
            "COINFEED_OPERATOR_S3_ENDPOINT": "http://minio:9000",
            "COINFEED_OPERATOR_S3_SECRET": "lake-keys",
        }
    )
    assert (s.spark_service_account, s.spark_master) == ("coinfeed-spark", K8S)
    assert (s.s3_endpoint, s.s3_secret) == ("http://minio:9000", "lake-keys")
    assert settings_from_env({}).spark_master == ""
    with pytest.raises(SettingsError, match="COINFEED_OPERATOR_SPARK_MASTER"):
        settings_from_env({"COINFEED_OPERATOR_SPARK_MASTER": "yarn"})


def test_job_env_becomes_spark_settings() -> None:
    """The other side of the contract: what the CronJob sets is what Spark needs."""
    env = {
        jenv.S3_ENDPOINT: "http://minio:9000",
        jenv.S3_SECRET: "lake-keys",
        jenv.K8S_IMAGE: "s:1",
        jenv.POD_IP: "10.0.0.7",
        jenv.POD_NAMESPACE: "feeds",
        jenv.POD_NAME: "btc-hourly-1-x",
        jenv.LAKE_PVC: "coinfeed-lake",
        jenv.LAKE_PATH: "/lake",
    }
    local = env_conf(env, "local[*]")
    assert local == {
        "spark.hadoop.fs.s3a.endpoint": "http://minio:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
    }
    k8s = env_conf(env, K8S)
    assert k8s["spark.kubernetes.container.image"] == "s:1"
    assert k8s["spark.kubernetes.namespace"] == "feeds"
    assert k8s["spark.kubernetes.driver.pod.name"] == "btc-hourly-1-x"
    assert k8s["spark.driver.host"] == "10.0.0.7"
    assert k8s["spark.kubernetes.executor.secretKeyRef.AWS_SECRET_ACCESS_KEY"] == (
        "lake-keys:AWS_SECRET_ACCESS_KEY"
    )
    prefix = "spark.kubernetes.executor.volumes.persistentVolumeClaim.lake"
    assert k8s[f"{prefix}.options.claimName"] == "coinfeed-lake"
    assert k8s[f"{prefix}.mount.path"] == "/lake"
    assert env_conf({}, None) == {}


def test_job_pods_run_as_the_spark_image_user_restricted() -> None:
    """The Spark image's user is apache/spark's `spark` (185); the producers' 10001 is not it."""
    pod = _job()
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 185,
        "runAsGroup": 185,
        "fsGroup": 185,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    sc = pod["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
    custom = _job(spark_run_as_user=2000, spark_run_as_group=3000)["securityContext"]
    assert (custom["runAsUser"], custom["runAsGroup"], custom["fsGroup"]) == (2000, 3000, 3000)


def test_run_as_settings_are_read_and_root_is_refused() -> None:
    s = settings_from_env(
        {"COINFEED_OPERATOR_SPARK_RUN_AS_USER": "1000", "COINFEED_OPERATOR_SPARK_RUN_AS_GROUP": "7"}
    )
    assert (s.spark_run_as_user, s.spark_run_as_group) == (1000, 7)
    assert (settings_from_env({}).spark_run_as_user, settings_from_env({}).spark_run_as_group) == (
        185,
        185,
    )
    for bad in ("0", "-1", "spark"):
        with pytest.raises(SettingsError, match="COINFEED_OPERATOR_SPARK_RUN_AS_USER"):
            settings_from_env({"COINFEED_OPERATOR_SPARK_RUN_AS_USER": bad})


def test_job_reports_its_summary_as_the_termination_message() -> None:
    c = _job()["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert _env(_job())[jenv.TERMINATION_LOG]["value"] == "/dev/termination-log"
    # The container is the one the operator reads the message of.
    from coinfeed.operator.lastrun import CONTAINER

    assert c["name"] == CONTAINER


# --- Spark executors as pods (k8s:// master) ---------------------------------------------------


def _k8s_children(**overrides: Any) -> list[dict[str, Any]]:
    from coinfeed.operator.desired import hourly_children

    settings = OperatorSettings(
        **{**BASE, "spark_master": K8S, "lake_pvc": "coinfeed-lake", **overrides}
    )
    return hourly_children("btc", "feeds", "uid-1", BTC, settings)


def _downward(pod: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would resolve it (fieldRefs filled in)."""
    fields = {
        "metadata.name": "btc-hourly-29000000-abcde",
        "metadata.namespace": "feeds",
        "status.podIP": "10.1.2.3",
        "spec.serviceAccountName": pod.get("serviceAccountName", "default"),
    }
    out = {}
    for e in pod["containers"][0]["env"]:
        if "value" in e:
            out[e["name"]] = e["value"]
        elif "fieldRef" in e.get("valueFrom", {}):
            out[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
    return out


def test_k8s_master_gets_an_executor_pod_template_mounted_into_the_driver() -> None:
    from coinfeed.operator.desired import executor_pod_template, single_feed_group

    configmap, cron = _k8s_children()
    # One template per shared CronJob, named after it and owned like it.
    assert (configmap["kind"], configmap["metadata"]["name"]) == (
        "ConfigMap",
        cron["metadata"]["name"] + "-hourly-executor",
    )
    assert configmap["metadata"]["ownerReferences"] == cron["metadata"]["ownerReferences"]
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "executor-template")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    mount = next(
        m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "executor-template"
    )
    env = _downward(pod)
    key = env[jenv.EXECUTOR_TEMPLATE].removeprefix(mount["mountPath"] + "/")
    assert key in configmap["data"] and mount["readOnly"] is True

    template = yaml.safe_load(configmap["data"][key])
    assert template == executor_pod_template(
        single_feed_group("btc", "feeds", "uid-1", BTC),
        OperatorSettings(**{**BASE, "spark_master": K8S}),
    )
    spec = template["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "coinfeed-spark"
    assert spec["securityContext"] == pod["securityContext"]  # the same restricted 185/185
    assert spec["securityContext"]["runAsUser"] == 185
    (c,) = spec["containers"]
    assert c["name"] == jenv.EXECUTOR_CONTAINER
    assert "command" not in c and "args" not in c  # Spark passes `executor` to the entrypoint
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert c["resources"] == {
        "requests": {"cpu": "500m", "memory": "1536Mi"},
        "limits": {"cpu": "1", "memory": "1536Mi"},
    }
    lbls = template["metadata"]["labels"]
    assert lbls["app.kubernetes.io/name"] == "coinfeed-hourly"
    assert lbls["app.kubernetes.io/component"] == "hourly-executor"
    # Executors serve every coin of the shared job: its labels, not a feed's.
    assert lbls["coinfeed.io/hourly-job"] == cron["metadata"]["name"]
    assert "coinfeed.io/feed" not in lbls
    # Local mode: no template (reconcile_hourly removes an old one).
    from coinfeed.operator.desired import hourly_children

    local = OperatorSettings(**BASE)
    assert [c["kind"] for c in hourly_children("btc", "feeds", "u", BTC, local)] == ["CronJob"]


def test_the_driver_tells_spark_everything_executors_need() -> None:
    """The CronJob's environment, resolved as the kubelet would, becomes Spark settings."""
    _, cron = _k8s_children(spark_executor_instances=3, s3_secret="lake-keys")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    conf = env_conf(_downward(pod), K8S)
    assert conf["spark.kubernetes.namespace"] == "feeds"
    assert conf["spark.kubernetes.container.image"] == "s:1"
    assert conf["spark.kubernetes.container.image.pullPolicy"] == "IfNotPresent"
    assert conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "coinfeed-spark"
    assert conf["spark.kubernetes.authenticate.executor.serviceAccountName"] == "coinfeed-spark"
    assert conf["spark.kubernetes.driver.pod.name"] == "btc-hourly-29000000-abcde"
    assert (conf["spark.driver.host"], conf["spark.driver.bindAddress"]) == ("10.1.2.3", "0.0.0.0")
    assert (conf["spark.driver.port"], conf["spark.driver.blockManager.port"]) == (
        str(jenv.DRIVER_PORT),
        str(jenv.BLOCK_MANAGER_PORT),
    )
    assert conf["spark.blockManager.port"] == str(jenv.BLOCK_MANAGER_PORT)
    assert conf["spark.kubernetes.executor.podTemplateFile"] == (
        "/etc/coinfeed/spark/executor-pod.yaml"
    )
    assert conf["spark.kubernetes.executor.podTemplateContainerName"] == "executor"
    assert conf["spark.executor.instances"] == "3"
    assert (
        conf["spark.kubernetes.executor.request.cores"],
        conf["spark.kubernetes.executor.limit.cores"],
    ) == ("500m", "1")
    # Heap + overhead = the 1536Mi limit of the template.
    assert (conf["spark.executor.memory"], conf["spark.executor.memoryOverhead"]) == (
        "1152m",
        "384m",
    )
    # No RBAC beyond executor pods: no executor ConfigMap, no service or PVC clean-up.
    assert conf["spark.kubernetes.executor.disableConfigMap"] == "true"
    assert conf["spark.kubernetes.driver.service.deleteOnTermination"] == "false"
    assert conf["spark.kubernetes.driver.ownPersistentVolumeClaim"] == "false"
    assert conf["spark.kubernetes.authenticate.oauthTokenFile"].endswith("/serviceaccount/token")
    prefix = "spark.kubernetes.executor.volumes.persistentVolumeClaim.lake"
    assert conf[f"{prefix}.options.claimName"] == "coinfeed-lake"
    assert conf["spark.kubernetes.executor.secretKeyRef.AWS_ACCESS_KEY_ID"] == (
        "lake-keys:AWS_ACCESS_KEY_ID"
    )


@pytest.mark.parametrize(
    ("limit", "heap", "overhead"), [("1536Mi", "1152m", "384m"), ("4Gi", "3072m", "1024m")]
)
def test_executor_memory_split(limit: str, heap: str, overhead: str) -> None:
    from coinfeed.operator.desired import executor_env
    from coinfeed.operator.settings import Resources

    s = OperatorSettings(spark_executor_resources=Resources("1", limit, "1", limit))
    env = executor_env(s)
    assert (env[jenv.EXECUTOR_MEMORY], env[jenv.EXECUTOR_MEMORY_OVERHEAD]) == (heap, overhead)


def test_executor_settings_are_read_and_checked() -> None:
    s = settings_from_env(
        {
            "COINFEED_OPERATOR_SPARK_EXECUTOR_INSTANCES": "4",
            "COINFEED_OPERATOR_SPARK_EXECUTOR_RESOURCES": '{"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}',
        }
    )
    assert s.spark_executor_instances == 4
    assert s.spark_executor_resources.memory_limit == "2Gi"
    with pytest.raises(SettingsError, match="COINFEED_OPERATOR_SPARK_EXECUTOR_INSTANCES"):
        settings_from_env({"COINFEED_OPERATOR_SPARK_EXECUTOR_INSTANCES": "0"})
    with pytest.raises(SettingsError, match="below the 768Mi"):
        settings_from_env(
            {
                "COINFEED_OPERATOR_SPARK_EXECUTOR_RESOURCES": '{"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}'
            }
        )


def test_a_changed_executor_template_is_drift() -> None:
    from coinfeed.operator.drift import spec_drift

    configmap, _ = _k8s_children()
    live = {**configmap, "data": dict(configmap["data"])}
    assert spec_drift(configmap, live) == []
    live["data"]["executor-pod.yaml"] = "apiVersion: v1\nkind: Pod\n"
    assert spec_drift(configmap, live) == [".data.executor-pod.yaml"]
    live["data"] = {**configmap["data"], "extra": "x"}
    assert spec_drift(configmap, live) == [".data.extra"]


# --- Spark RPC authentication (issue #13) ------------------------------------------------------

RPC = "coinfeed-operator-spark-rpc"


def _rpc_volume(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == RPC]


def test_k8s_driver_mounts_the_rpc_secret_read_only_by_name() -> None:
    _, cron = _k8s_children(spark_rpc_secret=RPC)
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (volume,) = _rpc_volume(pod)
    assert volume["secret"] == {
        "secretName": RPC,
        "items": [{"key": jenv.RPC_SECRET_KEY, "path": jenv.RPC_SECRET_KEY}],
        "defaultMode": 0o440,
        "optional": True,
    }
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {"name": volume["name"], "mountPath": jenv.RPC_SECRET_DIR, "readOnly": True}
    env = _downward(pod)
    assert env[jenv.RPC_SECRET_NAME] == RPC
    assert env[jenv.RPC_SECRET] == f"{jenv.RPC_SECRET_DIR}/{jenv.RPC_SECRET_KEY}"
    # The driver's Spark settings read the key from that mount and have Spark mount the same
    # Secret into executors at the same place.
    conf = env_conf(env, K8S)
    assert conf["spark.authenticate"] == "true"
    assert conf["spark.network.crypto.enabled"] == "true"
    for key in ("", ".driver", ".executor"):
        assert conf[f"spark.authenticate.secret{key}.file"] == env[jenv.RPC_SECRET]
    assert conf[f"spark.kubernetes.executor.secrets.{RPC}"] == mount["mountPath"]
    # Nothing in the CronJob refers to the Secret except that volume: no env from it.
    assert RPC not in yaml.safe_dump(pod["containers"][0].get("envFrom", []))
    assert not [e for e in pod["containers"][0]["env"] if "secretKeyRef" in e.get("valueFrom", {})]


@pytest.mark.parametrize(
    "overrides",
    [
        {"spark_master": K8S},  # setting off
        {"spark_master": "", "spark_rpc_secret": RPC},  # local mode: no RPC between pods
        {"spark_master": "local[2]", "spark_rpc_secret": RPC},
    ],
)
def test_no_rpc_secret_volume_without_the_setting_or_executor_pods(
    overrides: dict[str, Any],
) -> None:
    cron = hourly_cronjob("btc", "feeds", "uid-1", BTC, OperatorSettings(**{**BASE, **overrides}))
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert not _rpc_volume(pod)
    assert jenv.RPC_SECRET_DIR not in [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]]
    assert not {jenv.RPC_SECRET_NAME, jenv.RPC_SECRET} & set(_env(pod))


def test_executor_template_leaves_java_tool_options_to_spark() -> None:
    """Spark appends spark.executorEnv.* to the template container's env: a JAVA_TOOL_OPTIONS of
    the template's own would be a second entry, and one of the two would be lost (it carries
    -Dspark.master, which the executor needs to read the RPC key file)."""
    configmap, _ = _k8s_children(spark_rpc_secret=RPC)
    template = yaml.safe_load(configmap["data"]["executor-pod.yaml"])
    (container,) = template["spec"]["containers"]
    assert "JAVA_TOOL_OPTIONS" not in [e["name"] for e in container["env"]]


def test_rpc_secret_setting_is_read_and_checked() -> None:
    s = settings_from_env({"COINFEED_OPERATOR_SPARK_RPC_SECRET": RPC})
    assert s.spark_rpc_secret == RPC
    assert settings_from_env({}).spark_rpc_secret == ""
    # Spark's executor volume is <name>-volume: at most 63 characters, a DNS label.
    assert settings_from_env({"COINFEED_OPERATOR_SPARK_RPC_SECRET": "a" * 56})
    for bad in ("a" * 57, "Spark-RPC", "rpc.secret", "-rpc"):
        with pytest.raises(SettingsError, match="COINFEED_OPERATOR_SPARK_RPC_SECRET"):
            settings_from_env({"COINFEED_OPERATOR_SPARK_RPC_SECRET": bad})
