"""One reconcile of one CoinFeed: plan with the pure builders, apply through the thin layers,
and compute the status that tells the truth about what exists.

Never raises for Kafka or spec problems: they become conditions (and Events), so a broken
feed does not crash-loop the handler; the drift timer retries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from coinfeed.operator import conditions as cond
from coinfeed.operator import lastrun
from coinfeed.operator.desired import (
    FEED_LABEL,
    DesiredTopic,
    all_children,
    child_name,
    desired_children,
    desired_topics,
    executor_configmap_name,
    group_children,
    legacy_hourly_children,
    spark_on_kubernetes,
    unwanted_children,
)
from coinfeed.operator.groups import GROUP_LABEL, cronjob_of, plan_groups
from coinfeed.operator.kafka_apply import KafkaUnavailableError, Observation
from coinfeed.operator.settings import OperatorSettings
from coinfeed.operator.spec import FeedSpec, SpecError, parse_spec
from coinfeed.operator.topicplan import TopicPlan, topic_in_sync

log = logging.getLogger(__name__)

Result = Literal["ok", "error", "not_supported"]


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    result: Result = "ok"
    error_reason: str = ""


class TopicApplier(Protocol):
    def reconcile(self, desired: Sequence[DesiredTopic]) -> tuple[TopicPlan, Observation]: ...


class ChildApplier(Protocol):
    def ensure(self, desired: Mapping[str, Any]) -> tuple[str, list[str]]: ...
    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...
    def delete(self, kind: str, namespace: str, name: str) -> bool: ...
    def list_hourly_cronjobs(self, namespace: str) -> list[dict[str, Any]]: ...
    def list_producer_pods(self, namespace: str, feed: str) -> list[dict[str, Any]]: ...
    def list_jobs(self, namespace: str, cronjob: str) -> list[dict[str, Any]]: ...
    def list_pods(self, namespace: str, job: str) -> list[dict[str, Any]]: ...


def topics_condition(
    desired: Sequence[DesiredTopic], plan: TopicPlan | None, obs: Observation | None, error: str
) -> tuple[cond.Condition, list[dict[str, Any]], str]:
    """TopicsReady, ``status.topics`` and ``status.topicSummary`` (pure)."""
    if obs is None:
        return (
            cond.Condition(cond.TOPICS_READY, False, cond.KAFKA_UNAVAILABLE, error),
            [{"name": t.name} for t in desired],
            f"?/{len(desired)}",
        )
    rows, in_sync = [], 0
    for t in desired:
        have = obs.topics.get(t.name)
        ok = topic_in_sync(t, have)
        in_sync += ok
        row: dict[str, Any] = {"name": t.name, "ready": ok}
        if have is not None:
            row.update(partitions=have.partitions, replicationFactor=have.replication_factor)
        rows.append(row)
    summary = f"{in_sync}/{len(desired)}"
    if plan is not None and plan.unsupported:
        return (
            cond.Condition(
                cond.TOPICS_READY, False, cond.NOT_SUPPORTED, "; ".join(plan.unsupported)
            ),
            rows,
            summary,
        )
    if in_sync == len(desired):
        return (
            cond.Condition(
                cond.TOPICS_READY, True, "TopicsInSync", f"{summary} topics match the spec"
            ),
            rows,
            summary,
        )
    return (
        cond.Condition(
            cond.TOPICS_READY, False, "TopicsPending", f"{summary} topics match the spec"
        ),
        rows,
        summary,
    )


def invalid_spec_outcome(
    error: SpecError, generation: int, old: Sequence[Mapping[str, Any]]
) -> Outcome:
    parts = [
        cond.Condition(t, False, "InvalidSpec", str(error))
        for t in (cond.TOPICS_READY, cond.PRODUCERS_READY, cond.AGGREGATION_SCHEDULED)
    ]
    conditions = cond.merge_conditions(old, [*parts, cond.ready_condition(parts)], generation)
    return Outcome(
        {"observedGeneration": generation, "conditions": conditions},
        [Event("Warning", "InvalidSpec", str(error))],
        "error",
        "InvalidSpec",
    )


def reconcile_feed(
    *,
    name: str,
    namespace: str,
    uid: str,
    generation: int,
    spec: Mapping[str, Any],
    old_status: Mapping[str, Any] | None,
    settings: OperatorSettings,
    kafka: TopicApplier,
    kube: ChildApplier,
    now: datetime | None = None,
    coin_owner: str | None = None,
) -> Outcome:
    """``coin_owner``: namespace/name of an older CoinFeed following the same coin (see
    ``claims.coin_owner``); this feed then creates and owns nothing."""
    old_conditions = list((old_status or {}).get("conditions") or [])
    try:
        feed = parse_spec(spec)
    except SpecError as exc:
        return invalid_spec_outcome(exc, generation, old_conditions)
    if coin_owner:
        return conflict_outcome(
            name, namespace, feed, coin_owner, generation, old_status, kube, now
        )

    events: list[Event] = []
    result: Result = "ok"
    error_reason = ""

    # --- topics ---
    wanted = desired_topics(feed)
    plan: TopicPlan | None = None
    obs: Observation | None = None
    kafka_error = ""
    try:
        plan, obs = kafka.reconcile(wanted)
        events += [Event("Normal", "TopicChanged", line) for line in plan.describe()]
    except KafkaUnavailableError as exc:
        kafka_error = f"Kafka at {settings.kafka_bootstrap} is unavailable: {exc}"
        result, error_reason = "error", cond.KAFKA_UNAVAILABLE
    topics_c, topic_rows, summary = topics_condition(wanted, plan, obs, kafka_error)
    if topics_c.reason == cond.NOT_SUPPORTED:
        result, error_reason = "not_supported", cond.NOT_SUPPORTED

    # --- children ---
    children = desired_children(name, namespace, uid, feed, settings)
    apply_error = ""
    for child in children:
        kind, cname = child["kind"], child["metadata"]["name"]
        try:
            what, drift = kube.ensure(child)
        except Exception as exc:  # API errors become a condition, not a crash loop
            apply_error = f"{kind} {cname}: {_api_error(exc)}"
            events.append(Event("Warning", "ApplyFailed", apply_error))
            result, error_reason = "error", "ApplyFailed"
            continue
        if what == "created":
            events.append(Event("Normal", "Created", f"created {kind} {cname}"))
        elif what == "updated":
            events.append(
                Event(
                    "Normal",
                    "Updated",
                    f"reverted {kind} {cname} to the spec ({', '.join(drift[:5])})",
                )
            )
    for kind, cname in unwanted_children(name, feed):
        try:
            if kube.delete(kind, namespace, cname):
                events.append(Event("Normal", "Deleted", f"deleted {kind} {cname}"))
        except Exception as exc:
            events.append(Event("Warning", "DeleteFailed", f"{kind} {cname}: {_api_error(exc)}"))

    status = status_from_children(
        feed, name, namespace, kube, topics_c, generation, old_conditions, now, old_status, uid=uid
    )
    if apply_error:
        status["conditions"] = cond.merge_conditions(
            old_conditions,
            _override_apply_failure(status["conditions"], apply_error),
            generation,
            now,
        )
    status.update(topics=topic_rows, topicSummary=summary)
    if obs is None and old_status and old_status.get("topics"):
        status["topics"] = old_status["topics"]  # keep the last known picture while Kafka is away
    events += [Event(*e) for e in cond.transition_events(old_conditions, status["conditions"])]
    return Outcome(status, events, result, error_reason)


def conflict_outcome(
    name: str,
    namespace: str,
    feed: FeedSpec,
    owner: str,
    generation: int,
    old_status: Mapping[str, Any] | None,
    kube: ChildApplier,
    now: datetime | None = None,
) -> Outcome:
    """Another feed owns the coin: touch no topic, own no child (delete any this feed made, e.g.
    in a creation race), and say so in every condition."""
    old_conditions = list((old_status or {}).get("conditions") or [])
    events: list[Event] = []
    for kind, cname in all_children(name):
        try:
            if kube.delete(kind, namespace, cname):
                events.append(Event("Normal", "Deleted", f"deleted {kind} {cname}: coin conflict"))
        except Exception as exc:
            events.append(Event("Warning", "DeleteFailed", f"{kind} {cname}: {_api_error(exc)}"))
    conflict = cond.conflict_condition(owner, feed.coin)
    parts = [
        cond.Condition(t, False, cond.COIN_CONFLICT, conflict.message)
        for t in (cond.TOPICS_READY, cond.PRODUCERS_READY, cond.AGGREGATION_SCHEDULED)
    ]
    ready = cond.Condition(cond.READY, False, cond.COIN_CONFLICT, conflict.message)
    conditions = cond.merge_conditions(old_conditions, [conflict, *parts, ready], generation, now)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": conditions,
        "topics": [],
        "topicSummary": "-",
    }
    events += [Event(*e) for e in cond.transition_events(old_conditions, conditions)]
    return Outcome(status, events, "error", cond.COIN_CONFLICT)


def _override_apply_failure(conditions: list[dict[str, Any]], message: str) -> list[cond.Condition]:
    out: list[cond.Condition] = []
    kept: list[cond.Condition] = []  # conditions that do not decide Ready (Conflict)
    for c in conditions:
        if c["type"] == cond.READY:
            continue
        ok, unknown = c["status"] == "True", c["status"] == "Unknown"
        target = kept if c["type"] == cond.CONFLICT else out
        target.append(cond.Condition(c["type"], ok, c["reason"], c["message"], unknown))
    parts = [
        cond.Condition(cond.PRODUCERS_READY, False, "ApplyFailed", message)
        if p.type == cond.PRODUCERS_READY
        else p
        for p in out
    ]
    return [*kept, *parts, cond.ready_condition(parts)]


def status_from_children(
    feed: FeedSpec,
    name: str,
    namespace: str,
    kube: ChildApplier,
    topics_c: cond.Condition | None,
    generation: int,
    old_conditions: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
    old_status: Mapping[str, Any] | None = None,
    *,
    uid: str,
) -> dict[str, Any]:
    """Status from the live children and the shared CronJob that lists the feed (``uid``) among
    its owners; ``topics_c=None`` keeps the current TopicsReady."""
    kinds = ["prices", *(["tweets"] if feed.tweets.enabled else [])]
    deps = {
        child_name(name, k): kube.get("Deployment", namespace, child_name(name, k)) for k in kinds
    }
    cron = None if feed.suspend else cronjob_of(kube.list_hourly_cronjobs(namespace), uid)
    if topics_c is None:
        prev = next((c for c in old_conditions if c.get("type") == cond.TOPICS_READY), None)
        topics_c = (
            cond.Condition(
                cond.TOPICS_READY,
                prev.get("status") == "True",
                str(prev.get("reason")),
                str(prev.get("message", "")),
            )
            if prev
            else cond.Condition(cond.TOPICS_READY, False, "Unknown", "not yet reconciled")
        )
    run = observe_last_run(feed, name, namespace, kube, cron, old_status)
    # Pods are read only while a producer is unavailable: a healthy feed costs no list call.
    unavailable = not feed.suspend and not all(
        cond.deployment_available(d)[0] for d in deps.values()
    )
    refusals = cond.source_refusals(kube.list_producer_pods(namespace, name)) if unavailable else []
    parts = [
        topics_c,
        # Before ProducersReady: a refusal is why they are unavailable, so Ready names it.
        cond.source_condition(refusals),
        cond.producers_condition(deps, feed.suspend),
        cond.aggregation_condition(cron, feed.aggregation.schedule, feed.suspend),
        lastrun.last_run_condition(run),
    ]
    conflict = cond.conflict_condition(None, feed.coin)  # reconciled only while it owns the coin
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": cond.merge_conditions(
            old_conditions, [conflict, *parts, cond.ready_condition(parts)], generation, now
        ),
    }
    hour = lastrun.newer_hour((old_status or {}).get("lastHour"), run)
    if hour:
        status["lastHour"] = hour
    if run is not None:
        status["lastRun"] = run.status()
    return status


def observe_last_run(
    feed: FeedSpec,
    name: str,
    namespace: str,
    kube: ChildApplier,
    cron: Mapping[str, Any] | None,
    old_status: Mapping[str, Any] | None,
) -> lastrun.LastRun | None:
    """The newest finished run of the feed's coin by its shared CronJob. A Job already reported
    in ``old_status`` is not read again (a finished Job does not change), so a settled feed costs
    one list call."""
    previous = (old_status or {}).get("lastRun") or None
    if cron is None:
        return _from_status(previous)
    jobs = kube.list_jobs(namespace, str(cron["metadata"]["name"]))
    job = lastrun.newest_finished_job(jobs, str(cron["metadata"].get("uid", "")), feed.coin)
    if job is None:
        # History limits prune old Jobs; what was observed before stays true.
        return _from_status(previous)
    job_name = str(job["metadata"]["name"])
    run = lastrun.last_run(job, [], feed.coin)
    if (
        previous
        and run
        and (previous.get("job"), previous.get("finishedAt"))
        == (
            job_name,
            run.finished_at,
        )
    ):
        return _from_status(previous)
    return lastrun.last_run(job, kube.list_pods(namespace, job_name), feed.coin)


def _from_status(previous: Mapping[str, Any] | None) -> lastrun.LastRun | None:
    if not previous or not previous.get("job"):
        return None
    return lastrun.LastRun(
        job=str(previous["job"]),
        succeeded=previous.get("result") == "Succeeded",
        finished_at=str(previous.get("finishedAt", "")),
        reason=str(previous.get("reason") or "Unknown"),
        message=str(previous.get("message", "")),
        newest_hour=None,  # already folded into status.lastHour
    )


@dataclass
class HourlyOutcome:
    events: list[tuple[str, Event]] = field(default_factory=list)  # (feed name, Event)
    errors: list[str] = field(default_factory=list)


def reconcile_hourly(
    namespace: str,
    feeds: Sequence[Mapping[str, Any]],
    settings: OperatorSettings,
    kube: ChildApplier,
) -> HourlyOutcome:
    """Make the namespace's shared hourly CronJobs match its feeds: create a group's CronJob with
    its first feed, update it in place as feeds join or leave (the CronJob object and its schedule
    stay, so no scheduled run is lost), delete it when no feed is left, and remove the per-feed
    CronJobs of earlier versions. ``feeds``: every watched feed (coin ownership spans them)."""
    out = HourlyOutcome()
    groups = plan_groups(feeds, settings.hourly_max_coins_per_job, namespace)
    wanted = {g.name for g in groups}
    for group in groups:
        coins = ",".join(group.coins)
        members = [m.name for m in group.members]
        for child in group_children(group, settings):
            kind, cname = child["kind"], child["metadata"]["name"]
            try:
                what, drift = kube.ensure(child)
            except Exception as exc:  # a condition and an Event, not a crash loop
                error = f"{kind} {cname}: {_api_error(exc)}"
                out.errors.append(error)
                out.events += [(m, Event("Warning", "ApplyFailed", error)) for m in members]
                continue
            if what == "created":
                message = f"created shared {kind} {cname} (coins {coins})"
            elif what == "updated":
                message = f"updated shared {kind} {cname} (coins {coins}; {', '.join(drift[:5])})"
            else:
                continue
            log.info(message)
            out.events += [(m, Event("Normal", what.capitalize(), message)) for m in members]
        if not spark_on_kubernetes(settings):
            _delete_quietly(kube, "ConfigMap", namespace, executor_configmap_name(group.name), out)
    try:
        live = kube.list_hourly_cronjobs(namespace)
    except Exception as exc:
        out.errors.append(f"listing hourly CronJobs: {_api_error(exc)}")
        return out
    for cron in live:
        meta = cron.get("metadata") or {}
        cname, lbls = str(meta.get("name", "")), meta.get("labels") or {}
        if GROUP_LABEL in lbls:
            if cname in wanted:
                continue
            # The group lost its last feed (or shrank by a shard).
            stale = [("CronJob", cname), ("ConfigMap", executor_configmap_name(cname))]
        elif lbls.get(FEED_LABEL) and cname == child_name(str(lbls[FEED_LABEL]), "hourly"):
            # Before shared jobs each feed had its own CronJob: its coin now runs in a group's.
            stale = legacy_hourly_children(str(lbls[FEED_LABEL]))
        else:
            continue
        for kind, name in stale:
            if _delete_quietly(kube, kind, namespace, name, out):
                log.info("deleted %s %s/%s: no longer wanted", kind, namespace, name)
    return out


def _delete_quietly(
    kube: ChildApplier, kind: str, namespace: str, name: str, out: HourlyOutcome
) -> bool:
    try:
        return kube.delete(kind, namespace, name)
    except Exception as exc:
        out.errors.append(f"deleting {kind} {name}: {_api_error(exc)}")
        return False


def _api_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return f"{type(exc).__name__}: {exc}"
