"""The operator chart rendered by the real helm: lint-clean, schema-validated, RBAC from the file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from coinfeed import paths, versions
from coinfeed.operator.settings import MAX_COINS_PER_JOB

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "coinfeed-operator"
HELM = paths.bin_dir() / f"helm-{versions.get('HELM_VERSION')}" / "helm"

pytestmark = pytest.mark.skipif(
    not HELM.exists(), reason=f"helm not built yet ({HELM}): make tools"
)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr + proc.stdout)
    return proc


def render(*sets: str) -> list[dict[str, Any]]:
    argv = ["template", "rel", str(CHART), "-n", "feeds"]
    for s in sets:
        argv += ["--set", s]
    return [d for d in yaml.safe_load_all(helm(*argv).stdout) if d]


def test_lint_strict_is_clean() -> None:
    # helm() raises on a non-zero exit; --strict turns lint warnings into failures.
    assert "0 chart(s) failed" in helm("lint", "--strict", str(CHART)).stdout


def test_namespaced_role_has_exactly_the_rules_file() -> None:
    rules = yaml.safe_load((CHART / "files" / "rbac-rules.yaml").read_text())
    docs = render()
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert role["rules"] == rules["namespaced"]
    assert not [d for d in docs if d["kind"].startswith("Cluster")]
    cluster = render("rbac.clusterWide=true")
    (crole,) = [d for d in cluster if d["kind"] == "ClusterRole"]
    assert crole["rules"] == rules["namespaced"] + rules["clusterWide"]
    assert (
        "--all-namespaces"
        in next(d for d in cluster if d["kind"] == "Deployment")["spec"]["template"]["spec"][
            "containers"
        ][0]["args"]
    )


def test_deployment_is_single_recreate_restricted_and_checksummed() -> None:
    dep = next(d for d in render() if d["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]
    assert {"checksum/settings", "checksum/rbac"} <= set(pod["metadata"]["annotations"])
    sc = pod["spec"]["containers"][0]["securityContext"]
    assert (
        sc["readOnlyRootFilesystem"]
        and not sc["allowPrivilegeEscalation"]
        and sc["capabilities"]["drop"] == ["ALL"]
    )
    assert (
        pod["spec"]["securityContext"]["runAsNonRoot"]
        and pod["spec"]["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    assert "--namespace=feeds" in pod["spec"]["containers"][0]["args"]
    selector = dep["spec"]["selector"]["matchLabels"]
    for d in render():
        labels = d["metadata"]["labels"]
        if labels.get("app.kubernetes.io/component") == "uninstall-hook":
            # Its pod must not look like an operator pod: the hook waits for those to stop.
            pod_labels = d["spec"]["template"]["metadata"]["labels"]
            assert not selector.items() <= pod_labels.items(), pod_labels
            continue
        assert labels["app.kubernetes.io/name"] == "coinfeed-operator"


def test_settings_reach_the_operator_environment() -> None:
    from coinfeed.operator.settings import settings_from_env

    cm = next(
        d
        for d in render("kafka.bootstrap=k0:9092", "pushgateway.address=pg:9091")
        if d["kind"] == "ConfigMap"
    )
    settings = settings_from_env(cm["data"])
    assert settings.kafka_bootstrap == "k0:9092"
    assert settings.pushgateway == "pg:9091"
    assert settings.hourly_command == ("coinfeed", "hourly")
    assert settings.producer_image == "coinfeed-producer:0.1.0"


def test_spark_run_as_values_reach_the_cronjob() -> None:
    from coinfeed.operator.desired import hourly_cronjob
    from coinfeed.operator.settings import settings_from_env
    from coinfeed.operator.spec import parse_spec

    spec = parse_spec({"coin": "btc", "prices": {"source": "binance", "pair": "BTC/USDT"}})

    def job_security(*sets: str) -> dict[str, Any]:
        cm = next(d for d in render(*sets) if d["kind"] == "ConfigMap")
        cron = hourly_cronjob("btc", "feeds", "u", spec, settings_from_env(cm["data"]))
        sc: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"][
            "securityContext"
        ]
        return sc

    default = job_security()
    assert (default["runAsUser"], default["runAsGroup"], default["fsGroup"]) == (185, 185, 185)
    custom = job_security("spark.runAsUser=1001", "spark.runAsGroup=1002")
    assert (custom["runAsUser"], custom["runAsGroup"], custom["fsGroup"]) == (1001, 1002, 1002)


def test_max_coins_per_job_reaches_the_operator() -> None:
    from coinfeed.operator.settings import settings_from_env

    def max_coins(*sets: str) -> int:
        cm = next(d for d in render(*sets) if d["kind"] == "ConfigMap")
        return settings_from_env(cm["data"]).hourly_max_coins_per_job

    assert max_coins() == 100
    assert max_coins("spark.maxCoinsPerJob=1") == 1  # one CronJob per feed


def test_the_schema_caps_max_coins_per_job_where_the_operator_does() -> None:
    """The chart refuses what the operator would refuse at start (one source: hourly_status)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    spark = schema["properties"]["spark"]["properties"]["maxCoinsPerJob"]
    assert spark["maximum"] == MAX_COINS_PER_JOB


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("unknownKey=1", "additional properties"),
        (f"spark.maxCoinsPerJob={MAX_COINS_PER_JOB + 1}", "maxCoinsPerJob"),
        ("spark.runAsUser=0", "runAsUser"),
        ("operator.logLevel=LOUD", "logLevel"),
        ("producer.metricsPort=0", "metricsPort"),
        ("operator.driftIntervalSeconds=0", "driftIntervalSeconds"),
    ],
)
def test_schema_refuses_bad_values(value: str, complaint: str) -> None:
    proc = helm("template", "rel", str(CHART), "--set", value, check=False)
    assert proc.returncode != 0
    assert complaint in proc.stderr
