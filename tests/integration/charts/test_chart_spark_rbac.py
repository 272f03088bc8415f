"""The Spark driver's rights, checked by a real kube-apiserver (RBAC and admission): none in local
mode; in k8s mode only executor pods, which the chart's ValidatingAdmissionPolicy enforces on
real requests (RBAC alone cannot tell executor pods from, say, a Kafka broker)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from localnode.apiserver import KubeAPIServer
from localnode.operator_harness import wait_for
from tests.integration.charts.helmtools import Helm
from tests.support.apiserver import Kubectl, create_namespace, unique_name

SA = "coinfeed-spark"
K8S_VALUES = ["ci/spark-k8s-values.yaml"]


def _install(helm: Helm, kubectl: Kubectl, ns: str, values: list[str]) -> None:
    """Only the chart's Spark identity (ServiceAccount, Role, admission policy) into ``ns``."""
    rendered = helm.template_text(
        "coinfeed",
        values=values,
        namespace=ns,
        extra=["--show-only", "templates/spark-rbac.yaml"],
    ).stdout
    kubectl.apply(rendered, "-n", ns)


def _can_i(kubectl: Kubectl, ns: str) -> Callable[..., bool]:
    def can(verb: str, resource: str, namespace: str = ns) -> bool:
        # "pods/exec" means the exec subresource here (kubectl would read it as a pod's name).
        resource, _, sub = resource.partition("/")
        proc = kubectl(
            "auth",
            "can-i",
            verb,
            resource,
            *([f"--subresource={sub}"] if sub else []),
            "-n",
            namespace,
            f"--as=system:serviceaccount:{ns}:{SA}",
            check=False,
        )
        assert proc.stdout.strip() in ("yes", "no"), proc.stderr
        return proc.stdout.strip() == "yes"

    return can


def _pod(name: str, labels: dict[str, str], service_account: str | None = None) -> str:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "registry.invalid/x:1"}]}
    if service_account:
        spec["serviceAccountName"] = service_account
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }
    )


EXECUTOR = {"spark-role": "executor", "spark-app-selector": "spark-0123"}


def test_local_mode_spark_account_has_no_rights(helm: Helm, kubectl: Kubectl) -> None:
    ns = create_namespace(kubectl, unique_name("spark-local"))
    _install(helm, kubectl, ns, [])
    can = _can_i(kubectl, ns)
    for verb, resource in [
        ("create", "pods"),
        ("get", "pods"),
        ("list", "pods"),
        ("get", "secrets"),
    ]:
        assert not can(verb, resource), f"{verb} {resource}"
    sa = json.loads(kubectl("get", "serviceaccount", SA, "-n", ns, "-o", "json").stdout)
    assert sa["automountServiceAccountToken"] is False


def test_k8s_mode_rbac_is_executor_pods_only(helm: Helm, kubectl: Kubectl) -> None:
    ns = create_namespace(kubectl, unique_name("spark-rbac"))
    _install(helm, kubectl, ns, K8S_VALUES)
    can = _can_i(kubectl, ns)
    for verb in ("get", "list", "watch", "create", "delete", "deletecollection"):
        assert can(verb, "pods"), verb
    denied = [
        ("patch", "pods"),
        ("update", "pods"),
        ("create", "pods/exec"),
        ("create", "pods/eviction"),
        ("get", "secrets"),
        ("create", "services"),
        ("delete", "services"),
        ("create", "configmaps"),
        ("delete", "configmaps"),
        ("get", "persistentvolumeclaims"),
        ("create", "persistentvolumeclaims"),
        ("delete", "persistentvolumeclaims"),
        ("delete", "deployments"),
        ("delete", "statefulsets"),
        ("delete", "coinfeeds.coinfeed.io"),
    ]
    for verb, resource in denied:
        assert not can(verb, resource), f"{verb} {resource}"
    assert not can("create", "pods", namespace="default")  # its own namespace only


def test_admission_policy_lets_the_driver_touch_only_its_executors(
    helm: Helm, kubectl: Kubectl, kube_apiserver: KubeAPIServer
) -> None:
    ns = create_namespace(kubectl, unique_name("spark-vap"))
    _install(helm, kubectl, ns, K8S_VALUES)
    spark = kubectl.using(kube_apiserver.kubeconfig_for_service_account(ns, SA))
    # Someone else's pod (a broker, say) and a claim, made by the admin.
    kubectl.apply(_pod("coinfeed-kafka-0", {"app.kubernetes.io/name": "kafka"}), "-n", ns)
    kubectl.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "coinfeed-lake"},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ),
        "-n",
        ns,
    )

    # The policy takes a moment to load: until then a plain pod would be admitted.
    def refused() -> str | None:
        name = f"probe-{uuid.uuid4().hex[:6]}"
        proc = spark("create", "-n", ns, "-f", "-", input=_pod(name, {}, SA), check=False)
        if proc.returncode == 0:
            kubectl("delete", "pod", name, "-n", ns, "--wait=false")
            return None
        return proc.stderr

    message = wait_for("the admission policy to load", refused, timeout=60)
    assert "may create only Spark executor pods" in message, message

    # Executor pods running as the Spark account only (not, e.g., as the operator's account).
    other_sa = spark(
        "create",
        "-n",
        ns,
        "-f",
        "-",
        input=_pod("exec-as-operator", EXECUTOR, "coinfeed-operator"),
        check=False,
    )
    assert other_sa.returncode != 0 and "run as ServiceAccount coinfeed-spark" in other_sa.stderr
    spark("create", "-n", ns, "-f", "-", input=_pod("spark-exec-1", EXECUTOR, SA))
    spark("create", "-n", ns, "-f", "-", input=_pod("spark-exec-2", EXECUTOR, SA))

    # Deleting a pod it did not create is refused, one by one and by collection.
    broker = spark("delete", "pod", "coinfeed-kafka-0", "-n", ns, "--wait=false", check=False)
    assert broker.returncode != 0
    assert "may delete only Spark executor pods" in broker.stderr, broker.stderr
    spark("delete", "pod", "spark-exec-1", "-n", ns, "--wait=false")
    everything = spark("delete", "--raw", f"/api/v1/namespaces/{ns}/pods", check=False)
    assert everything.returncode != 0
    pods = kubectl("get", "pods", "-n", ns, "-o", "name").stdout.split()
    assert "pod/coinfeed-kafka-0" in pods and "pod/spark-exec-1" not in pods
    # Its executors by label: what Spark does when it stops.
    spark("delete", "pods", "-n", ns, "-l", "spark-role=executor", "--wait=false")
    assert kubectl("get", "pods", "-n", ns, "-o", "name").stdout.split() == ["pod/coinfeed-kafka-0"]

    # Claims are out of reach altogether (RBAC).
    for args in (["get", "pvc", "coinfeed-lake"], ["delete", "pvc", "coinfeed-lake"]):
        proc = spark(*args, "-n", ns, check=False)
        assert proc.returncode != 0 and "forbidden" in proc.stderr.lower(), proc.stderr
    assert kubectl("get", "pvc", "coinfeed-lake", "-n", ns, check=False).returncode == 0


@pytest.mark.parametrize("values", [[], K8S_VALUES], ids=["local", "k8s"])
def test_other_accounts_are_not_affected_by_the_policy(
    helm: Helm, kubectl: Kubectl, values: list[str]
) -> None:
    """The policy matches the Spark account only: the admin can still manage any pod."""
    ns = create_namespace(kubectl, unique_name("spark-others"))
    _install(helm, kubectl, ns, values)
    kubectl.apply(_pod("plain", {"app": "x"}), "-n", ns)
    kubectl("delete", "pod", "plain", "-n", ns, "--wait=false")


RESTRICTED = (
    "pod-security.kubernetes.io/enforce=restricted",
    "pod-security.kubernetes.io/warn=restricted",
)


def test_driver_and_executor_pods_from_the_operator_pass_restricted_pod_security(
    helm: Helm, kubectl: Kubectl, kube_apiserver: KubeAPIServer
) -> None:
    """Umbrella values (k8s mode) -> operator settings -> the CronJob and executor pod template
    the operator writes; an executor pod made from the template the way Spark makes one, created
    by the Spark account itself, is admitted by RBAC, the chart's policy and Pod Security
    (restricted) without warnings."""
    import yaml

    from coinfeed.operator.desired import hourly_children
    from coinfeed.operator.settings import settings_from_env
    from coinfeed.operator.spec import parse_spec
    from tests.integration.charts.helmtools import by_kind

    ns = create_namespace(kubectl, unique_name("spark-psa"), RESTRICTED)
    _install(helm, kubectl, ns, K8S_VALUES)
    objs = helm.template("coinfeed", values=K8S_VALUES, namespace=ns)
    (cm,) = [c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"].endswith("-settings")]
    spec = parse_spec({"coin": "btc", "prices": {"source": "binance", "pair": "BTC/USDT"}})
    template_cm, cron = hourly_children("btc", ns, "uid-1", spec, settings_from_env(cm["data"]))
    for obj in (template_cm, cron):
        obj["metadata"].pop("ownerReferences")  # no CoinFeed object here
        proc = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))
        assert "Warning" not in proc.stderr, proc.stderr

    template = yaml.safe_load(template_cm["data"]["executor-pod.yaml"])
    pod = json.loads(json.dumps(template))
    pod["metadata"]["name"] = "coinfeed-hourly-0a1b2c-exec-1"
    pod["metadata"]["labels"].update({**EXECUTOR, "spark-exec-id": "1"})
    pod["spec"]["restartPolicy"] = "Never"
    (container,) = pod["spec"]["containers"]
    # What Spark adds to the template's container: image, the entrypoint's argument, its
    # block-manager port, env and memory/cpu. The template already holds a volume named
    # spark-local-dir-*, so Spark adopts it as the local dir instead of adding one
    # (LocalDirsFeatureStep); a second one is what the API server refused before.
    (local_dir,) = [
        m for m in container["volumeMounts"] if m["name"].startswith("spark-local-dir-")
    ]
    container.update(
        image=cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
        args=["executor"],
        ports=[{"name": "blockmanager", "containerPort": 7079}],
    )
    container["env"] += [
        {"name": "SPARK_DRIVER_URL", "value": "spark://CoarseGrainedScheduler@10.1.2.3:7078"},
        {"name": "SPARK_LOCAL_DIRS", "value": local_dir["mountPath"]},
    ]
    spark = kubectl.using(kube_apiserver.kubeconfig_for_service_account(ns, SA))

    def created() -> str | None:
        proc = spark("create", "-n", ns, "-f", "-", input=json.dumps(pod), check=False)
        if proc.returncode == 0:
            return proc.stderr or "ok"
        assert "may create only" in proc.stderr or "denied" in proc.stderr, proc.stderr
        return None  # the policy may still be loading its type checks; retry

    stderr = wait_for("the executor pod", created, timeout=60)
    assert "Warning" not in stderr, stderr
    live = json.loads(kubectl("get", "pod", pod["metadata"]["name"], "-n", ns, "-o", "json").stdout)
    assert live["spec"]["securityContext"]["runAsUser"] == 185
    assert live["spec"]["automountServiceAccountToken"] is False
