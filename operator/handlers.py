"""Thin kopf handlers: each calls the reconcile (decide + do) and reports through status,
Events and metrics. Registered on an explicit registry so settings come from the command line.

Drift is checked by :class:`DriftLoop`, a plain thread, not a kopf timer: kopf puts a finalizer on
every object a timer serves, and a finalizer on every CoinFeed would leave namespaces stuck
whenever the operator is gone. The only finalizer is the one of ``deletionPolicy: Delete``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kopf

from coinfeed.operator import claims
from coinfeed.operator import conditions as cond
from coinfeed.operator.desired import FEED_LABEL, MANAGED_BY, desired_topics
from coinfeed.operator.kafka_apply import KafkaTopics, KafkaUnavailableError
from coinfeed.operator.kube_apply import GROUP, PLURAL, VERSION, Kube
from coinfeed.operator.opmetrics import OperatorMetrics
from coinfeed.operator.reconcile import reconcile_feed, reconcile_hourly, status_from_children
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
    namespaces: Sequence[str] | None = None  # watched namespaces (None: all)
    locks: defaultdict[str, threading.Lock] = field(
        default_factory=lambda: defaultdict(threading.Lock)
    )
    # Shared hourly CronJob passes per namespace: requested (tickets) and started (the newest
    # ticket a pass has covered), so a burst of feed events costs a few passes, not one each.
    hourly_requested: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    hourly_started: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    hourly_guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, namespace: str, name: str) -> threading.Lock:
        # One reconcile per feed at a time (kopf handlers and the drift loop run in threads).
        return self.locks[f"{namespace}/{name}"]

    def all_feeds(self) -> list[dict[str, Any]]:
        """Every CoinFeed the operator watches: who else follows a coin (``claims``)."""
        feeds: list[dict[str, Any]] = []
        for ns in list(self.namespaces) if self.namespaces else [None]:
            feeds += self.kube.list_feeds(ns)
        return feeds


def _is_ready(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == cond.READY and c.get("status") == "True"
        for c in status.get("conditions", [])
    )


def reconcile_namespace_hourly(ctx: Context, namespace: str) -> None:
    """Bring the namespace's shared hourly CronJobs in line with its feeds (one at a time per
    namespace, from a fresh list: a stale one could drop a feed that has just joined).

    A pass that started after this call was made lists every feed this call knows of: when one
    has completed by the time the lock is ours, there is nothing left to do."""
    with ctx.hourly_guard:
        ctx.hourly_requested[namespace] += 1
        ticket = ctx.hourly_requested[namespace]
    with ctx.lock(namespace, ""):  # "" is no feed's name
        with ctx.hourly_guard:
            if ctx.hourly_started[namespace] >= ticket:
                return
            ctx.hourly_started[namespace] = ctx.hourly_requested[namespace]
        try:
            feeds = ctx.all_feeds()
        except Exception:
            log.warning("listing CoinFeeds failed; the drift loop will retry", exc_info=True)
            return
        outcome = reconcile_hourly(namespace, feeds, ctx.settings, ctx.kube)
    by_name = {
        f["metadata"]["name"]: f for f in feeds if f["metadata"].get("namespace") == namespace
    }
    for feed_name, ev in outcome.events:
        if feed_name in by_name:
            ctx.kube.post_event(by_name[feed_name], ev.type, ev.reason, ev.message)
    for error in outcome.errors:
        log.warning("hourly CronJobs in %s: %s", namespace, error)


def reconcile_body(
    ctx: Context,
    body: Mapping[str, Any],
    feeds: Sequence[Mapping[str, Any]] | None = None,
    hourly: bool = True,
) -> dict[str, Any]:
    """Reconcile one CoinFeed and write the status fields that changed; returns them.

    ``feeds``: every watched CoinFeed, if the caller has just listed them (else listed here), to
    find an older feed that already follows the same coin. ``hourly``: first bring the
    namespace's shared hourly CronJobs in line (the drift loop does that once per namespace).

    The status is written here, under the feed's lock, rather than through kopf's deferred patch:
    a producer turning available meanwhile is then always seen by :func:`refresh_status`.
    """
    meta = body["metadata"]
    if hourly:
        reconcile_namespace_hourly(ctx, meta["namespace"])
    owner = claims.coin_owner(body, ctx.all_feeds() if feeds is None else feeds)
    if owner is not None and feeds is not None:
        # A conflict removes this feed's children: decide it on a fresh list, not the drift
        # round's (the owner may have been deleted since).
        owner = claims.coin_owner(body, ctx.all_feeds())
    with ctx.lock(meta["namespace"], meta["name"]):
        started = time.perf_counter()
        old = dict(body.get("status") or {})
        outcome = reconcile_feed(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=int(meta.get("generation", 0)),
            spec=body.get("spec") or {},
            old_status=old,
            settings=ctx.settings,
            kafka=ctx.kafka,
            kube=ctx.kube,
            coin_owner=claims.feed_key(owner) if owner is not None else None,
        )
        for ev in outcome.events:
            ctx.kube.post_event(body, ev.type, ev.reason, ev.message)
        ctx.metrics.observe(
            f"{meta['namespace']}/{meta['name']}",
            outcome.result,
            outcome.error_reason,
            time.perf_counter() - started,
            _is_ready(outcome.status),
        )
        changed = {k: v for k, v in outcome.status.items() if old.get(k) != v}
        if changed:
            ctx.kube.patch_feed_status(meta["namespace"], meta["name"], changed)
        return changed


def refresh_status(ctx: Context, namespace: str, feed_name: str) -> None:
    """A producer's availability changed or an hourly Job finished: recompute the feed's
    conditions, ``lastRun`` and ``lastHour`` from its children (no Kafka, no writes to children)."""
    with ctx.lock(namespace, feed_name):
        feed = ctx.kube.get_feed(namespace, feed_name)
        if feed is None or feed.get("metadata", {}).get("deletionTimestamp"):
            return
        old = feed.get("status") or {}
        if not old.get("conditions"):
            return  # the feed's own reconcile has not run yet; it computes everything
        if any(
            c.get("type") == cond.CONFLICT and c.get("status") == "True" for c in old["conditions"]
        ):
            return  # it owns nothing; its reconcile keeps its status
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
            old_status=old,
            uid=str(feed["metadata"].get("uid", "")),
        )
        status.pop("observedGeneration")  # unchanged: the spec was not reconciled here
        changed = {k: v for k, v in status.items() if old.get(k) != v}
        if not changed:
            return
        ctx.kube.patch_feed_status(namespace, feed_name, changed)
        ctx.metrics.set_ready(f"{namespace}/{feed_name}", _is_ready(status))
        for type_, reason, message in cond.transition_events(
            old["conditions"], status["conditions"]
        ):
            ctx.kube.post_event(feed, type_, reason, message)


def reconcile_coin(ctx: Context, coin: str) -> None:
    """Reconcile every live feed of ``coin`` (after its owner is gone, the next one takes over)."""
    try:
        feeds = ctx.all_feeds()
    except Exception:
        log.warning("listing CoinFeeds failed; the drift loop will retry", exc_info=True)
        return
    for feed in feeds:
        if claims.coin_of(feed) == coin and not feed["metadata"].get("deletionTimestamp"):
            try:
                reconcile_body(ctx, feed, feeds)
            except Exception:
                log.warning("reconcile of %s failed", claims.feed_key(feed), exc_info=True)


def finalizers_to_release(
    feeds: Sequence[Mapping[str, Any]],
    terminating: Callable[[str], bool],
    own_namespace: str | None = None,
    leaving: bool = False,
) -> list[tuple[str, str, list[str]]]:
    """(namespace, name, remaining finalizers) of every feed an operator that stops must let go.

    - A feed being deleted: it would wait for an operator that may never come back.
    - Every feed holding the finalizer in a namespace being deleted: since Kubernetes 1.34 the
      namespace controller deletes pods first (ordered namespace deletion), so an operator that
      lives there stops *before* its feeds are marked for deletion, and nobody would ever release
      them: the namespace would stay Terminating for good.
    - Every feed, when the operator's ``own_namespace`` is being deleted, or when it is
      ``leaving`` for good (uninstalled): no operator comes back.
    Topics are kept in all cases. ``terminating`` is asked once per namespace.
    """
    out = []
    asked: dict[str, bool] = {}
    leaving = leaving or (own_namespace is not None and terminating(own_namespace))
    if own_namespace is not None:
        asked[own_namespace] = leaving
    for feed in feeds:
        meta = feed["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            continue
        ns = meta["namespace"]
        if not meta.get("deletionTimestamp") and not leaving:
            if ns not in asked:
                asked[ns] = terminating(ns)
            if not asked[ns]:
                continue
        out.append((ns, meta["name"], [f for f in finalizers if f != FINALIZER]))
    return out


def release_feeds(
    kube: Kube,
    namespaces: Sequence[str] | None,
    terminating: Callable[[str], bool],
    why: str,
    own_namespace: str | None = None,
    leaving: bool = False,
) -> list[str]:
    """Let go of the CoinFeeds :func:`finalizers_to_release` names in ``namespaces`` (None: all),
    topics kept, each with a ``TopicsKept`` Event saying ``why``. Best effort: what fails is
    logged. Returns the feeds released, as ``namespace/name``."""
    released = []
    for ns in list(namespaces) if namespaces else [None]:
        try:
            feeds = kube.list_feeds(ns)
        except Exception:
            log.warning("listing CoinFeeds in %s failed", ns or "all namespaces", exc_info=True)
            continue
        by_key = {(f["metadata"]["namespace"], f["metadata"]["name"]): f for f in feeds}
        plan = finalizers_to_release(feeds, terminating, own_namespace, leaving)
        for feed_ns, name, remaining in plan:
            try:
                kube.set_feed_finalizers(feed_ns, name, remaining)
            except Exception:
                log.warning("releasing %s/%s failed", feed_ns, name, exc_info=True)
                continue
            # No Event into a namespace being deleted: the API server lets nothing new in.
            if not terminating(feed_ns):
                kube.post_event(by_key[(feed_ns, name)], "Warning", "TopicsKept", why)
            released.append(f"{feed_ns}/{name}")
    return released


def release_finalizers(
    ctx: Context, namespaces: Sequence[str] | None, own_namespace: str | None = None
) -> list[str]:
    """On shutdown: let go of the CoinFeeds :func:`finalizers_to_release` names, topics kept."""
    return release_feeds(
        ctx.kube,
        namespaces,
        namespace_probe(ctx.kube),
        "operator stopping before the topics were deleted; they are kept",
        own_namespace,
    )


def namespace_probe(kube: Kube) -> Callable[[str], bool]:
    """Whether a namespace is being deleted, probed once per namespace (False when unsure)."""
    known: dict[str, bool] = {}

    def ask(namespace: str) -> bool:
        if namespace not in known:
            known[namespace] = _probe(namespace)
        return known[namespace]

    def _probe(namespace: str) -> bool:
        try:
            answer = bool(kube.namespace_terminating(namespace))
            log.info("namespace %s %s", namespace, "terminating" if answer else "lives")
            return answer
        except Exception:
            log.warning("could not tell whether %s is terminating", namespace, exc_info=True)
            return False

    return ask


class DriftLoop:
    """Every ``interval`` seconds, reconcile every CoinFeed in the watched namespaces."""

    def __init__(self, ctx: Context, namespaces: Sequence[str] | None) -> None:
        self.ctx = ctx
        self.namespaces: Sequence[str | None] = list(namespaces) if namespaces else [None]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drift", daemon=True)

    def start(self) -> DriftLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def run_once(self) -> None:
        feeds: list[dict[str, Any]] = []
        for ns in self.namespaces:
            try:
                feeds += self.ctx.kube.list_feeds(ns)
            except Exception:
                log.warning(
                    "drift check: listing CoinFeeds in %s failed",
                    ns or "all namespaces",
                    exc_info=True,
                )
                return  # without every feed, coin ownership cannot be decided
        # The shared hourly CronJobs once per namespace (also where no feed is left).
        namespaces = {str(f["metadata"]["namespace"]) for f in feeds}
        namespaces |= {ns for ns in self.namespaces if ns is not None}
        for ns in sorted(namespaces):
            if self._stop.is_set():
                return
            try:
                reconcile_namespace_hourly(self.ctx, ns)
            except Exception:
                log.warning("drift check of hourly CronJobs in %s failed", ns, exc_info=True)
        for feed in feeds:
            if self._stop.is_set():
                return
            meta = feed["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            try:
                reconcile_body(self.ctx, feed, feeds, hourly=False)
            except Exception:
                log.warning(
                    "drift check of %s/%s failed",
                    meta["namespace"],
                    meta["name"],
                    exc_info=True,
                )

    def _run(self) -> None:
        while not self._stop.wait(self.ctx.settings.drift_interval_seconds):
            self.run_once()


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    def reconcile(body: kopf.Body, **_: Any) -> None:
        reconcile_body(ctx, body)

    kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")(reconcile)
    kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")(reconcile)
    kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="reconcile", field="spec")(
        reconcile
    )

    def delete_topics(body: kopf.Body, **_: Any) -> None:
        try:
            names = [t.name for t in desired_topics(body.get("spec") or {})]
        except SpecError as exc:
            ctx.kube.post_event(
                body, "Warning", "TopicsKept", f"spec unreadable, topics kept: {exc}"
            )
            return
        try:
            owner = claims.coin_owner(body, ctx.all_feeds())
        except Exception as exc:
            raise kopf.TemporaryError(f"cannot list CoinFeeds: {exc}", delay=5) from exc
        if owner is not None:
            # Never delete the topics of the feed that owns the coin.
            ctx.kube.post_event(
                body,
                "Normal",
                "TopicsKept",
                f"topics {', '.join(names)} belong to CoinFeed {claims.feed_key(owner)}: kept",
            )
            return
        try:
            deleted = ctx.kafka.delete(names)
        except KafkaUnavailableError as exc:
            # Retried until the handler's timeout; then kopf gives up and releases the finalizer,
            # so the CoinFeed (and its namespace) never stays stuck behind a dead Kafka.
            ctx.kube.post_event(body, "Warning", "TopicDeletionPending", str(exc))
            raise kopf.TemporaryError(f"cannot delete topics yet: {exc}", delay=5) from exc
        ctx.kube.post_event(
            body,
            "Normal",
            "TopicsDeleted",
            f"deleted topics {', '.join(deleted) or '(none existed)'}",
        )
        ctx.metrics.forget(f"{body['metadata']['namespace']}/{body['metadata']['name']}")

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

    def feed_event(event: kopf.RawEvent, name: str | None, namespace: str | None, **_: Any) -> None:
        if event.get("type") == "DELETED" and name and namespace:
            ctx.metrics.forget(f"{namespace}/{name}")
            # Its coin leaves its shared hourly CronJob (deleted with the group's last feed).
            reconcile_namespace_hourly(ctx, namespace)
            # A feed waiting for this one's coin takes over now rather than at the next drift round.
            coin = claims.coin_of(event.get("object") or {})
            if coin:
                reconcile_coin(ctx, coin)

    kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="forget")(feed_event)

    def deployment_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
        feed_name = (body.get("metadata", {}).get("labels") or {}).get(FEED_LABEL)
        if feed_name and namespace:
            refresh_status(ctx, namespace, feed_name)

    kopf.on.event(
        "apps",
        "v1",
        "deployments",
        registry=registry,
        id="producer-status",
        labels={"app.kubernetes.io/managed-by": MANAGED_BY},
    )(deployment_changed)

    def job_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
        # Only a finished Job changes the feeds' last run.
        finished = any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in (body.get("status") or {}).get("conditions") or []
        )
        if not finished or not namespace:
            return
        for feed_name in _feeds_of_job(ctx, namespace, body):
            refresh_status(ctx, namespace, feed_name)

    # The hourly CronJobs' Jobs carry their jobTemplate labels (managed-by, component, ...).
    kopf.on.event(
        "batch",
        "v1",
        "jobs",
        registry=registry,
        id="hourly-run",
        labels={
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "app.kubernetes.io/component": "hourly",
        },
    )(job_changed)


def _feeds_of_job(ctx: Context, namespace: str, job: Mapping[str, Any]) -> list[str]:
    """The feeds a finished hourly Job ran for: the owners of its shared CronJob (the Job's own
    labels name the CronJob, not the feeds: it serves many)."""
    meta = job.get("metadata") or {}
    cronjobs = [r["name"] for r in meta.get("ownerReferences") or [] if r.get("kind") == "CronJob"]
    out: list[str] = []
    for cname in cronjobs:
        try:
            cron = ctx.kube.get("CronJob", namespace, cname)
        except Exception:
            log.warning("reading CronJob %s/%s failed", namespace, cname, exc_info=True)
            continue
        refs = ((cron or {}).get("metadata") or {}).get("ownerReferences") or []
        out += [r["name"] for r in refs if r.get("kind") == "CoinFeed"]
    return out
