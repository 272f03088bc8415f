"""Do (Kubernetes): create missing children, replace drifted ones, delete unwanted ones.

Objects travel as plain dicts (``_preload_content=False``): the same shape the pure builders
produce and the drift check compares.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from coinfeed.operator.drift import spec_drift

log = logging.getLogger(__name__)

Outcome = Literal["created", "updated", "unchanged"]
GROUP = "coinfeed.io"
VERSION = "v1alpha1"
PLURAL = "coinfeeds"


def _body(resp: Any) -> dict[str, Any]:
    data = resp.data if hasattr(resp, "data") else resp.read()
    parsed: dict[str, Any] = json.loads(data)
    return parsed


def _items(list_call: Callable[..., Any], namespace: str, selector: str) -> list[dict[str, Any]]:
    """The objects one namespaced list call with a label selector returns, as plain dicts."""
    items: list[dict[str, Any]] = _body(
        list_call(namespace, label_selector=selector, _preload_content=False)
    ).get("items", [])
    return items


class Kube:
    """Thin wrapper over the kubernetes client for the child kinds and the CoinFeed status."""

    def __init__(self, api_client: Any = None) -> None:
        from kubernetes import client

        self.api_client = api_client or client.ApiClient()
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    def _ops(
        self, kind: str
    ) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
        """(read, create, replace, delete) for a child kind."""
        apis: dict[str, tuple[Any, str]] = {
            "Deployment": (self.apps, "deployment"),
            "Service": (self.core, "service"),
            "ConfigMap": (self.core, "config_map"),
            "CronJob": (self.batch, "cron_job"),
        }
        if kind not in apis:
            raise ValueError(f"unsupported child kind {kind!r}")
        api, noun = apis[kind]
        verbs = ("read", "create", "replace", "delete")
        read, create, replace, delete = (getattr(api, f"{v}_namespaced_{noun}") for v in verbs)
        return read, create, replace, delete

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        read = self._ops(kind)[0]
        try:
            return _body(read(name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def ensure(self, desired: Mapping[str, Any]) -> tuple[Outcome, list[str]]:
        """Create ``desired`` if missing, replace it if it drifted; returns what happened and why."""
        from kubernetes.client.exceptions import ApiException

        kind = str(desired["kind"])
        meta = desired["metadata"]
        _, create, replace, _ = self._ops(kind)
        actual = self.get(kind, meta["namespace"], meta["name"])
        if actual is None:
            try:
                create(meta["namespace"], dict(desired), _preload_content=False)
                return "created", []
            except ApiException as exc:
                if exc.status != 409:
                    raise
                actual = self.get(kind, meta["namespace"], meta["name"])  # created meanwhile
                if actual is None:
                    raise
        drift = spec_drift(desired, actual)
        if not drift:
            return "unchanged", []
        body = json.loads(json.dumps(desired))
        body["metadata"]["resourceVersion"] = actual["metadata"]["resourceVersion"]
        # Keep annotations others added (e.g. kubectl's); the operator owns spec and labels.
        if actual["metadata"].get("annotations"):
            body["metadata"]["annotations"] = actual["metadata"]["annotations"]
        if kind == "Service":  # immutable, allocated by the API server
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if key in actual.get("spec", {}):
                    body["spec"][key] = actual["spec"][key]
        try:
            replace(meta["name"], meta["namespace"], body, _preload_content=False)
        except ApiException as exc:
            if exc.status == 409:  # changed meanwhile: the next round compares again
                return "unchanged", []
            raise
        return "updated", drift

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        delete = self._ops(kind)[3]
        try:
            delete(name, namespace, propagation_policy="Background", _preload_content=False)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def list_children(self, kind: str, namespace: str, feed: str) -> list[dict[str, Any]]:
        from coinfeed.operator.desired import FEED_LABEL

        if kind != "Deployment":
            raise ValueError("only Deployments are listed")
        return _items(self.apps.list_namespaced_deployment, namespace, f"{FEED_LABEL}={feed}")

    def list_hourly_cronjobs(self, namespace: str) -> list[dict[str, Any]]:
        """The operator's hourly CronJobs: shared ones and per-feed ones of earlier versions."""
        from coinfeed.operator.desired import MANAGED_BY

        selector = f"app.kubernetes.io/managed-by={MANAGED_BY},app.kubernetes.io/component=hourly"
        return _items(self.batch.list_namespaced_cron_job, namespace, selector)

    def list_jobs(self, namespace: str, cronjob: str) -> list[dict[str, Any]]:
        """The Jobs of one shared hourly CronJob (they carry its jobTemplate labels)."""
        from coinfeed.operator.groups import HOURLY_JOB_LABEL

        selector = f"{HOURLY_JOB_LABEL}={cronjob},app.kubernetes.io/component=hourly"
        return _items(self.batch.list_namespaced_job, namespace, selector)

    def list_producer_pods(self, namespace: str, feed: str) -> list[dict[str, Any]]:
        """The feed's producer pods (their termination messages say why a producer stopped)."""
        from coinfeed.operator.desired import FEED_LABEL

        selector = f"{FEED_LABEL}={feed},app.kubernetes.io/name=coinfeed-producer"
        return _items(self.core.list_namespaced_pod, namespace, selector)

    def list_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        """The pods one Job started (their termination messages hold the job's summary)."""
        from coinfeed.operator.lastrun import JOB_NAME_LABEL

        return _items(self.core.list_namespaced_pod, namespace, f"{JOB_NAME_LABEL}={job}")

    def scale_deployment_to_zero(self, namespace: str, name: str) -> str:
        """Scale a Deployment to 0 replicas; returns its pod selector (``k=v,...``).

        Read and replace: the operator's Role has get/update on Deployments (drift repair), and
        no patch."""
        dep = _body(self.apps.read_namespaced_deployment(name, namespace, _preload_content=False))
        dep["spec"]["replicas"] = 0
        self.apps.replace_namespaced_deployment(name, namespace, dep, _preload_content=False)
        labels = dep["spec"]["selector"].get("matchLabels", {})
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def count_pods(self, namespace: str, selector: str) -> int:
        return len(_items(self.core.list_namespaced_pod, namespace, selector))

    def get_feed(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return _body(
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _preload_content=False
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def post_event(self, feed: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Best effort: a lost Event must never fail a reconcile."""
        from coinfeed.operator.conditions import now_iso

        try:
            body = event_body(feed, type_, reason, message, now_iso())
            self.core.create_namespaced_event(
                feed["metadata"]["namespace"], body, _preload_content=False
            )
        except Exception:
            log.warning("could not post event %s: %s", reason, message, exc_info=True)

    def list_feeds(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is None:
            resp = self.custom.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, _preload_content=False
            )
        else:
            resp = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, _preload_content=False
            )
        items: list[dict[str, Any]] = _body(resp).get("items", [])
        return items

    def namespace_terminating(self, namespace: str) -> bool:
        """Whether ``namespace`` is being deleted, asked without any right on Namespaces: the API
        server refuses new content in a terminating namespace (cause ``NamespaceTerminating``),
        and a server-side dry run persists nothing. A ConfigMap, which the operator may create
        anyway (executor templates); not an Event, which is let in even while terminating."""
        from kubernetes.client.exceptions import ApiException

        probe = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"generateName": "coinfeed-operator-probe-", "namespace": namespace},
        }
        try:
            # Preloaded: only then does the client raise on an error status.
            self.core.create_namespaced_config_map(namespace, probe, dry_run="All")
        except ApiException as e:
            return e.status == 403 and namespace_terminating_refusal(e.body)
        return False

    def set_feed_finalizers(self, namespace: str, name: str, finalizers: list[str]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"metadata": {"finalizers": finalizers or None}},
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )

    def patch_feed_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": dict(status)},
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )


def namespace_terminating_refusal(body: str | bytes | None) -> bool:
    """Whether an API error body is the refusal of new content in a terminating namespace."""
    try:
        status = json.loads(body or b"{}")
    except ValueError:
        return False
    causes = (status.get("details") or {}).get("causes") or []
    # metav1.StatusCause's type travels as "reason" in JSON.
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


def event_body(
    feed: Mapping[str, Any], type_: str, reason: str, message: str, now: str
) -> dict[str, Any]:
    """A core/v1 Event about ``feed`` (pure)."""
    meta = feed["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CoinFeed",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "coinfeed-operator"},
        "reportingComponent": "coinfeed-operator",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
