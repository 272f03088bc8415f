"""Thin kopf handlers: each calls the reconcile (decide + do) and reports through status,
Events and metrics. Registered on an explicit registry so settings (timer interval, delete
timeout) come from the command line rather than import time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf

from coinfeed.operator import conditions as cond
from coinfeed.operator.desired import FEED_LABEL, MANAGED_BY, desired_topics
from coinfeed.operator.kafka_apply import KafkaTopics, KafkaUnavailableError
from coinfeed.operator.kube_apply import GROUP, PLURAL, VERSION, Kube
from coinfeed.operator.opmetrics import OperatorMetrics
from coinfeed.operator.reconcile import Outcome, reconcile_feed, status_from_children
from coinfeed.operator.settings import OperatorSettings
from coinfeed.operator.spec import SpecError, parse_spec

log = logging.getLogger(__name__)
FINALIZER = "coinfeed.io/delete-topics"


@dataclass
class Context:
    settings: OperatorSettings
    kafka: KafkaTopics
    kube: Kube
    metrics: OperatorMetrics
    delete_timeout_seconds: float = 120.0


def _post(body: Mapping[str, Any], outcome: Outcome) -> None:
    for ev in outcome.events:
        if ev.type == "Warning":
            kopf.warn(_as_body(body), reason=ev.reason, message=ev.message[:1000])
        else:
            kopf.info(_as_body(body), reason=ev.reason, message=ev.message[:1000])


def _as_body(obj: Mapping[str, Any]) -> kopf.Body:
    # kopf's event poster only reads apiVersion, kind and metadata from the object.
    return cast(kopf.Body, obj)


def _is_ready(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == cond.READY and c.get("status") == "True"
        for c in status.get("conditions", [])
    )


def _run(ctx: Context, body: Mapping[str, Any], patch: kopf.Patch) -> None:
    meta = body["metadata"]
    started = time.perf_counter()
    outcome = reconcile_feed(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        generation=int(meta.get("generation", 0)),
        spec=body.get("spec") or {},
        old_status=body.get("status") or {},
        settings=ctx.settings,
        kafka=ctx.kafka,
        kube=ctx.kube,
    )
    old = body.get("status") or {}
    for key, value in outcome.status.items():
        if old.get(key) != value:  # an unchanged status is not rewritten
            patch.status[key] = value
    _post(body, outcome)
    ctx.metrics.observe(
        f"{meta['namespace']}/{meta['name']}",
        outcome.result,
        outcome.error_reason,
        time.perf_counter() - started,
        _is_ready(outcome.status),
    )


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    def reconcile(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        _run(ctx, body, patch)

    kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")(reconcile)
    kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")(reconcile)
    kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="reconcile", field="spec")(
        reconcile
    )

    def drift(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        if body.get("metadata", {}).get("deletionTimestamp"):
            return
        _run(ctx, body, patch)

    kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        id="drift",
        interval=ctx.settings.drift_interval_seconds,
        initial_delay=ctx.settings.drift_interval_seconds,
    )(drift)

    def delete_topics(body: kopf.Body, **_: Any) -> None:
        try:
            names = [t.name for t in desired_topics(body.get("spec") or {})]
        except SpecError as exc:
            kopf.warn(body, reason="TopicsKept", message=f"spec unreadable, topics kept: {exc}")
            return
        try:
            deleted = ctx.kafka.delete(names)
        except KafkaUnavailableError as exc:
            # Retried until the handler's timeout; then kopf gives up and releases the finalizer,
            # so the CoinFeed (and its namespace) never stays stuck behind a dead Kafka.
            raise kopf.TemporaryError(f"cannot delete topics yet: {exc}", delay=5) from exc
        kopf.info(
            body,
            reason="TopicsDeleted",
            message=f"deleted topics {', '.join(deleted) or '(none existed)'}",
        )

    def _wants_delete(spec: kopf.Spec, **_: Any) -> bool:
        return spec.get("deletionPolicy") == "Delete"

    kopf.on.delete(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        id="delete-topics",
        when=_wants_delete,
        timeout=ctx.delete_timeout_seconds,
    )(delete_topics)

    def forget(name: str, namespace: str, **_: Any) -> None:
        ctx.metrics.forget(f"{namespace}/{name}")

    kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="forget")(
        lambda event, name, namespace, **kw: (
            forget(name, namespace) if event.get("type") == "DELETED" else None
        )
    )

    def deployment_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
        """A producer's availability changed: refresh ProducersReady and Ready of its feed."""
        feed_name = (body.get("metadata", {}).get("labels") or {}).get(FEED_LABEL)
        if not feed_name or not namespace:
            return
        feed = ctx.kube.get_feed(namespace, feed_name)
        if feed is None or feed.get("metadata", {}).get("deletionTimestamp"):
            return
        old = feed.get("status") or {}
        if not old.get("conditions"):
            return  # the feed's own reconcile has not run yet; it will compute everything
        try:
            spec = parse_spec(feed.get("spec") or {})
        except SpecError:
            return
        status = status_from_children(
            spec,
            feed_name,
            namespace,
            ctx.kube,
            None,
            int(old.get("observedGeneration", 0)),
            old["conditions"],
        )
        if status["conditions"] != old["conditions"]:
            ctx.kube.patch_feed_status(namespace, feed_name, {"conditions": status["conditions"]})
            ctx.metrics.set_ready(f"{namespace}/{feed_name}", _is_ready(status))
            for c in cond.transitions(old["conditions"], status["conditions"]):
                if c["type"] == cond.READY and c["status"] == "True":
                    kopf.info(_as_body(feed), reason="Ready", message="feed is ready")
                elif c["status"] != "True":
                    kopf.warn(
                        _as_body(feed), reason=c["reason"], message=f"{c['type']}: {c['message']}"
                    )

    kopf.on.event(
        "apps",
        "v1",
        "deployments",
        registry=registry,
        id="producer-status",
        labels={"app.kubernetes.io/managed-by": MANAGED_BY},
    )(deployment_changed)
