"""Spark RPC authentication and encryption between driver and executor pods (k8s:// master).

Checked with Spark's own code through py4j, on the local test session's JVM: the executor pod
Spark would create from our settings (``BasicExecutorFeatureStep``, ``MountSecretsFeatureStep``),
the settings an executor in that pod starts with (its ``SPARK_JAVA_OPT_*`` and
``JAVA_TOOL_OPTIONS`` system properties, nothing else), and the ``SecurityManager`` the executor
builds from them to fetch the driver's settings, which must find the same key as the driver's.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from coinfeed import job_env as jenv
from coinfeed.spark.hourly import job_conf
from coinfeed.spark.session import (
    EXECUTOR_JAVA_TOOL_OPTIONS,
    env_conf,
    merge_conf,
    rpc_auth_conf,
    spark_conf,
)

K8S = "k8s://https://kubernetes.default.svc"
SECRET_NAME = "coinfeed-operator-spark-rpc"
AUTH_KEYS = {
    "spark.authenticate",
    "spark.authenticate.secret.file",
    "spark.authenticate.secret.driver.file",
    "spark.authenticate.secret.executor.file",
    "spark.network.crypto.enabled",
    EXECUTOR_JAVA_TOOL_OPTIONS,
}


def _driver_env(key_file: Path) -> dict[str, str]:
    """The CronJob's environment as the operator writes it (k8s:// master, RPC Secret set)."""
    return {
        jenv.RPC_SECRET_NAME: SECRET_NAME,
        jenv.RPC_SECRET: str(key_file),
        jenv.POD_IP: "10.1.2.3",
        jenv.POD_NAMESPACE: "feeds",
        jenv.POD_NAME: "hourly-1-abcde",
        jenv.K8S_IMAGE: "coinfeed-spark:0.1.0",
    }


def _key_file(tmp_path: Path) -> Path:
    key = tmp_path / "spark-rpc" / jenv.RPC_SECRET_KEY
    key.parent.mkdir()
    key.write_text(secrets.token_urlsafe(48)[:64])
    return key


# --- pure settings ------------------------------------------------------------------------------


def test_k8s_master_authenticates_and_encrypts_with_the_mounted_file() -> None:
    conf = rpc_auth_conf(SECRET_NAME, K8S)
    path = f"{jenv.RPC_SECRET_DIR}/{jenv.RPC_SECRET_KEY}"
    assert conf == {
        "spark.authenticate": "true",
        "spark.authenticate.secret.file": path,
        "spark.authenticate.secret.driver.file": path,
        # Set: Spark then puts no generated key in executor pods' env (_SPARK_AUTH_SECRET).
        "spark.authenticate.secret.executor.file": path,
        f"spark.kubernetes.executor.secrets.{SECRET_NAME}": jenv.RPC_SECRET_DIR,
        "spark.network.crypto.enabled": "true",
        EXECUTOR_JAVA_TOOL_OPTIONS: f"-Dspark.master={K8S}",
    }
    # Never a key value in the settings, only a file.
    assert "spark.authenticate.secret" not in conf


@pytest.mark.parametrize("master", ["local[*]", "local[2]", None, ""])
def test_no_kubernetes_master_no_auth_settings(master: str | None) -> None:
    assert rpc_auth_conf(SECRET_NAME, master) == {}
    env = {jenv.RPC_SECRET_NAME: SECRET_NAME, jenv.RPC_SECRET: "/nonexistent/secret"}
    conf = spark_conf(master=master or None, jars=[], extra=env_conf(env, master))
    assert not AUTH_KEYS & set(conf)
    assert not [k for k in conf if k.startswith("spark.kubernetes.executor.secrets.")]


def test_without_the_secret_name_no_auth_settings() -> None:
    assert rpc_auth_conf("", K8S) == {}
    assert not AUTH_KEYS & set(env_conf({jenv.POD_IP: "10.1.2.3"}, K8S))


def test_executor_java_tool_options_add_up_instead_of_replacing() -> None:
    base = {EXECUTOR_JAVA_TOOL_OPTIONS: "-Xss4m", "a": "1"}
    merged = merge_conf(base, rpc_auth_conf(SECRET_NAME, K8S))
    assert merged[EXECUTOR_JAVA_TOOL_OPTIONS] == f"-Xss4m -Dspark.master={K8S}"
    assert merged["a"] == "1" and merged["spark.authenticate"] == "true"
    assert merge_conf({"a": "1"}, {"a": "2"}) == {"a": "2"}


def _args(master: str) -> argparse.Namespace:
    return argparse.Namespace(master=master, shuffle_partitions=2, driver_memory="512m")


def test_job_start_names_a_missing_key_file(tmp_path: Path) -> None:
    missing = tmp_path / "spark-rpc" / jenv.RPC_SECRET_KEY
    env = {**_driver_env(missing), "COINFEED_CACHE": str(tmp_path)}
    with pytest.raises(OSError, match=str(missing)):
        job_conf(_args(K8S), env)
    missing.parent.mkdir()
    missing.write_text("")  # an empty key is no key (Spark refuses it later, less clearly)
    with pytest.raises(OSError, match="missing or empty"):
        job_conf(_args(K8S), env)


def test_job_conf_turns_auth_on_with_the_file(tmp_path: Path) -> None:
    key = _key_file(tmp_path)
    conf = job_conf(_args(K8S), _driver_env(key))
    assert conf["spark.authenticate"] == "true"
    assert conf["spark.network.crypto.enabled"] == "true"
    assert conf["spark.authenticate.secret.executor.file"] == str(key)
    assert conf[f"spark.kubernetes.executor.secrets.{SECRET_NAME}"] == str(key.parent)
    assert key.read_text() not in "".join(conf.values())
    # Local mode: the file is not needed, nor looked for.
    local = job_conf(_args("local[2]"), _driver_env(tmp_path / "nope"))
    assert not AUTH_KEYS & set(local)


# --- Spark's own code, through py4j ---------------------------------------------------------


def _jconf(jvm: Any, settings: Mapping[str, str]) -> Any:
    conf = jvm.org.apache.spark.SparkConf(False)
    for key, value in settings.items():
        conf.set(key, value)
    return conf


def _config(jvm: Any) -> Any:
    return getattr(getattr(jvm.org.apache.spark.internal.config, "package$"), "MODULE$")


def _system_properties(opts: list[str]) -> dict[str, str]:
    """``-Dkey=value`` options as the JVM turns them into system properties."""
    props = {}
    for opt in opts:
        if opt.startswith("-D") and "=" in opt:
            key, value = opt[2:].split("=", 1)
            props[key] = value
    return props


def _executor_pod(jvm: Any, driver_conf: Any, driver_sm: Any) -> tuple[Any, Any]:
    """The executor pod Spark's driver would create (env, secret volume), without an API server."""
    k8s = jvm.org.apache.spark.deploy.k8s
    none = getattr(getattr(jvm.scala, "None$"), "MODULE$")
    kconf = k8s.KubernetesConf.createExecutorConf(driver_conf, "1", "spark-rpc-test", none, 0)
    profile = getattr(getattr(jvm.org.apache.spark.resource, "ResourceProfile$"), "MODULE$")
    pod = k8s.features.BasicExecutorFeatureStep(
        kconf, driver_sm, profile.getOrCreateDefaultProfile(driver_conf)
    ).configurePod(k8s.SparkPod.initialPod())
    pod = k8s.features.MountSecretsFeatureStep(kconf).configurePod(pod)
    return pod.pod(), pod.container()


def test_executors_authenticate_with_the_drivers_key_from_the_secret_file(
    spark: Any, tmp_path: Path
) -> None:
    jvm = spark.sparkContext._jvm
    config = _config(jvm)
    key = _key_file(tmp_path)
    expected = base64.b64encode(key.read_bytes()).decode()
    settings = job_conf(_args(K8S), _driver_env(key))

    # The driver: its settings pass Spark's own check, and it reads the key from the file.
    driver_conf = _jconf(jvm, {**settings, "spark.app.id": "spark-rpc-test"})
    driver_conf.validateSettings()
    none = getattr(getattr(jvm.scala, "None$"), "MODULE$")
    driver_sm = jvm.org.apache.spark.SecurityManager(
        driver_conf, none, config.AUTH_SECRET_FILE_DRIVER()
    )
    driver_sm.initializeAuth()
    assert driver_sm.getSecretKey() == expected
    assert driver_sm.isEncryptionEnabled()

    # The executor pod Spark builds: no key in its environment, the Secret as a volume.
    pod, container = _executor_pod(jvm, driver_conf, driver_sm)
    env = {e.getName(): e.getValue() for e in container.getEnv()}
    assert "_SPARK_AUTH_SECRET" not in env
    assert expected not in env.values() and key.read_text() not in env.values()
    volumes = {v.getName(): v for v in pod.getSpec().getVolumes()}
    volume = volumes[f"{SECRET_NAME}-volume"]
    assert volume.getSecret().getSecretName() == SECRET_NAME
    mounts = {m.getName(): m.getMountPath() for m in container.getVolumeMounts()}
    assert mounts[f"{SECRET_NAME}-volume"] == str(key.parent)

    # What the executor JVM starts with: the SPARK_JAVA_OPT_* options the image's entrypoint
    # passes to java, and JAVA_TOOL_OPTIONS, which the JVM reads itself. Nothing else of the
    # driver's settings (spark.master included) reaches it before it has fetched them.
    opts = [v for k, v in env.items() if k.startswith("SPARK_JAVA_OPT_")]
    opts += shlex.split(env.get("JAVA_TOOL_OPTIONS", ""))
    startup = {k: v for k, v in _system_properties(opts).items() if k.startswith("spark.")}
    assert "spark.authenticate.secret" not in startup
    assert startup["spark.master"] == K8S  # only through JAVA_TOOL_OPTIONS
    executor_conf = _jconf(jvm, startup)
    executor_conf.validateSettings()

    # First connection (CoarseGrainedExecutorBackend's driverPropsFetcher: the default file
    # setting), then the executor's SparkEnv (the executor file): both get the driver's key.
    for entry in (config.AUTH_SECRET_FILE(), config.AUTH_SECRET_FILE_EXECUTOR()):
        sm = jvm.org.apache.spark.SecurityManager(executor_conf, none, entry)
        assert sm.isAuthenticationEnabled() and sm.isEncryptionEnabled()
        assert sm.getSecretKey() == expected

    # Why JAVA_TOOL_OPTIONS: without spark.master the executor finds no key at all.
    no_master = _jconf(jvm, {k: v for k, v in startup.items() if k != "spark.master"})
    sm = jvm.org.apache.spark.SecurityManager(no_master, none, config.AUTH_SECRET_FILE())
    with pytest.raises(Exception, match="A secret key must be specified"):
        sm.getSecretKey()
