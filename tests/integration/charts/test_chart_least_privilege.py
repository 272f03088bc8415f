"""Least privilege, checked by a real kube-apiserver: every ServiceAccount the chart's pods (and the
operator's children) run as may do exactly what its component's code does, and nothing just
outside it; pods whose component calls no API mount no token.

The accounts:

- ``coinfeed-operator``: kopf + ``coinfeed/operator/kube_apply.py`` (the table below);
- ``coinfeed-spark``: nothing in local mode; executor pods in k8s mode (the admission policy that
  narrows it further is tested in test_chart_spark_rbac.py);
- ``coinfeed-kafka`` (the brokers; KRaft: the combined broker+controller nodes),
  ``coinfeed-kafka-zookeeper`` and ``coinfeed-pushgateway``: their own accounts, so that nothing
  granted to the namespace's ``default`` reaches them. None calls the API: no rights, no token;
- the namespace's ``default``: the producers, executors and the helm test pods. None of them
  calls the API, so the chart binds nothing to it.

The expected rights are written out here, not read from the chart: widening a Role (say a "*"
verb, or a rule on secrets) makes the exact rules review and the refusal table fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
import yaml

from localnode.apiserver import KubeAPIServer
from tests.integration.charts.helmtools import (
    CHARTS,
    REPO,
    UMBRELLA,
    Helm,
    Obj,
    by_kind,
    find,
    pod_spec,
    shipped_values,
)
from tests.support.apiserver import Kubectl, create_namespace, unique_name

OPERATOR = "coinfeed-operator"
SPARK = "coinfeed-spark"
DEFAULT = "default"
# The components that call no API, each under its own account (named like its workload).
KAFKA = "coinfeed-kafka"
ZOOKEEPER = "coinfeed-kafka-zookeeper"
PUSHGATEWAY = "coinfeed-pushgateway"
K8S_VALUES = ["ci/spark-k8s-values.yaml"]

# (apiGroup, resource, verb): the unit of an RBAC grant.
Grant = tuple[str, str, str]

# What the operator's code does (see charts/coinfeed-operator/files/rbac-rules.yaml for why).
OPERATOR_USES: dict[tuple[str, str], set[str]] = {
    ("coinfeed.io", "coinfeeds"): {"get", "list", "watch", "patch"},
    ("coinfeed.io", "coinfeeds/status"): {"patch"},
    ("coinfeed.io", "coinfeeds/finalizers"): {"update"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "update", "delete"},
    ("", "services"): {"get", "create", "update", "delete"},
    ("batch", "cronjobs"): {"get", "list", "create", "update", "delete"},
    ("", "configmaps"): {"get", "create", "update", "delete"},
    ("batch", "jobs"): {"list", "watch"},
    ("", "pods"): {"list"},
    ("", "events"): {"create"},
}
# Cluster-wide mode adds kopf's CRD scan (cluster-scoped, so not part of a namespace's review).
OPERATOR_CLUSTER_USES: dict[tuple[str, str], set[str]] = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
}
# Spark's client-mode driver: its own pod, and the executor pods it starts, watches and deletes.
SPARK_K8S_USES: dict[tuple[str, str], set[str]] = {
    ("", "pods"): {"get", "list", "watch", "create", "delete", "deletecollection"},
}

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
# Just outside every account: other resources of the namespace, the sensitive subresources,
# RBAC itself (and its escalation verbs), and the objects of the other components.
OUTSIDE: list[tuple[str, str]] = [
    ("", "secrets"),
    ("", "serviceaccounts"),
    ("", "serviceaccounts/token"),
    ("", "pods/exec"),
    ("", "pods/attach"),
    ("", "pods/portforward"),
    ("", "pods/log"),
    ("", "pods/eviction"),
    ("", "pods/ephemeralcontainers"),
    ("", "persistentvolumeclaims"),
    ("", "endpoints"),
    ("", "resourcequotas"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("apps", "deployments/scale"),
    ("apps", "deployments/status"),
    ("batch", "cronjobs/status"),
    ("batch", "jobs/status"),
    ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "networkpolicies"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("events.k8s.io", "events"),
    ("coordination.k8s.io", "leases"),
    ("monitoring.coreos.com", "servicemonitors"),
]
RBAC_ESCALATION: list[tuple[str, str, str]] = [
    ("escalate", "roles", "rbac.authorization.k8s.io"),
    ("bind", "roles", "rbac.authorization.k8s.io"),
    ("bind", "clusterroles", "rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts", ""),
    ("impersonate", "users", ""),
]
CLUSTER_SCOPED: list[tuple[str, str]] = [
    ("", "namespaces"),
    ("", "nodes"),
    ("", "persistentvolumes"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
]
RBAC_KINDS = {
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


def grants(uses: dict[tuple[str, str], set[str]]) -> set[Grant]:
    """The table flattened to (group, resource, verb) (pure)."""
    return {(g, r, v) for (g, r), verbs in uses.items() for v in verbs}


def review_grants(review: Obj) -> set[Grant]:
    """A SelfSubjectRulesReview's resource rules flattened the same way (pure); "*" stays "*",
    so a wildcard shows up as a grant no table holds."""
    out: set[Grant] = set()
    for rule in review["status"].get("resourceRules") or []:
        if rule.get("resourceNames"):
            continue  # none of the chart's rules name objects; see the refusal table
        for g in rule.get("apiGroups") or [""]:
            for r in rule["resources"]:
                for v in rule["verbs"]:
                    out.add((g, r, v))
    return out


def refusal_table(uses: dict[tuple[str, str], set[str]]) -> list[Grant]:
    """Every (group, resource, verb) near the account's rights that it must not have (pure):
    the other verbs on its own resources, every verb on the resources of OUTSIDE and
    CLUSTER_SCOPED it does not use, and the RBAC escalation verbs."""
    out: list[Grant] = []
    for g, r in [*uses, *OUTSIDE, *CLUSTER_SCOPED]:
        out += [(g, r, v) for v in VERBS if v not in uses.get((g, r), set())]
    out += [(g, r, v) for v, r, g in RBAC_ESCALATION]
    return out


def resource_arg(group: str, resource: str) -> tuple[str, str | None]:
    """kubectl's spelling: ``deployments.apps``, the subresource apart (pure)."""
    name, _, sub = resource.partition("/")
    return (f"{name}.{group}" if group else name), (sub or None)


def can_i(kubectl: Kubectl, user: str, verb: str, group: str, resource: str, ns: str) -> bool:
    what, sub = resource_arg(group, resource)
    proc = kubectl(
        "auth",
        "can-i",
        verb,
        what,
        *([f"--subresource={sub}"] if sub else []),
        "-n",
        ns,
        f"--as={user}",
        check=False,
    )
    answer = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert answer in ("yes", "no"), proc.stderr
    return answer == "yes"


def json_documents(text: str) -> list[Obj]:
    """The JSON objects kubectl prints one after another for a created List (pure)."""
    decoder = json.JSONDecoder()
    out: list[Obj] = []
    pos = 0
    while text[pos:].strip():
        pos += len(text[pos:]) - len(text[pos:].lstrip())  # raw_decode refuses leading blanks
        doc, pos = decoder.raw_decode(text, pos)
        out.append(doc)
    return out


def can_i_all(
    kubectl: Kubectl, user: str, checks: Iterable[tuple[str, str, str, str]]
) -> dict[tuple[str, str, str, str], bool]:
    """(group, resource, verb, namespace) -> allowed, for many checks in one kubectl call: the
    SelfSubjectAccessReviews ``kubectl auth can-i --as`` creates, batched in a List (one
    process per check made the tables take minutes)."""
    keys = list(checks)
    items = []
    for g, r, v, n in keys:
        name, _, sub = r.partition("/")
        attrs = {"group": g, "resource": name, "verb": v, "namespace": n}
        if sub:
            attrs["subresource"] = sub
        items.append(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs},
            }
        )
    if not keys:
        return {}
    proc = _create_as(kubectl, user, {"apiVersion": "v1", "kind": "List", "items": items})
    answers = json_documents(proc.stdout)
    assert len(answers) == len(keys), proc.stdout[-500:]
    return {k: bool(a["status"].get("allowed")) for k, a in zip(keys, answers, strict=True)}


def rules_review(kubectl: Kubectl, user: str, ns: str) -> set[Grant]:
    """What the API server says ``user`` may do in ``ns`` (a SelfSubjectRulesReview made as it)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": ns},
    }
    return review_grants(json.loads(_create_as(kubectl, user, review).stdout))


def _create_as(kubectl: Kubectl, user: str, doc: dict[str, Any]) -> Any:
    """``kubectl create -f -`` of ``doc`` as ``user``, answer as JSON. No client-side validation:
    it would list CRDs, itself as ``user``."""
    return kubectl(
        "create", "--validate=false", "-f", "-", "-o", "json", f"--as={user}",
        input=json.dumps(doc),
    )  # fmt: skip


def no_api_accounts(chart: str, values: str | None) -> dict[str, str]:
    """Account -> kind of the workload of the same name that runs as it, for the components
    that call no API, from the values file (pure): not from the rendering, so an account or a
    workload gone missing fails."""
    given = yaml.safe_load((CHARTS / chart / values).read_text()) if values else {}
    kafka = given if chart == "kafka" else (given.get("kafka") or {})
    out = {KAFKA: "StatefulSet"}
    if kafka.get("metadataMode", "zookeeper") == "zookeeper":
        out[ZOOKEEPER] = "StatefulSet"
    if chart == UMBRELLA and (given.get("pushgateway") or {}).get("enabled", True):
        out[PUSHGATEWAY] = "Deployment"
    return out


def sa_user(ns: str, name: str) -> str:
    return f"system:serviceaccount:{ns}:{name}"


def rbac_objects(objs: Iterable[Obj]) -> list[Obj]:
    return [o for o in objs if o["kind"] in RBAC_KINDS]


def install_rbac(
    helm: Helm,
    kubectl: Kubectl,
    ns: str,
    values: list[str],
    sets: Iterable[str] = (),
    chart: str = UMBRELLA,
) -> list[Obj]:
    """Only the chart's identities (ServiceAccounts, Roles, bindings, admission policies) into
    ``ns``: what decides what its pods may do."""
    objs = rbac_objects(helm.template(chart, values=values, sets=list(sets), namespace=ns))
    kubectl.apply(yaml.safe_dump_all(objs), "-n", ns)
    # The account the other pods run as; no controller-manager here creates it.
    kubectl("create", "serviceaccount", DEFAULT, "-n", ns, check=False)
    return objs


@pytest.fixture(scope="module")
def baseline(kubectl: Kubectl) -> set[Grant]:
    """What any ServiceAccount may do with nothing bound to it (the self-reviews)."""
    ns = create_namespace(kubectl, unique_name("lp-baseline"))
    kubectl("create", "serviceaccount", "nobody", "-n", ns)
    return rules_review(kubectl, sa_user(ns, "nobody"), ns)


# -- the rights, exactly -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values", [None, *shipped_values("coinfeed")], ids=lambda v: v or "defaults"
)
def test_each_account_has_exactly_what_its_component_uses(
    helm: Helm, kubectl: Kubectl, baseline: set[Grant], values: str | None
) -> None:
    ns = create_namespace(kubectl, unique_name("lp-exact"))
    objs = install_rbac(helm, kubectl, ns, [values] if values else [])
    # From the values file, not from the rendered Role: a Role gone missing must fail here.
    k8s_mode = [values] == K8S_VALUES
    expected = {
        OPERATOR: grants(OPERATOR_USES),
        SPARK: grants(SPARK_K8S_USES) if k8s_mode else set(),
        DEFAULT: set(),
        **{sa: set() for sa in no_api_accounts(UMBRELLA, values)},
    }
    for sa, want in expected.items():
        have = rules_review(kubectl, sa_user(ns, sa), ns) - baseline
        assert have == want, (
            f"{sa}: more than it uses {sorted(have - want)}; less {sorted(want - have)}"
        )
    # Only these accounts exist besides the namespace's default.
    sas = {o["metadata"]["name"] for o in by_kind(objs, "ServiceAccount")}
    assert sas == {OPERATOR, SPARK, *no_api_accounts(UMBRELLA, values)}


# -- operations just outside, refused ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sa", "values", "uses"),
    [
        (OPERATOR, [], OPERATOR_USES),
        (SPARK, [], {}),
        (SPARK, K8S_VALUES, SPARK_K8S_USES),
        (DEFAULT, K8S_VALUES, {}),
    ],
    ids=["operator", "spark-local", "spark-k8s", "default"],
)
def test_operations_just_outside_are_refused(
    helm: Helm,
    kubectl: Kubectl,
    sa: str,
    values: list[str],
    uses: dict[tuple[str, str], set[str]],
) -> None:
    ns = create_namespace(kubectl, unique_name(f"lp-out-{sa}"))
    other = create_namespace(kubectl, unique_name("lp-other"))
    install_rbac(helm, kubectl, ns, values)
    user = sa_user(ns, sa)
    allowed = sorted(grants(uses))
    answers = can_i_all(
        kubectl,
        user,
        [
            *[(g, r, v, ns) for g, r, v in allowed],
            *[(g, r, v, ns) for g, r, v in refusal_table(uses)],
            *[(g, r, v, n) for n in (other, "default", "kube-system") for g, r, v in allowed],
        ],
    )
    missing = [(g, r, v) for g, r, v in allowed if not answers[(g, r, v, ns)]]
    assert not missing, f"{sa} may not do what its code does: {missing}"
    widened = [(g, r, v) for g, r, v in refusal_table(uses) if answers[(g, r, v, ns)]]
    assert not widened, f"{sa} may do more than its code does: {widened}"
    # Its own namespace only: nothing it uses is allowed elsewhere.
    elsewhere = [k for k, yes in answers.items() if yes and k[3] != ns]
    assert not elsewhere, f"{sa} reaches other namespaces: {elsewhere}"
    # The same answers from kubectl auth can-i itself, for the most telling ones.
    for verb, group, resource in [
        ("get", "", "secrets"),
        ("create", "", "pods/exec"),
        ("delete", "apps", "statefulsets"),
        ("escalate", "rbac.authorization.k8s.io", "roles"),
        ("bind", "rbac.authorization.k8s.io", "clusterroles"),
        ("list", "", "namespaces"),
    ]:
        assert not can_i(kubectl, user, verb, group, resource, ns), f"{verb} {resource}"
    for g, r, v in allowed[:3]:
        assert can_i(kubectl, user, v, g, r, ns), f"{v} {r}"


def test_cluster_wide_operator_adds_only_the_crd_scan(
    helm: Helm, kubectl: Kubectl, baseline: set[Grant]
) -> None:
    ns = create_namespace(kubectl, unique_name("lp-cw"))
    other = create_namespace(kubectl, unique_name("lp-cw-other"))
    name = unique_name("cf-op")  # the ClusterRole is cluster-scoped: one name per test run
    install_rbac(
        helm,
        kubectl,
        ns,
        [],
        [
            "operator.rbac.clusterWide=true",
            f"operator.fullnameOverride={name}",
            f"operator.serviceAccount.name={name}",
        ],
    )
    user = sa_user(ns, name)
    # In every namespace exactly the namespaced table (a ClusterRole applies to all of them) ...
    for n in (ns, other):
        have = rules_review(kubectl, user, n) - baseline
        want = grants(OPERATOR_USES) | grants(OPERATOR_CLUSTER_USES)
        assert have == want, f"{n}: more {sorted(have - want)}; less {sorted(want - have)}"
    # ... and cluster-scoped only the CRD scan: no namespaces, nodes, RBAC or admission objects.
    cluster = [(g, r, v, "") for g, r in CLUSTER_SCOPED for v in VERBS]
    answers = can_i_all(kubectl, user, [*cluster, *[(g, r, v, ns) for v, r, g in RBAC_ESCALATION]])
    have_cluster = {(g, r, v) for (g, r, v, _), yes in answers.items() if yes}
    assert have_cluster == grants(OPERATOR_CLUSTER_USES), sorted(have_cluster)
    assert can_i(kubectl, user, "watch", "apiextensions.k8s.io", "customresourcedefinitions", ns)
    assert not can_i(kubectl, user, "list", "", "namespaces", ns)


# -- real requests with each account's own token -------------------------------------------------


def _kafka_statefulset() -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "coinfeed-kafka"},
            "spec": {
                "serviceName": "coinfeed-kafka-headless",
                "selector": {"matchLabels": {"app": "kafka"}},
                "template": {
                    "metadata": {"labels": {"app": "kafka"}},
                    "spec": {"containers": [{"name": "k", "image": "registry.invalid/k:1"}]},
                },
            },
        }
    )


def _refused(proc: Any) -> bool:
    return bool(proc.returncode != 0 and "forbidden" in proc.stderr.lower())


@pytest.mark.parametrize(
    ("sa", "values"),
    [(OPERATOR, []), (SPARK, []), (SPARK, K8S_VALUES), (DEFAULT, [])],
    ids=["operator", "spark-local", "spark-k8s", "default"],
)
def test_real_requests_outside_are_refused_with_the_accounts_own_token(
    helm: Helm, kubectl: Kubectl, kube_apiserver: KubeAPIServer, sa: str, values: list[str]
) -> None:
    ns = create_namespace(kubectl, unique_name(f"lp-token-{sa}"))
    install_rbac(helm, kubectl, ns, values)
    kubectl.apply(_kafka_statefulset(), "-n", ns)
    kubectl("create", "secret", "generic", "kafka-users", "-n", ns, "--from-literal=p=s3cret")
    as_sa = kubectl.using(kube_apiserver.kubeconfig_for_service_account(ns, sa))
    # The token authenticates as the account: the refusals below are RBAC's, not a bad token.
    whoami = json.loads(as_sa("auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == sa_user(ns, sa)
    attempts = {
        "read a secret": ["get", "secret", "kafka-users", "-n", ns],
        "delete the Kafka StatefulSet": [
            "delete",
            "statefulset",
            "coinfeed-kafka",
            "-n",
            ns,
            "--wait=false",
        ],
        "list pods in kube-system": ["get", "pods", "-n", "kube-system"],
        "list namespaces": ["get", "namespaces"],
        "grant itself a Role": [
            "create",
            "rolebinding",
            "x",
            "-n",
            ns,
            "--clusterrole=admin",
            f"--serviceaccount={ns}:{sa}",
        ],
    }
    for what, argv in attempts.items():
        proc = as_sa(*argv, check=False)
        assert _refused(proc), f"{sa} could {what}: {proc.returncode} {proc.stdout}{proc.stderr}"
    # The objects are untouched.
    kubectl("get", "statefulset", "coinfeed-kafka", "-n", ns)
    assert (
        "rolebinding.rbac.authorization.k8s.io/x"
        not in kubectl("get", "rolebindings", "-n", ns, "-o", "name").stdout
    )
    # And what the component does works with the same token.
    for what, argv in uses_of(sa, values, ns):
        proc = as_sa(*argv, check=False)
        assert proc.returncode == 0, f"{sa} could not {what}: {proc.stderr}"


def uses_of(sa: str, values: list[str], ns: str) -> list[tuple[str, list[str]]]:
    """One real request the account's code makes, for the accounts that make any (pure)."""
    if sa == OPERATOR:
        return [
            ("list Deployments", ["get", "deployments", "-n", ns]),
            ("list pods", ["get", "pods", "-n", ns]),
        ]
    if sa == SPARK and values == K8S_VALUES:
        return [("list its executors", ["get", "pods", "-n", ns, "-l", "spark-role=executor"])]
    return []


def test_operator_token_cannot_patch_or_reach_a_producer_pod(
    helm: Helm, kubectl: Kubectl, kube_apiserver: KubeAPIServer
) -> None:
    """The verbs trimmed from the operator's own kinds stay refused on real objects: it replaces
    Deployments (update) but never patches them, lists pods but never reads one by name."""
    ns = create_namespace(kubectl, unique_name("lp-op-verbs"))
    install_rbac(helm, kubectl, ns, [])
    kubectl("create", "deployment", "feed-prices", "--image=registry.invalid/p:1", "-n", ns)
    kubectl("create", "configmap", "coinfeed-settings", "-n", ns)
    op = kubectl.using(kube_apiserver.kubeconfig_for_service_account(ns, OPERATOR))
    patch = op(
        "patch",
        "deployment",
        "feed-prices",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"metadata":{"labels":{"x":"y"}}}',
        check=False,
    )
    assert _refused(patch), patch.stderr
    assert _refused(op("get", "configmaps", "-n", ns, check=False))  # by name only
    assert op("get", "configmap", "coinfeed-settings", "-n", ns, check=False).returncode == 0
    dep = json.loads(op("get", "deployment", "feed-prices", "-n", ns, "-o", "json").stdout)
    dep["metadata"]["labels"]["replaced"] = "yes"
    op("replace", "-f", "-", input=json.dumps(dep))  # update: what kube_apply.ensure does


# -- no token where no API is called -------------------------------------------------------------


def _effective_automount(spec: Obj, accounts: dict[str, Obj]) -> bool:
    """Whether a pod gets a token: the pod's field wins, then its ServiceAccount's; both unset
    means mounted (Kubernetes' default), including for the namespace's default account (pure)."""
    if "automountServiceAccountToken" in spec:
        return bool(spec["automountServiceAccountToken"])
    sa = accounts.get(spec.get("serviceAccountName") or DEFAULT, {})
    return bool(sa.get("automountServiceAccountToken", True))


def _settings_data(objs: list[Obj]) -> dict[str, str]:
    """The operator's settings ConfigMap (its environment) in a rendering (pure)."""
    (cm,) = [c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"].endswith("-settings")]
    return dict(cm["data"])


def _operator_children(objs: list[Obj], ns: str) -> list[Obj]:
    """What the operator creates for a feed under the settings this release gives it: the
    producer Deployments, the shared CronJob, and (k8s mode) the executor pod template."""
    from coinfeed.operator.desired import desired_children, hourly_children
    from coinfeed.operator.settings import settings_from_env
    from coinfeed.operator.spec import parse_spec

    settings = settings_from_env(_settings_data(objs))
    # The sample feed with both producers (prices and tweets), as users write them.
    spec = parse_spec(yaml.safe_load((REPO / "manifests" / "coinfeed-btc.yaml").read_text()))
    assert spec.tweets.enabled
    out = desired_children("btc", ns, "uid-1", spec, settings)
    for child in hourly_children("btc", ns, "uid-1", spec, settings):
        if child["kind"] == "ConfigMap":  # the executor template, as a Pod
            out += [yaml.safe_load(v) for v in child["data"].values()]
        else:
            out.append(child)
    return out


def _api_callers(k8s_mode: bool) -> set[tuple[str, str]]:
    """(kind, name prefix) of the pods whose component calls the API: the operator, its
    uninstall hook (it scales the operator to 0 and releases the feeds), and the hourly job's pod
    when it is a Spark driver starting executor pods."""
    return {
        ("Deployment", OPERATOR),
        ("Job", f"{OPERATOR}-release-feeds"),
        *([("CronJob", "coinfeed-hourly")] if k8s_mode else []),
    }


@pytest.mark.parametrize(
    "values", [None, *shipped_values("coinfeed")], ids=lambda v: v or "defaults"
)
def test_only_pods_that_call_the_api_mount_a_token(helm: Helm, values: str | None) -> None:
    ns = "feeds"
    objs = helm.template("coinfeed", values=[values] if values else [], namespace=ns)
    # What makes the job pod a Spark driver: the master the operator is given.
    k8s_mode = _settings_data(objs)["COINFEED_OPERATOR_SPARK_MASTER"].startswith("k8s://")
    assert k8s_mode == ([values] == K8S_VALUES)
    accounts = {o["metadata"]["name"]: o for o in by_kind(objs, "ServiceAccount")}
    workloads = [o for o in [*objs, *_operator_children(objs, ns)] if pod_spec(o) is not None]
    callers = _api_callers(k8s_mode)
    kinds = {o["kind"] for o in workloads}
    # The matrix covers every kind of pod there is: chart workloads, test pods, the operator's.
    assert {"Deployment", "StatefulSet", "Pod", "CronJob"} <= kinds, kinds
    problems: list[str] = []
    for o in workloads:
        spec = pod_spec(o)
        assert spec is not None
        name = o["metadata"].get("name") or "executor-template"
        calls = any(o["kind"] == k and name.startswith(p) for k, p in callers)
        mounted = _effective_automount(spec, accounts)
        if mounted != calls:
            problems.append(f"{o['kind']}/{name}: token mounted={mounted}, calls the API={calls}")
        if calls and (spec.get("serviceAccountName") or DEFAULT) == DEFAULT:
            problems.append(f"{o['kind']}/{name}: calls the API as the namespace's default account")
    assert not problems, "\n".join(problems)
    # Accounts of components that call no API do not hand out tokens by default either.
    assert accounts[SPARK]["automountServiceAccountToken"] is False


@pytest.mark.parametrize("values", [None, *shipped_values("kafka")], ids=lambda v: v or "defaults")
def test_kafka_chart_alone_mounts_no_token_and_binds_nothing(
    helm: Helm, values: str | None
) -> None:
    objs = helm.template("kafka", values=[values] if values else [])
    # Its own accounts and nothing that grants them anything.
    assert {o["kind"] for o in rbac_objects(objs)} == {"ServiceAccount"}
    accounts = {o["metadata"]["name"]: o for o in by_kind(objs, "ServiceAccount")}
    assert set(accounts) == set(no_api_accounts("kafka", values))
    pods = [o for o in objs if pod_spec(o) is not None]
    assert pods
    mounted = [
        o["metadata"]["name"] for o in pods if _effective_automount(pod_spec(o) or {}, accounts)
    ]
    assert not mounted, mounted


# -- own accounts for the components that call no API ---------------------------------------------


NO_API_MATRIX = [(c, v) for c in ("kafka", UMBRELLA) for v in [None, *shipped_values(c)]]
# What a stolen token would be used for first.
TOKEN_ATTEMPTS: dict[str, list[str]] = {
    "list pods": ["get", "pods"],
    "list secrets": ["get", "secrets"],
    "list configmaps": ["get", "configmaps"],
    "list pods in kube-system": ["get", "pods", "-n", "kube-system"],
}


@pytest.mark.parametrize(
    ("chart", "values"), NO_API_MATRIX, ids=[f"{c}:{v or 'defaults'}" for c, v in NO_API_MATRIX]
)
def test_components_that_call_no_api_run_as_own_accounts_without_rights_or_token(
    helm: Helm,
    kubectl: Kubectl,
    kube_apiserver: KubeAPIServer,
    baseline: set[Grant],
    chart: str,
    values: str | None,
) -> None:
    """Kafka brokers, ZooKeeper and the Pushgateway run as their own accounts (never the
    namespace's default, which anything may be granted to), those accounts have no rights, a
    token issued for them is refused, and none is mounted."""
    ns = create_namespace(kubectl, unique_name(f"lp-own-{chart}"))
    given = [values] if values else []
    objs = helm.template(chart, values=given, namespace=ns)
    install_rbac(helm, kubectl, ns, given, chart=chart)
    accounts = {o["metadata"]["name"]: o for o in by_kind(objs, "ServiceAccount")}
    bound = {
        s["name"] for o in objs if o["kind"].endswith("Binding") for s in o.get("subjects", [])
    }
    for sa, kind in no_api_accounts(chart, values).items():
        assert sa in accounts, f"no ServiceAccount {sa} among {sorted(accounts)}"
        assert accounts[sa].get("automountServiceAccountToken") is False, sa
        assert sa not in bound, f"{sa} is bound to a role"
        # The rendered pods run as it, with no token.
        spec = pod_spec(find(objs, kind, sa)) or {}
        assert spec.get("serviceAccountName") == sa, (
            f"{kind}/{sa} runs as {spec.get('serviceAccountName')}"
        )
        assert spec.get("automountServiceAccountToken") is False, f"{kind}/{sa} mounts a token"
        # The API server agrees it may do nothing beyond what every account may ...
        user = sa_user(ns, sa)
        assert rules_review(kubectl, user, ns) - baseline == set(), sa
        cluster = [(g, r, v, "") for g, r in CLUSTER_SCOPED for v in VERBS]
        escalation = [(g, r, v, ns) for v, r, g in RBAC_ESCALATION]
        allowed = [k for k, yes in can_i_all(kubectl, user, [*cluster, *escalation]).items() if yes]
        assert not allowed, f"{sa} may {allowed}"
        # ... and a token it is issued (TokenRequest) authenticates as it and is refused.
        as_sa = kubectl.using(kube_apiserver.kubeconfig_for_service_account(ns, sa))
        whoami = json.loads(as_sa("auth", "whoami", "-o", "json").stdout)
        assert whoami["status"]["userInfo"]["username"] == user
        for what, argv in TOKEN_ATTEMPTS.items():
            proc = as_sa(*argv, *([] if "-n" in argv else ["-n", ns]), check=False)
            assert _refused(proc), f"{sa} could {what}: {proc.returncode} {proc.stderr}"
